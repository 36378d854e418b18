"""The GPU fast path's CPU-visible parts: deferred loss logs, the record's hardware fields, the sampler's placement,
and the logic of `aebench doctor --gpu-check` (device selection, tolerance verdicts, plan, report, exit 2 without
CUDA, one tiny pair through the check's core on the CPU). Nothing here ran on a GPU."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch

from aebench import gpu_check, results, runner
from aebench.cli import main
from aebench.errors import AebenchError
from aebench.gpu_check import MetricVerdict, PairResult, Tolerance, compare_metrics
from aebench.model import DataSpec, PendingLosses
from aebench.runner import BatchSampler, Job, LossLog, run_job
from toy import LoggedAE, ToyConfig, spec


def job(tmp_path, model="LoggedAE", **kwargs) -> Job:
    return Job(
        task=spec("ToyTask"), model=spec(model), out_dir=str(tmp_path / "out"), cache_dir=str(tmp_path / "c"), **kwargs
    )


# --- deferred losses and records ----------------------------------------------------------------------------------
def test_logged_losses_are_the_same_floats_now_or_read_later():
    terms = {"a": torch.tensor(0.1), "b": torch.tensor(1 / 3), "c": torch.tensor(2.5e-8)}
    model = LoggedAE(ToyConfig(), DataSpec(shape=(4,), kind="vector"))
    now = model.logged(terms)
    model.defer_logs = True
    later = model.logged(terms)
    assert isinstance(now, dict) and isinstance(later, PendingLosses)
    log = LossLog(defer=True)
    log.add(0, later)
    log.add(1, {"plain": 0.25})
    log.add(2, PendingLosses(("x",), torch.tensor([7.0])))
    assert log.read() == [(0, now), (1, {"plain": 0.25}), (2, {"x": 7.0})]
    assert log.read() == []


def test_a_deferred_log_gives_the_record_and_hook_calls_of_a_step_by_step_log(tmp_path, monkeypatch):
    """The GPU's deferred reads (every LOG_EVERY steps, and at checkpoints) change nothing the run records."""
    steps_plain, steps_deferred = [], []
    plain = run_job(job(tmp_path / "plain"), progress=False, on_step=lambda s, losses: steps_plain.append((s, losses)))
    prepare = runner.prepare_for_device

    def deferring(model, spec_, device, compile_networks):
        model = prepare(model, spec_, device, compile_networks)
        model.defer_logs = True
        return model

    monkeypatch.setattr(runner, "prepare_for_device", deferring)
    deferred = run_job(
        job(tmp_path / "deferred"), progress=False, on_step=lambda s, losses: steps_deferred.append((s, losses))
    )
    assert steps_deferred == steps_plain and [s for s, _ in steps_plain] == list(range(40))
    for key in ("final_losses", "loss_history", "metrics"):
        assert deferred[key] == plain[key]


def test_a_deferred_nan_names_its_step(tmp_path):
    log = LossLog(defer=True)
    for step in range(3):
        log.add(step, PendingLosses(("loss",), torch.tensor([math.nan if step == 1 else 1.0])))
    assert [s for s, losses in log.read() if not math.isfinite(losses["loss"])] == [1]


def test_cpu_records_name_the_cpu_and_say_no_amp_no_compile_no_gpu_memory(tmp_path):
    record = run_job(job(tmp_path), progress=False)
    assert record["device"] == "cpu" and record["device_name"] == runner.device_name(torch.device("cpu"))
    assert record["device_name"] and record["device_name"] != "cpu"
    assert record["amp"] is None and record["compile"] is False and record["peak_gpu_memory_bytes"] is None
    old = {k: v for k, v in record.items() if k not in ("device_name", "amp", "compile", "peak_gpu_memory_bytes")}
    assert results.validate(old, "old record") == old  # records from before these fields still load
    with pytest.raises(AebenchError, match="'compile' is not a bool"):
        results.validate({**record, "compile": "yes"}, "bad record")


