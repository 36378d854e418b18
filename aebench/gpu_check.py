"""`aebench doctor --gpu-check`: does every task × baseline run on this GPU, correctly and fast? One command.

For each task and each registered baseline that can take its data (the `aebench list` check), the check
- runs the job twice through the runner at the `gpu-check` budget (each task's smoke budget cut to 50 steps): with
  bf16 autocast (where the model allows it) and in float32, and compares the two records' metrics within
  `Tolerance` (bf16 training takes other rounding paths, so the runs are not bitwise equal; a model whose bf16
  metrics leave the tolerance is flagged, not failed);
- times training steps of the same model and batches on the GPU, on the CPU, and for pix2pix and CycleGAN the
  reference implementation's step (`baselines/reference_steps.py`, junyanz/pytorch-CycleGAN-and-pix2pix's
  `optimize_parameters`) on the same networks and the same GPU;
- writes a Markdown report. Pairs not reached before `DEADLINE_S` are listed as not run, so the check ends in time.

Without CUDA it says so in one line and exits 2. The core (`run_check`) takes a device, so that its logic can be
tested on the CPU; the report says on which device it ran.
"""

from __future__ import annotations

import dataclasses
import importlib
import itertools
import math
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from aebench.errors import AebenchError
from aebench.registry import models, tasks
from aebench.runner import (
    DEFAULT_CACHE,
    GPU_CHECK_BUDGET,
    BatchSampler,
    Job,
    budget_of,
    build_model,
    device_name,
    get_task,
    load_data,
    prepare_for_device,
    refusal,
    resolve_model,
    run_job,
    seed_everything,
    train_on_device,
    uses_amp,
)

EXIT_OK, EXIT_PROBLEM, EXIT_NO_GPU = 0, 1, 2
DEADLINE_S = 7 * 60  # the whole check stays under 8 minutes on one GPU: later pairs are reported as not run
REFERENCE_STEPS = "aebench.baselines.reference_steps"  # make_reference_step(model) -> Callable[[batch], None]; the
# installed name, which the console script finds from any folder (baselines/ is not on its path)
REFERENCE_MODELS = ("pix2pix", "cyclegan")
UNAVAILABLE = "reference step unavailable"


@dataclass(frozen=True)
class Tolerance:
    """bf16 and fp32 metrics agree when |a − b| ≤ max(absolute, relative · max(|a|, |b|))."""

    relative: float = 0.10
    absolute: float = 1e-3

    def __str__(self) -> str:
        return f"|bf16 − fp32| ≤ max({self.absolute:g}, {self.relative:.0%} of the larger magnitude)"


@dataclass(frozen=True)
class MetricVerdict:
    name: str
    bf16: float | None
    fp32: float | None
    verdict: str  # agree | differ | unavailable


def compare_metrics(bf16: dict[str, float | None], fp32: dict[str, float | None], tolerance: Tolerance):
    """One verdict per metric of either run: agree, differ, or unavailable (missing in one or both)."""
    verdicts = []
    for name in sorted(bf16.keys() | fp32.keys()):
        a, b = bf16.get(name), fp32.get(name)
        if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)):
            verdict = "unavailable"
        else:
            allowed = max(tolerance.absolute, tolerance.relative * max(abs(a), abs(b)))
            verdict = "agree" if abs(a - b) <= allowed else "differ"
        verdicts.append(MetricVerdict(name, a, b, verdict))
    return verdicts


@dataclass
class PairResult:
    task: str
    model: str
    status: str = "not run"  # ok | failed | not applicable | not run
    reason: str = ""
    verdicts: list[MetricVerdict] = field(default_factory=list)
    amp: str | None = None
    peak_memory_bytes: int | None = None
    steps_per_s: float | None = None  # on the checked device, the runner's settings (bf16 where allowed)
    cpu_steps_per_s: float | None = None
    reference_steps_per_s: float | None = None
    reference_note: str = ""
    seconds: float = 0.0

    @property
    def agrees(self) -> bool:
        return all(v.verdict != "differ" for v in self.verdicts)


def select_device(name: str = "cuda") -> torch.device | None:
    """The device to check: CUDA when torch sees one, else None (the check cannot run)."""
    if name.startswith("cuda") and not torch.cuda.is_available():
        return None
    return torch.device(name)


