"""The runner on the toy task: records, resume equivalence, failure isolation, serialisable jobs."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time

import pytest
import torch

from aebench import kernels, results
from aebench.checkpoints import LossHistory
from aebench.cli import main
from aebench.errors import AebenchError
from aebench.runner import BatchSampler, Job, job_identity, run_job
from toy import spec


def job(tmp_path, model="ToyAE", **kwargs) -> Job:
    return Job(
        task=spec("ToyTask"),
        model=spec(model),
        out_dir=str(tmp_path / "out"),
        cache_dir=str(tmp_path / "cache"),
        **kwargs,
    )


def test_record_holds_what_reproduces_the_run(tmp_path):
    record = run_job(job(tmp_path, model_args={"lr": "0.005"}), progress=False)
    assert record["model"]["label"] == "toy-ae [lr=0.005]"
    assert job(tmp_path, model_args={"lr": "0.005"}).record_path.name == "toy-ae@lr=0.005-smoke-seed0.json"
    assert record["status"] == "ok"
    assert record["task"] == {"name": "toy", "version": "1"}
    assert record["model"]["name"] == "toy-ae"
    assert record["model"]["config"] == {"latent_dim": 2, "lr": 0.005, "noise": 0.1}  # task override, then user
    assert record["budget"]["steps"] == 40 and record["seed"] == 0
    assert record["n_parameters"] == 4 * 2 + 2 + 2 * 4 + 4
    assert record["metrics"]["mean_error"]["higher_is_better"] is False
    assert record["environment"]["torch"] == torch.__version__
    assert record["device"] == "cpu" and record["wall_time_s"] > 0
    # Finer values a task reports are kept as strict JSON: tensors become lists, NaN becomes null.
    assert len(record["details"]["per_feature_error"]) == 4 and record["details"]["undefined"] is None
    assert results.load_record(job(tmp_path, model_args={"lr": "0.005"}).record_path) == record


def test_budget_overrides_apply_to_models_that_have_the_field_and_yield_to_the_user(tmp_path):
    record = run_job(job(tmp_path, budget="small-lr"), progress=False)
    assert record["model"]["config"] == {"latent_dim": 2, "lr": 1e-4, "noise": 0.1}  # "unknown" is no ToyAE field
    assert record["budget"]["model_overrides"] == {"lr": 1e-4, "unknown": 1}
    record = run_job(job(tmp_path / "user", budget="small-lr", model_args={"lr": "0.005"}), progress=False)
    assert record["model"]["config"]["lr"] == 0.005


def test_overrides_may_name_one_model_and_the_record_says_what_reached_it(tmp_path):
    toy = run_job(job(tmp_path, budget="per-model"), progress=False)
    assert toy["model"]["config"]["latent_dim"] == 1 and toy["model"]["config"]["noise"] == 0.0
    assert toy["model"]["overrides"] == {
        "task": {"latent_dim": 2},
        "budget": {"noise": 0.0, "latent_dim": 1},
        "user": {},
    }
    strict = run_job(job(tmp_path, model="StrictAE", budget="per-model"), progress=False)
    assert strict["model"]["config"]["latent_dim"] == 2  # toy-ae's own value is not strict-ae's
    assert strict["model"]["overrides"]["budget"] == {"noise": 0.0}
    with pytest.raises(
        AebenchError, match="budget misspelt model_overrides: 'toy-ae' has no config field 'latnet_dim'"
    ):
        run_job(job(tmp_path, budget="misspelt"), progress=False)
    from aebench import leaderboard

    table = leaderboard.render([toy, strict], "md")
    assert "Budget `per-model` sets latent_dim=1, noise=0.0 for toy-ae; noise=0.0 for strict-ae." in table


def test_same_seed_same_metrics_other_seed_other_metrics(tmp_path):
    first = run_job(job(tmp_path / "a"), progress=False)["metrics"]
    again = run_job(job(tmp_path / "b"), progress=False)["metrics"]
    other = run_job(job(tmp_path / "c", seed=1), progress=False)["metrics"]
    assert first == again
    assert first != other


def interrupt_at(when):
    def hook(step, losses):
        if step == when:
            raise KeyboardInterrupt

    return hook


def test_the_cpu_time_leaves_out_what_the_wall_time_counts_while_the_process_waits(tmp_path):
    def pause(step, losses):
        if step == 5:
            time.sleep(1.5)  # as a process stopped by its user, or waiting for a core

    record = run_job(job(tmp_path), progress=False, on_step=pause)
    assert 0 < record["cpu_time_s"] < record["wall_time_s"] - 1.0


def test_interrupted_run_resumes_to_the_same_result(tmp_path):
    uninterrupted = run_job(job(tmp_path / "whole"), progress=False)
    interrupted = job(tmp_path / "split")
    with pytest.raises(KeyboardInterrupt):  # after the checkpoint at step 20, before the one at 30
        run_job(interrupted, progress=False, on_step=interrupt_at(26))
    assert interrupted.checkpoint_path.exists() and not interrupted.record_path.exists()
    checkpoint = torch.load(interrupted.checkpoint_path, weights_only=False)
    assert checkpoint["step"] == 20 and checkpoint["wall_time_s"] > 0 and checkpoint["cpu_time_s"] > 0

    torch.manual_seed(999)  # the resumed process starts from an unrelated RNG state
    resumed = run_job(job(tmp_path / "split", resume=True), progress=False)
    assert not results.wall_time_partial(uninterrupted)
    assert resumed["resumed"] is True and resumed["resumed_at_step"] == 20
    # the whole run's time: the first process's up to its checkpoint, and this one's
    assert resumed["wall_time_s"] > checkpoint["wall_time_s"] and not results.wall_time_partial(resumed)
    assert resumed["cpu_time_s"] > checkpoint["cpu_time_s"]
    assert resumed["git_commits"] == [resumed["environment"]["git_commit"]] and "warnings" not in resumed
    assert resumed["kernel_fingerprints"] == [resumed["determinism"]["kernel_fingerprint"]]
    assert resumed["final_losses"] == uninterrupted["final_losses"]
    assert resumed["loss_history"] == uninterrupted["loss_history"]
    assert resumed["metrics"] == uninterrupted["metrics"]
    assert not interrupted.checkpoint_path.exists()  # a finished run leaves no scratch behind


def test_a_run_resumed_from_an_older_checkpoint_says_its_wall_time_is_partial_and_its_code_unknown(tmp_path):
    interrupted = job(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        run_job(interrupted, progress=False, on_step=interrupt_at(26))
    state = torch.load(interrupted.checkpoint_path, weights_only=False)
    for key in ("wall_time_s", "cpu_time_s", "git_commits", "kernel_fingerprints", "data"):  # as checkpoints were
        del state[key]
    torch.save(state, interrupted.checkpoint_path)
    resumed = run_job(job(tmp_path, resume=True), progress=False)
    assert resumed["wall_time_partial"] is True and results.wall_time_partial(resumed)
    assert resumed["cpu_time_s"] is None  # unknown, not this process's seconds alone
    now, kernels = resumed["environment"]["git_commit"], resumed["determinism"]["kernel_fingerprint"]
    assert resumed["git_commits"] == [None, now] and resumed["kernel_fingerprints"] == [None, kernels]
    assert resumed["warnings"] == [
        f"the processes of this resumed run ran commits not recorded, {now[:12]} in turn",
        f"the processes of this resumed run computed with CPU kernels not recorded, {kernels} in turn",
    ]
    legacy = {key: value for key, value in resumed.items() if key not in ("resumed_at_step", "wall_time_partial")}
    assert results.wall_time_partial(legacy)  # a resumed record from before: its time is that of its last process


def test_a_run_resumed_under_other_code_names_every_commit_that_trained_it(tmp_path):
    interrupted = job(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        run_job(interrupted, progress=False, on_step=interrupt_at(26))
    state = torch.load(interrupted.checkpoint_path, weights_only=False)
    state["git_commits"] = ["0123456789abcdef"]  # the first process ran other code
    torch.save(state, interrupted.checkpoint_path)
    resumed = run_job(job(tmp_path, resume=True), progress=False)
    now = resumed["environment"]["git_commit"]
    assert resumed["git_commits"] == ["0123456789abcdef", now]
    assert resumed["warnings"] == [f"the processes of this resumed run ran commits 0123456789ab, {now[:12]} in turn"]


def test_a_run_continued_on_a_cpu_with_other_kernels_names_both(tmp_path):
    """A run carried to another machine (its checkpoint copied, then --resume) is a sample of its seed, not the run
    either CPU gives alone: the record keeps each process's kernel fingerprint and says so (aebench.kernels)."""
    interrupted = job(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        run_job(interrupted, progress=False, on_step=interrupt_at(26))
    state = torch.load(interrupted.checkpoint_path, weights_only=False)
    state["kernel_fingerprints"] = ["0123456789ab"]  # the first process ran on a CPU that rounds differently
    torch.save(state, interrupted.checkpoint_path)
    resumed = run_job(job(tmp_path, resume=True), progress=False)
    here = resumed["determinism"]["kernel_fingerprint"]
    assert resumed["kernel_fingerprints"] == ["0123456789ab", here] and resumed["git_commits"] == state["git_commits"]
    assert resumed["warnings"] == [
        f"the processes of this resumed run computed with CPU kernels 0123456789ab, {here} in turn"
    ]


def test_a_checkpoint_trained_on_other_data_is_not_resumed(tmp_path):
    """A checkpoint carried to a machine whose embedded data came out otherwise must not continue on that data: the
    record would name data that only part of its training saw."""
    interrupted = job(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        run_job(interrupted, progress=False, on_step=interrupt_at(26))
    state = torch.load(interrupted.checkpoint_path, weights_only=False)
    assert state["data"] == job_identity(interrupted)["parts"]["data"]  # the checkpoint names its data
    state["data"] = "0123456789abcdef"
    torch.save(state, interrupted.checkpoint_path)
    resumed = run_job(job(tmp_path, resume=True), progress=False)
    assert resumed["status"] == "failed" and "was trained on other data (content 0123456789abcdef" in resumed["reason"]
    assert interrupted.checkpoint_path.exists()  # kept: it is another run's work


def test_the_loss_history_averages_windows_and_survives_a_checkpoint():
    history = LossHistory(steps=10, points=4)  # windows of 3 steps: 1-3, 4-6, 7-9, 10
    for step in range(5):
        history.add(step, {"a": float(step)})
    state = torch.load(save(history.state_dict()), weights_only=True)  # what a checkpoint keeps
    resumed = LossHistory(steps=10, points=4)
    resumed.load_state_dict(state)
    for h in (history, resumed):
        for step in range(5, 10):
            h.add(step, {"a": float(step)} | ({"b": 1.0} if step >= 7 else {}))
    assert history.summary() == resumed.summary() == {
        "every": 3, "steps": [3, 6, 9, 10], "losses": {"a": [1.0, 4.0, 7.0, 9.0], "b": [None, None, 1.0, 1.0]}
    }  # fmt: skip
    assert LossHistory(steps=40).every == 1 and LossHistory(steps=200_000).every == 400


def save(state):
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return buffer


def test_an_unusable_checkpoint_fails_that_run_only(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run_job(job(tmp_path), progress=False, on_step=interrupt_at(15))
    other = job(tmp_path, model_args={"lr": "0.1"}, label="toy-ae-fast")  # a checkpoint of another config at its path
    other.checkpoint_path.write_bytes(job(tmp_path).checkpoint_path.read_bytes())
    record = run_job(job(tmp_path, resume=True, model_args={"lr": "0.1"}, label="toy-ae-fast"), progress=False)
    assert record["status"] == "failed" and "different config" in record["reason"]
    job(tmp_path).checkpoint_path.write_bytes(b"not a checkpoint")
    record = run_job(job(tmp_path, resume=True), progress=False)
    assert record["status"] == "failed" and "corrupt" in record["reason"]
    assert job(tmp_path).checkpoint_path.read_bytes() == b"not a checkpoint"  # the user's file is left alone


class _Payload:
    """Unpickling this calls Path.touch: what a crafted checkpoint would do with os.system."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (type(self.marker).touch, (self.marker,))


def test_a_malicious_checkpoint_is_refused_without_running(tmp_path):
    marker = tmp_path / "code-ran"
    crafted = job(tmp_path)
    crafted.checkpoint_path.parent.mkdir(parents=True)
    torch.save({"identity": "anything", "payload": _Payload(marker)}, crafted.checkpoint_path)
    record = run_job(job(tmp_path, resume=True), progress=False)
    assert not marker.exists()
    assert record["status"] == "failed" and "not a plain-data checkpoint" in record["reason"]


def test_checkpoints_hold_plain_data_only(tmp_path):
    interrupted = job(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        run_job(interrupted, progress=False, on_step=interrupt_at(15))
    state = torch.load(interrupted.checkpoint_path, weights_only=True)  # raises if anything needs unpickling code
    assert state["step"] == 10 and set(state["rng"]) >= {"python", "numpy", "torch"}


def test_model_selection_keeps_the_best_validation_step_and_records_it(tmp_path):
    record = run_job(job(tmp_path, model="BestAtStep20AE", budget="select"), progress=False)
    selection = record["selection"]
    assert selection["best_step"] == 20 and [step for step, _ in selection["scores"]] == [10, 20, 30, 40]
    assert selection["best_score"] < -90
    # the kept weights are step 20's: evaluation differs from the last step's, and from an unselected run
    last = run_job(job(tmp_path / "plain", model="BestAtStep20AE"), progress=False)
    assert record["metrics"] != last["metrics"] and "selection" not in last
    # and the random stream of training is not moved by scoring: the losses equal an unselected run's
    assert record["final_losses"] == last["final_losses"]


def test_model_selection_resumes_to_the_same_result(tmp_path):
    whole = run_job(job(tmp_path / "whole", model="BestAtStep20AE", budget="select"), progress=False)
    split = job(tmp_path / "split", model="BestAtStep20AE", budget="select")
    with pytest.raises(KeyboardInterrupt):
        run_job(split, progress=False, on_step=interrupt_at(25))  # after the step-20 checkpoint
    resumed = run_job(job(tmp_path / "split", model="BestAtStep20AE", budget="select", resume=True), progress=False)
    assert resumed["selection"] == whole["selection"] and resumed["metrics"] == whole["metrics"]


def test_a_sample_picture_that_fails_keeps_the_metrics_as_a_warning(tmp_path):
    record = run_job(job(tmp_path, model="NoPictureAE"), progress=False)
    assert record["status"] == "ok" and record["metrics"]["mean_error"]["value"] is not None
    assert record["warnings"] == ["sample picture not drawn: RuntimeError: no display for the figure"]


def test_the_record_says_how_determinism_was_enforced(tmp_path):
    threads = torch.get_num_threads()
    record = run_job(job(tmp_path), progress=False)
    assert record["determinism"]["deterministic_algorithms"] is True
    assert record["determinism"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert record["determinism"]["threads"] == 1 and record["determinism"]["bitwise_reproducible_on_cpu"] is True
    assert torch.get_num_threads() == threads  # the caller's settings are given back
    torch.set_num_threads(1)
    try:  # the kernels the run used, at its thread count, and the CPU they ran on
        assert record["determinism"]["kernel_fingerprint"] == kernels.fingerprint()
    finally:
        torch.set_num_threads(threads)
    assert record["environment"]["cpu"] == kernels.cpu()
    assert not torch.are_deterministic_algorithms_enabled()
    faster = run_job(job(tmp_path / "two", cpu_threads=2), progress=False)
    assert faster["determinism"]["threads"] == 2 and faster["determinism"]["bitwise_reproducible_on_cpu"] is False


def test_the_interrupt_message_says_what_resume_will_do(tmp_path):
    from aebench.runner import Interrupted

    with pytest.raises(Interrupted, match="before the first checkpoint"):
        run_job(job(tmp_path / "a"), progress=False, on_step=interrupt_at(5))
    with pytest.raises(Interrupted, match="from its last checkpoint"):
        run_job(job(tmp_path / "b"), progress=False, on_step=interrupt_at(15))
    with pytest.raises(Interrupted, match="writes no checkpoints"):
        run_job(job(tmp_path / "c", budget="small-lr"), progress=False, on_step=interrupt_at(5))


def test_resume_skips_finished_runs(tmp_path):
    first = run_job(job(tmp_path), progress=False)
    assert run_job(job(tmp_path, resume=True), progress=False) == first


def test_non_finite_loss_fails_the_run_with_its_reason(tmp_path):
    record = run_job(job(tmp_path, model="NaNAE"), progress=False)
    assert record["status"] == "failed"
    assert "non-finite loss loss=nan at step 4" in record["reason"]
    assert record["metrics"] == {}


def test_exception_in_a_model_becomes_a_failed_record(tmp_path):
    record = run_job(job(tmp_path, model="CrashAE"), progress=False)
    assert record["status"] == "failed"
    assert record["reason"] == "RuntimeError: shape mismatch in layer 3"
    assert "training_step" in record["traceback"]


def test_model_without_the_needed_capability_is_not_applicable(tmp_path):
    record = run_job(job(tmp_path, model="EncoderOnly"), progress=False)
    assert record["status"] == "not_applicable"
    assert "sample" in record["reason"]


def test_model_that_refuses_the_tasks_data_is_not_applicable(tmp_path):
    record = run_job(job(tmp_path, model="ImagesOnly"), progress=False)
    assert record["status"] == "not_applicable"
    assert record["reason"] == "the model cannot be built for this task: images-only needs images, got vector data"


def test_batches_are_a_pure_function_of_seed_and_step():
    data = {"x": torch.arange(10.0)}
    sampler, fresh = BatchSampler(data, 4, seed=3), BatchSampler(data, 4, seed=3)
    batches = [sampler(step)["x"] for step in range(6)]
    assert torch.equal(fresh(5)["x"], batches[5])  # no state carried between steps
    assert sorted(torch.cat(batches[:2]).tolist()) == sorted(
        set(torch.cat(batches[:2]).tolist())
    )  # no repeats in an epoch
    assert not torch.equal(batches[0], batches[2])  # epochs are reshuffled


def test_job_round_trips_through_json_and_runs_in_another_process(tmp_path):
    original = job(tmp_path, seed=2, model_args={"noise": "0.0"})
    assert Job.from_json(original.to_json()) == original
    path = tmp_path / "job.json"
    path.write_text(original.to_json())
    done = subprocess.run([sys.executable, "-m", "aebench", "job", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    in_file = results.load_record(original.record_path)
    in_process = run_job(job(tmp_path / "again", seed=2, model_args={"noise": "0.0"}), progress=False)
    assert in_file["metrics"] == in_process["metrics"]


def test_corrupt_job_file_is_bad_input(tmp_path, capsys):
    path = tmp_path / "job.json"
    path.write_text(json.dumps({"task": "toy", "model": "x", "colour": "red"}))
    assert main(["job", str(path)]) == 2
    assert "unknown key 'colour'" in capsys.readouterr().err