def test_compile_is_opt_in_and_recorded(tmp_path, monkeypatch):
    compiled = []
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, *a, **k: compiled.append(type(self).__name__))
    assert run_job(job(tmp_path / "off"), progress=False)["compile"] is False and compiled == []
    record = run_job(job(tmp_path / "on", compile=True), progress=False)
    assert record["compile"] is True and sorted(compiled) == ["Linear", "Linear"]  # the model's two networks
    assert record["status"] == "ok"


def test_cli_compile_flag_reaches_the_record(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, *a, **k: None)
    args = ["run", "--task", spec("ToyTask"), "--models", spec("ToyAE"), "--out", str(tmp_path / "out")]
    assert main([*args, "--no-progress", "--compile", "--no-amp", "--cache-dir", str(tmp_path / "c")]) == 0
    (record,) = [r for r in results.load_records(tmp_path / "out" / "toy") if r["kind"] == "model"]
    assert record["compile"] is True and record["amp"] is None


def test_the_sampler_cuts_the_same_batches_wherever_it_is_told_to_deliver_them():
    data = {"x": torch.arange(40.0).view(10, 4)}
    plain, told = BatchSampler(data, 3, seed=5), BatchSampler(data, 3, seed=5, device=torch.device("cpu"))
    for step in range(7):
        assert torch.equal(plain(step)["x"], told(step)["x"])
    images = BatchSampler({"x": torch.rand(6, 2, 3, 3)}, 2, seed=0, channels_last=True)
    batch = images(0)["x"]
    assert batch.is_contiguous(memory_format=torch.channels_last) and torch.equal(batch, images(0)["x"])


def test_gpu_check_budget_is_each_tasks_smoke_budget_cut_short(tmp_path):
    from aebench.registry import tasks

    for name in tasks.names():
        task = runner.get_task(name, tmp_path)
        smoke, check = task.budgets["smoke"], runner.budget_of(task, runner.GPU_CHECK_BUDGET)
        assert check.steps == min(smoke.steps, runner.GPU_CHECK_STEPS) and check.checkpoint_every == check.steps
        assert (check.batch_size, check.eval_samples, check.model_overrides) == (
            smoke.batch_size, smoke.eval_samples, smoke.model_overrides,
        )  # fmt: skip