def plan(cache_dir: Path, task_names: list[str] | None = None, model_names: list[str] | None = None):
    """[(task, model)] for every task and every registered model that has the task's capabilities and takes its
    data (its constructor on the task's data spec, on the meta device), and [(task, model, why not)] for the rest.

    The pairs take the tasks in turn (each task's first model, then each task's second, ...), so that a check cut
    short by its deadline has still run every task."""
    by_task: dict[str, list[tuple[str, str]]] = {}
    skipped = []
    for task_name in task_names or tasks.names():
        task = get_task(task_name, cache_dir)
        budget = budget_of(task, GPU_CHECK_BUDGET)
        spec = task.data_spec(budget)
        for model_name in model_names or models.names():
            job = Job(task=task_name, model=model_name, budget=GPU_CHECK_BUDGET, cache_dir=str(cache_dir))
            model_cls, config = resolve_model(job, task)
            missing = sorted(task.requires - model_cls.capabilities)
            why = f"lacks {', '.join(missing)}" if missing else refusal(model_cls, config, spec)
            if why:
                skipped.append((task_name, model_name, why))
            else:
                by_task.setdefault(task_name, []).append((task_name, model_name))
    rounds = itertools.zip_longest(*by_task.values())
    return [pair for pairs in rounds for pair in pairs if pair is not None], skipped


def steps_per_second(job: Job, device: torch.device, steps: int, warmup: int = 2, reference: bool = False) -> float:
    """Training steps per second of the job's model on `device`, as the runner trains it (its batches, autocast,
    fast path), after `warmup` steps; `reference` times `make_reference_step(model)` on the same networks and
    batches instead. Raises ImportError when the reference module is absent."""
    task = get_task(job.task, job.cache_dir)
    budget = budget_of(task, job.budget)
    model_cls, config = resolve_model(job, task)
    data = load_data(job)
    seed_everything(job.seed)
    model, optimizers, _ = build_model(model_cls, config, data, budget, device)
    model = prepare_for_device(model, data.spec, device, job.compile)
    train, _ = train_on_device(data.train, device)
    image = device.type == "cuda" and data.spec.kind == "image"
    sampler = BatchSampler(train, budget.batch_size, job.seed, device=device, channels_last=image)
    if reference:
        step: Callable[[dict], Any] = importlib.import_module(REFERENCE_STEPS).make_reference_step(model)
    else:
        step = lambda batch: model.training_step(batch, optimizers)  # noqa: E731
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if uses_amp(job, model_cls, device) else nullcontext()
    model.train()
    for index in range(warmup + steps):
        if index == warmup:
            _synchronize(device)
            started = time.perf_counter()
        with autocast:
            step(sampler(index))
    _synchronize(device)
    return steps / (time.perf_counter() - started)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _metric_values(record: dict[str, Any]) -> dict[str, float | None]:
    return {name: entry["value"] for name, entry in record["metrics"].items()}


def check_pair(
    task: str, model: str, device: torch.device, out: Path, cache_dir: Path, tolerance: Tolerance,
    timed_steps: int = 20, cpu_steps: int = 3,
) -> PairResult:  # fmt: skip
    """Both runs, the verdicts and the timings of one pair; a failure is the pair's result, never an exception."""
    started = time.perf_counter()
    result = PairResult(task, model)
    common = dict(task=task, model=model, budget=GPU_CHECK_BUDGET, device=str(device), cache_dir=str(cache_dir))
    try:
        bf16 = run_job(Job(**common, amp=True, out_dir=str(out / "bf16")), progress=False)
        fp32 = run_job(Job(**common, amp=False, out_dir=str(out / "fp32")), progress=False)
        for record in (bf16, fp32):
            if record["status"] != "ok":
                result.status = "failed" if record["status"] == "failed" else "not applicable"
                result.reason = f"{'bf16' if record is bf16 else 'fp32'} run: {record['reason']}"
                return result
        result.amp, result.peak_memory_bytes = bf16.get("amp"), bf16.get("peak_gpu_memory_bytes")
        result.verdicts = compare_metrics(_metric_values(bf16), _metric_values(fp32), tolerance)
        job = Job(**common)
        result.steps_per_s = steps_per_second(job, device, timed_steps)
        cpu_job = dataclasses.replace(job, device="cpu")
        result.cpu_steps_per_s = steps_per_second(cpu_job, torch.device("cpu"), cpu_steps, warmup=1)
        if job.model_name in REFERENCE_MODELS:
            try:
                result.reference_steps_per_s = steps_per_second(job, device, timed_steps, reference=True)
            except ImportError:
                result.reference_note = UNAVAILABLE
        result.status = "ok"
    except AebenchError as error:
        result.status, result.reason = "failed", str(error)
    except Exception as error:  # one broken pair never stops the others
        result.status, result.reason = "failed", f"{type(error).__name__}: {error}"
    finally:
        result.seconds = time.perf_counter() - started
    return result