# --- aebench doctor --gpu-check -----------------------------------------------------------------------------------
def test_without_cuda_the_check_says_so_in_one_line_and_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["doctor", "--gpu-check", "--report", str(tmp_path / "r.md")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "no CUDA device" in err
    assert not (tmp_path / "r.md").exists()


def test_device_selection(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.select_device() is None and gpu_check.select_device("cuda:1") is None
    assert gpu_check.select_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert gpu_check.select_device() == torch.device("cuda")


@pytest.mark.parametrize(
    ("bf16", "fp32", "expected"),
    [
        (0.100, 0.105, "agree"),  # 4.8 % of the larger
        (0.100, 0.125, "differ"),  # 20 %
        (50.0, 54.0, "agree"),
        (50.0, 60.0, "differ"),
        (0.0, 0.0005, "agree"),  # within the absolute floor
        (0.0, 0.01, "differ"),
        (-1.0, 1.0, "differ"),
        (None, 0.3, "unavailable"),
        (None, None, "unavailable"),
        (math.nan, 0.3, "unavailable"),
    ],
)
def test_tolerance_verdicts(bf16, fp32, expected):
    (verdict,) = compare_metrics({"m": bf16}, {"m": fp32}, Tolerance(relative=0.10, absolute=1e-3))
    assert verdict.verdict == expected


def test_a_metric_of_one_run_only_is_unavailable_and_a_pair_differs_if_one_metric_does():
    verdicts = compare_metrics({"a": 1.0, "b": 2.0}, {"a": 1.0, "c": 3.0}, Tolerance())
    assert [(v.name, v.verdict) for v in verdicts] == [("a", "agree"), ("b", "unavailable"), ("c", "unavailable")]
    assert PairResult("t", "m", verdicts=verdicts).agrees
    assert not PairResult("t", "m", verdicts=[*verdicts, MetricVerdict("d", 1.0, 2.0, "differ")]).agrees


def test_plan_takes_every_applicable_pair_and_says_why_the_others_are_left_out(tmp_path):
    names = [spec("ToyAE"), spec("EncoderOnly"), spec("ImagesOnly")]
    pairs, skipped = gpu_check.plan(tmp_path, [spec("ToyTask")], names)
    assert pairs == [(spec("ToyTask"), spec("ToyAE"))]
    reasons = {model: why for _, model, why in skipped}
    assert reasons[spec("EncoderOnly")] == "lacks sample" and "image" in reasons[spec("ImagesOnly")]


def test_plan_of_the_registered_tasks_matches_aebench_list(tmp_path):
    from aebench.cli import _takes_data
    from aebench.registry import models, tasks

    pairs, skipped = gpu_check.plan(tmp_path)
    assert len(pairs) + len(skipped) == len(tasks.names()) * len(models.names())
    for task_name, model_name in pairs[:: max(1, len(pairs) // 8)]:
        assert tasks.get(task_name).requires <= models.get(model_name).capabilities
        assert _takes_data(task_name, model_name, str(tmp_path))
    assert ("hubble2webb", "pix2pix") in pairs and ("hubble2webb", "cyclegan") in pairs
    first_round = [task for task, _ in pairs[: len(tasks.names())]]
    assert sorted(first_round) == sorted(tasks.names())  # every task early: a check cut short has run them all


def test_the_reference_steps_are_found_by_their_installed_name_from_any_folder(tmp_path):
    """`aebench doctor --gpu-check` is a console script: the repository root, where `baselines/` lies, is not on
    its path, so the reference steps must be imported as the installed package names them."""
    script = f"import importlib; print(importlib.import_module({gpu_check.REFERENCE_STEPS!r}).make_reference_step)"
    done = subprocess.run([sys.executable, "-P", "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_one_tiny_pair_through_the_checks_core_on_the_cpu(tmp_path, monkeypatch):
    """On the CPU, autocast is off: both runs are the same run, so every metric agrees exactly."""
    monkeypatch.setattr(gpu_check, "REFERENCE_MODELS", ("logged-ae",))
    monkeypatch.setattr(gpu_check, "REFERENCE_STEPS", "no_such_reference_module")
    pair = (spec("ToyTask"), spec("LoggedAE"))
    (result,) = gpu_check.run_check(
        [pair], torch.device("cpu"), tmp_path / "out", tmp_path / "c", timed_steps=3, cpu_steps=2
    )
    assert result.status == "ok", result.reason
    assert result.verdicts and all(v.verdict == "agree" and v.bf16 == v.fp32 for v in result.verdicts)
    assert result.amp is None and result.peak_memory_bytes is None
    assert result.steps_per_s > 0 and result.cpu_steps_per_s > 0
    assert result.reference_steps_per_s is None and result.reference_note == "reference step unavailable"
    assert (tmp_path / "out" / "bf16" / "toy" / "records").is_dir() and (tmp_path / "out" / "fp32").is_dir()


def test_the_reference_step_is_timed_through_its_interface(tmp_path, monkeypatch):
    module = tmp_path / "fake_reference_steps.py"
    module.write_text(
        "CALLS = []\n"
        "def make_reference_step(model):\n"
        "    def step(batch):\n"
        "        CALLS.append(batch['x'].shape)\n"
        "    return step\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(gpu_check, "REFERENCE_STEPS", "fake_reference_steps")
    rate = gpu_check.steps_per_second(job(tmp_path), torch.device("cpu"), steps=4, warmup=1, reference=True)
    import fake_reference_steps

    assert rate > 0 and fake_reference_steps.CALLS == [torch.Size([32, 4])] * 5


def test_a_failing_pair_is_reported_and_the_next_one_still_runs(tmp_path):
    pairs = [(spec("ToyTask"), spec("NaNAE")), (spec("ToyTask"), spec("ToyAE"))]
    failed, ok = gpu_check.run_check(
        pairs, torch.device("cpu"), tmp_path / "o", tmp_path / "c", timed_steps=2, cpu_steps=1
    )
    assert failed.status == "failed" and "non-finite" in failed.reason and ok.status == "ok"
    assert gpu_check.verdict([failed, ok]) == 1 and gpu_check.verdict([ok]) == 0


def test_pairs_past_the_deadline_are_listed_as_not_run(tmp_path):
    (result,) = gpu_check.run_check(
        [(spec("ToyTask"), spec("ToyAE"))], torch.device("cpu"), tmp_path, tmp_path, deadline_s=-1
    )
    assert result.status == "not run" and "spent" in result.reason


def test_report_lists_every_pair_with_its_verdict_speeds_and_problems():
    results_ = [
        PairResult(
            "hubble2webb",
            "pix2pix",
            status="ok",
            amp="bf16",
            steps_per_s=40.0,
            cpu_steps_per_s=2.0,
            reference_steps_per_s=20.0,
            peak_memory_bytes=3 * 2**20,
            verdicts=[MetricVerdict("mse", 0.01, 0.02, "differ"), MetricVerdict("ssim", 0.5, 0.5, "agree")],
        ),
        PairResult(
            "hubble2webb", "cyclegan", status="ok", steps_per_s=10.0, reference_note="reference step unavailable"
        ),
        PairResult("cdp-twin", "turbo", status="failed", reason="NonFiniteLoss: loss=nan at step 3"),
        PairResult("cdp-twin", "pix2pix", reason="the check's 420 s were spent"),
    ]
    text = gpu_check.render_report(results_, [("toy", "ae", "lacks translate")], torch.device("cpu"), Tolerance(), 12)
    assert runner.device_name(torch.device("cpu")) in text and "max(0.001, 10% of the larger magnitude)" in text
    row = next(line for line in text.splitlines() if line.startswith("| hubble2webb | pix2pix"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells == [
        "hubble2webb",
        "pix2pix",
        "ok",
        "**differ**",
        "bf16",
        "40",
        "2",
        "20.00×",
        "20",
        "2.00×",
        "3",
        "0.0",
    ]
    assert "| hubble2webb | cyclegan | ok | – | fp32 | 10 | – | – | reference step unavailable | – |" in text
    assert "- hubble2webb pix2pix mse: bf16 0.01, fp32 0.02" in text
    assert "- cdp-twin turbo: failed: NonFiniteLoss: loss=nan at step 3" in text
    assert "- cdp-twin pix2pix: not run: the check's 420 s were spent" in text and "- toy ae: lacks translate" in text


def test_main_writes_the_report_where_asked(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_check, "plan", lambda cache: ([(spec("ToyTask"), spec("ToyAE"))], []))
    report = tmp_path / "reports" / "gpu.md"
    assert gpu_check.main(report, tmp_path / "c", device_name_="cpu") == 0
    text = report.read_text()
    assert text.startswith("# aebench GPU check") and "toy.py:ToyAE | ok | agree |" in text


# --- every image baseline in the GPU path's layout, on the CPU ----------------------------------------------------
def _image_cases():
    from test_baselines import CASES, EXAMPLES

    return [(name, example) for name, example in CASES if EXAMPLES[example].kind == "image"]


@pytest.mark.parametrize(("name", "example"), _image_cases())
def test_image_baselines_train_in_channels_last_with_deferred_logs(name, example):
    """What the runner does to an image model on CUDA (channels_last networks and batches, PendingLosses), checked
    on the CPU: a network that views a channels_last tensor as if it were contiguous fails here, not on a GPU."""
    from test_baselines import EXAMPLES, batch, tiny_config

    from aebench.registry import models

    torch.manual_seed(0)
    cls = models.get(name)
    model = cls(tiny_config(cls), EXAMPLES[example])
    model.defer_logs = True
    model.to(memory_format=torch.channels_last)
    data = {key: runner._channels_last(value) for key, value in batch(EXAMPLES[example]).items()}
    log = LossLog(defer=True)
    log.add(0, model.training_step(data, model.configure_optimizers()))
    ((_, losses),) = log.read()
    assert losses and all(math.isfinite(value) for value in losses.values())