def run_check(
    pairs: list[tuple[str, str]], device: torch.device, out: Path, cache_dir: Path, tolerance: Tolerance = Tolerance(),
    deadline_s: float = DEADLINE_S, **timing: int,
) -> list[PairResult]:  # fmt: skip
    """Every pair on `device`, in order, until `deadline_s` has passed; the rest are 'not run'."""
    started, results = time.perf_counter(), []
    for task, model in pairs:
        if time.perf_counter() - started > deadline_s:
            results.append(PairResult(task, model, reason=f"the check's {deadline_s:.0f} s were spent"))
            continue
        results.append(check_pair(task, model, device, out, cache_dir, tolerance, **timing))
        print(f"{task} {model}: {results[-1].status} ({results[-1].seconds:.1f} s)", file=sys.stderr)
    return results


def _rate(value: float | None) -> str:
    return "–" if value is None else f"{value:.3g}"


def _ratio(a: float | None, b: float | None) -> str:
    return "–" if a is None or b is None or b == 0 else f"{a / b:.2f}×"


def render_report(
    results: list[PairResult], skipped: list[tuple[str, str, str]], device: torch.device, tolerance: Tolerance,
    seconds: float,
) -> str:  # fmt: skip
    """The Markdown report: one row per pair, then what differed, failed or was skipped."""
    lines = [
        "# aebench GPU check",
        "",
        f"Device: {device_name(device)} (`{device}`); torch {torch.__version__}; {seconds:.0f} s in all. Budget "
        f"`{GPU_CHECK_BUDGET}`: each task's smoke budget cut to at most 50 steps.",
        f"bf16 against fp32: {tolerance}. Steps per second: the runner's training step after warm-up (bf16 where "
        "the model allows it); CPU: the same model and batches on this machine's CPU; reference: the "
        "pytorch-CycleGAN-and-pix2pix step on the same networks and device.",
        "",
        "| task | model | status | bf16 vs fp32 | AMP | steps/s | CPU steps/s | vs CPU | reference steps/s | "
        "ours / reference | peak memory (MiB) | time (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        agreement = "–" if not r.verdicts else ("agree" if r.agrees else "**differ**")
        reference = r.reference_note or _rate(r.reference_steps_per_s)
        memory = "–" if r.peak_memory_bytes is None else f"{r.peak_memory_bytes / 2**20:.0f}"
        lines.append(
            f"| {r.task} | {r.model} | {r.status} | {agreement} | {r.amp or 'fp32'} | {_rate(r.steps_per_s)} | "
            f"{_rate(r.cpu_steps_per_s)} | {_ratio(r.steps_per_s, r.cpu_steps_per_s)} | {reference} | "
            f"{_ratio(r.steps_per_s, r.reference_steps_per_s)} | {memory} | {r.seconds:.1f} |"
        )
    differing = [(r, v) for r in results for v in r.verdicts if v.verdict == "differ"]
    if differing:
        lines += ["", "## bf16 and fp32 differ", ""]
        lines += [f"- {r.task} {r.model} {v.name}: bf16 {v.bf16:.4g}, fp32 {v.fp32:.4g}" for r, v in differing]
    problems = [r for r in results if r.status != "ok"]
    if problems:
        lines += ["", "## Not ok", ""]
        lines += [f"- {r.task} {r.model}: {r.status}: {r.reason}" for r in problems]
    if skipped:
        lines += ["", "## Not applicable (not run)", ""]
        lines += [f"- {task} {model}: {why}" for task, model, why in skipped]
    return "\n".join(lines) + "\n"


def verdict(results: list[PairResult]) -> int:
    """0 when every pair ran and its bf16 and fp32 metrics agree, else 1."""
    return EXIT_OK if all(r.status == "ok" and r.agrees for r in results) else EXIT_PROBLEM


def main(report: Path, cache_dir: Path = DEFAULT_CACHE, device_name_: str = "cuda") -> int:
    device = select_device(device_name_)
    if device is None:
        print("aebench doctor --gpu-check: no CUDA device is visible to torch; nothing to check", file=sys.stderr)
        return EXIT_NO_GPU
    started = time.perf_counter()
    pairs, skipped = plan(cache_dir)
    with tempfile.TemporaryDirectory(prefix="aebench-gpu-check-") as out:
        results = run_check(pairs, device, Path(out), cache_dir)
    text = render_report(results, skipped, device, Tolerance(), time.perf_counter() - started)
    Path(report).parent.mkdir(parents=True, exist_ok=True)
    Path(report).write_text(text, encoding="utf-8")
    print(f"GPU check report in {report}", file=sys.stderr)
    return verdict(results)
