"""The runner: turns a (task, model, seed, budget) job into a result record.

It never branches on a task's or a model's name: it asks the task for data and for an evaluation, and the model
for its capabilities, optimizers and training step. A `Job` is plain data (JSON round trip), so an executor can
run it in another process or on another machine (`aebench job JOB.json`) with the same outcome.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch
from tqdm.auto import tqdm

from aebench import kernels, results
from aebench.checkpoints import (
    LossHistory,
    Selection,
    UnusableCheckpoint,
    checkpoint_state,
    load_checkpoint,
    restore,
    save_checkpoint,
)
from aebench.config import Range, build_config, to_dict
from aebench.errors import AebenchError, NonFiniteLoss
from aebench.identity import identity_of, reference_identity, run_identity
from aebench.metrics.base import item_interval
from aebench.model import Batch, DataSpec, Model, PendingLosses
from aebench.registry import models, tasks
from aebench.task import Budget, Evaluation, Task, TaskData
from aebench.tracking import RunTracking, check_trackers

DEFAULT_CACHE = Path.home() / ".cache" / "aebench"
MAX_SEED = 2**63 - 1  # torch.manual_seed takes 64-bit seeds; records hold them as JSON integers


@dataclass(frozen=True)
class Job:
    """Everything that defines one run; `model_args` are the user's `key=value` overrides for this model."""

    task: str
    model: str
    seed: Annotated[int, Range(0, MAX_SEED)] = 0
    budget: str = "smoke"
    device: str = "auto"
    model_args: dict[str, str] = field(default_factory=dict)
    out_dir: str = "results"
    data_dir: str | None = None
    cache_dir: str = str(DEFAULT_CACHE)
    resume: bool = False
    label: str | None = None  # the leaderboard row's name for this run, instead of the model's (or its variant's)
    # Intra-op threads of a CPU run. oneDNN's multi-threaded convolution backward passes sum in an order that
    # varies from run to run (two runs of the dae differ after one step); one thread makes CPU runs bitwise
    # reproducible. More threads are faster on a quiet many-core machine; the record says which was used.
    cpu_threads: Annotated[int, Range(1)] = 1
    # Where and how the job was run (executor name, parallel jobs, SLURM resources): kept in the record, not part
    # of the run's identity.
    executor: dict[str, Any] = field(default_factory=dict)
    track: tuple[str, ...] = ()  # experiment trackers to log the run to (aebench.tracking): tensorboard, mlflow
    track_uri: str | None = None  # MLflow's tracking URI (default: a file store in out_dir)
    # GPU settings, no-ops on the CPU; recorded, not part of the run's identity (as the device is not). `amp`: bf16
    # autocast on CUDA where the model declares it safe (`Model.supports_amp`); `compile`: torch.compile the
    # model's networks (opt-in until measured).
    amp: bool = True
    compile: bool = False

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> Job:
        try:
            values = json.loads(text)
        except json.JSONDecodeError as error:
            raise AebenchError(f"job file: invalid JSON at line {error.lineno}") from error
        return build_config(cls, values, where="job file")

    @property
    def task_name(self) -> str:
        return tasks.get(self.task).name

    @property
    def model_name(self) -> str:
        """The registered name, or for a `file.py:Class` spec the class's `name` (else the class name)."""
        if ":" not in self.model:
            return self.model
        model_cls = model_class(self)
        return model_cls.name or model_cls.__name__

    @property
    def row_name(self) -> str:
        """The leaderboard row: the user's label, else the model's name with the --model-args that make it a
        variant (`ae [lr=0.01]`), else the model's name."""
        if self.label:
            return self.label
        return f"{self.model_name} [{self._args(', ')}]" if self.model_args else self.model_name

    @property
    def run_name(self) -> str:
        """What was run, as files name it: `ae-smoke`, `ae@lr=0.01-smoke`, `LABEL-smoke`; on published data
        (--data-dir) with the data's tag, `ae-paper-mnist-idx-1a2b3c` (`results.data_tag`)."""
        base = self.label or (f"{self.model_name}@{self._args(',')}" if self.model_args else self.model_name)
        tag = self.data_tag
        return f"{results.slug(base)}-{results.slug(self.budget)}" + (f"-{tag}" if tag else "")

    @property
    def data_tag(self) -> str:
        """`results.data_tag` of the job's data: "" without --data-dir (the task's embedded data)."""
        if self.data_dir is None:
            return ""
        data = load_data(self)
        return results.data_tag({"source": data.source, **data.info})

    def _args(self, separator: str) -> str:
        return separator.join(f"{key}={value}" for key, value in sorted(self.model_args.items()))

    @property
    def record_path(self) -> Path:
        return results.record_path(Path(self.out_dir), self.task_name, self.run_name, self.seed)

    def _run_file(self, folder: str, suffix: str) -> Path:
        name = f"{self.record_path.stem}{suffix}"
        return results.task_dir(Path(self.out_dir), self.task_name) / folder / name

    @property
    def checkpoint_path(self) -> Path:
        return self._run_file("checkpoints", ".pt")

    @property
    def samples_path(self) -> Path:
        return self._run_file("samples", ".png")


# A hook called after every training step as hook(step, losses); tests use it to interrupt a run.
StepHook = Callable[[int, dict[str, float]], None]


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise AebenchError(f"--device: unknown device '{name}' (choose auto, cpu or cuda)")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise AebenchError("--device cuda: no CUDA device is visible to torch")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def get_task(name: str, cache_dir: str | Path) -> Task:
    return tasks.get(name)(Path(cache_dir))


@lru_cache(maxsize=4)
def _load_data(task_name: str, data_dir: str | None, cache_dir: str, budget_name: str) -> TaskData:
    task = get_task(task_name, cache_dir)
    if data_dir is not None and not Path(data_dir).is_dir():
        raise AebenchError(f"--data-dir: {data_dir} is not a folder")
    return task.load(Path(data_dir) if data_dir is not None else None, budget=budget_of(task, budget_name))


def load_data(job: Job) -> TaskData:
    """The task's data for the job's budget, loaded once per process for all the jobs that share it."""
    return _load_data(job.task, job.data_dir, job.cache_dir, job.budget)


def model_class(job: Job) -> type[Model]:
    model_cls = models.get(job.model)
    if not (isinstance(model_cls, type) and issubclass(model_cls, Model)):
        raise AebenchError(f"model '{job.model}' is not an aebench Model subclass")
    return model_cls


def applied_overrides(overrides: dict[str, Any], model_cls: type[Model], model_name: str, where: str) -> dict:
    """The part of a task's or budget's `model_overrides` that reaches this model.

    A key that is a model's name holds that model's own values, every one of which must be a field of its config
    (a misspelt width must not pass silently); any other key is a config field, set in every model that has it.
    """
    fields = {f.name for f in dataclasses.fields(model_cls.Config)}
    applied = {key: value for key, value in overrides.items() if key in fields and not isinstance(value, dict)}
    own = overrides.get(model_name)
    if isinstance(own, dict):
        unknown = sorted(set(own) - fields)
        if unknown:
            raise AebenchError(f"{where}: '{model_name}' has no config field '{unknown[0]}'")
        applied.update(own)
    return applied


def resolve_overrides(job: Job, task: Task, model_cls: type[Model]) -> dict[str, dict[str, Any]]:
    """What set this model's config beyond its defaults: the task's overrides, the budget's, then the user's."""
    name = job.model_name
    return {
        "task": applied_overrides(task.model_overrides, model_cls, name, f"task {task.name} model_overrides"),
        "budget": applied_overrides(
            budget_of(task, job.budget).model_overrides, model_cls, name, f"budget {job.budget} model_overrides"
        ),
        "user": dict(job.model_args),
    }


def resolve_model(job: Job, task: Task) -> tuple[type[Model], Any]:
    """The model class and its config: the class defaults, then the task's overrides, then the budget's, then the
    user's."""
    model_cls = model_class(job)
    layers = resolve_overrides(job, task, model_cls)
    values = {**layers["task"], **layers["budget"], **layers["user"]}
    return model_cls, build_config(model_cls.Config, values, where=f"--model-args {job.model_name}")


GPU_CHECK_BUDGET = "gpu-check"  # every task's: its smoke budget cut to GPU_CHECK_STEPS steps, no checkpoints
GPU_CHECK_STEPS = 50


def budget_of(task: Task, name: str) -> Budget:
    if name == GPU_CHECK_BUDGET and name not in task.budgets and "smoke" in task.budgets:
        smoke = task.budgets["smoke"]
        steps = min(smoke.steps, GPU_CHECK_STEPS)
        note = f"`aebench doctor --gpu-check`: the smoke budget cut to {steps} steps; the numbers mean nothing"
        return dataclasses.replace(smoke, steps=steps, checkpoint_every=steps, note=note)
    try:
        return task.budgets[name]
    except KeyError:
        raise AebenchError(
            f"--budget: task '{task.name}' has no budget '{name}' (known: {', '.join(task.budgets)})"
        ) from None


class BatchSampler:
    """Batch `step` of the run, a pure function of (seed, step): a fresh permutation of the data each epoch.

    The batch lands on `device`: cut where the data lie (on the GPU when they are resident there: the permutation
    moves once per epoch, the rows never come back to the host), and otherwise sent from pinned memory without
    blocking. `channels_last` gives 4-D image batches the layout of the networks (`prepare_for_device`).
    """

    def __init__(
        self, data: dict[str, torch.Tensor], batch_size: int, seed: int, *, device: torch.device | None = None,
        channels_last: bool = False,
    ):  # fmt: skip
        self.data = data
        self.n = len(next(iter(data.values())))
        self.batch_size = min(batch_size, self.n)
        self.steps_per_epoch = self.n // self.batch_size
        self.seed = seed
        self.source = next(iter(data.values())).device
        self.device = self.source if device is None else device
        self.channels_last = channels_last
        self._epoch, self._perm = -1, torch.empty(0, dtype=torch.long)

    def __call__(self, step: int) -> Batch:
        epoch, index = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch, self._perm = epoch, torch.randperm(self.n, generator=generator).to(self.source)
        rows = self._perm[index * self.batch_size : (index + 1) * self.batch_size]
        batch = {key: value[rows] for key, value in self.data.items()}
        if self.device != self.source:  # host data for a GPU: a pinned copy goes without blocking the host
            batch = {key: value.pin_memory().to(self.device, non_blocking=True) for key, value in batch.items()}
        if self.channels_last:
            batch = {key: _channels_last(value) for key, value in batch.items()}
        return batch


def _channels_last(value: torch.Tensor) -> torch.Tensor:
    return value.contiguous(memory_format=torch.channels_last) if value.dim() == 4 else value


LOG_EVERY = 25  # steps between reads of the losses from a GPU (and progress-bar updates)
RESIDENT_SHARE = 0.5  # training data stay on the GPU when they take at most this share of its free memory


class LossLog:
    """The losses of the steps not read yet. On the CPU (`defer` False) every step is read at once; on a GPU the
    steps' PendingLosses are read back together, one device sync per read, the same floats as step by step."""

    def __init__(self, defer: bool):
        self.defer = defer
        self._pending: list[tuple[int, Any]] = []

    def add(self, step: int, losses: Any) -> None:
        self._pending.append((step, losses))

    def read(self) -> list[tuple[int, dict[str, float]]]:
        """[(step, {loss: value})] of the pending steps, in order; empties the log."""
        pending, self._pending = self._pending, []
        stacked = [losses.values for _, losses in pending if isinstance(losses, PendingLosses)]
        values = iter(torch.cat(stacked).tolist()) if stacked else iter(())
        out = []
        for step, losses in pending:
            if isinstance(losses, PendingLosses):
                out.append((step, {key: next(values) for key in losses.keys}))
            else:
                out.append((step, {key: float(value) for key, value in losses.items()}))
        return out


def uses_amp(job: Job, model_cls: type[Model], device: torch.device) -> bool:
    """bf16 autocast: on CUDA, where the job allows it and the model declares it safe."""
    return job.amp and device.type == "cuda" and model_cls.supports_amp


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's model string (`aebench.kernels.cpu`: /proc/cpuinfo, else what `platform` knows)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return kernels.cpu().get("model") or "unknown CPU"


def accelerator_info(job: Job, model_cls: type[Model], device: torch.device) -> dict[str, Any]:
    """What the record says of the hardware path: device name, AMP dtype used (or None), compile, peak GPU memory
    (filled in after the run on CUDA; None on the CPU)."""
    return {
        "device_name": device_name(device),
        "amp": "bf16" if uses_amp(job, model_cls, device) else None,
        "compile": job.compile,
        "peak_gpu_memory_bytes": None,
    }


def prepare_for_device(model: Model, spec: DataSpec, device: torch.device, compile_networks: bool) -> Model:
    """The GPU fast path, a no-op on the CPU: losses kept on the device between reads (`Model.defer_logs`),
    channels_last image networks; with `compile_networks` (opt-in, any device) each network torch.compiled in
    place (`nn.Module.compile`: the state dict keeps its keys, so checkpoints and selection are unchanged)."""
    if device.type == "cuda":
        model.defer_logs = True
        if spec.kind == "image":
            model.to(memory_format=torch.channels_last)
    if compile_networks:
        for network in model.children():
            network.compile()
    return model


def train_on_device(train: dict[str, torch.Tensor], device: torch.device) -> tuple[dict[str, torch.Tensor], str]:
    """The training split where batches are cut: as it is on the CPU; on a GPU resident there when it fits
    (`RESIDENT_SHARE` of the free memory), else in pinned host memory. Returns the tensors and where they are."""
    if device.type != "cuda":
        return train, "cpu"
    size = sum(value.numel() * value.element_size() for value in train.values())
    free, _ = torch.cuda.mem_get_info(device)
    if size <= RESIDENT_SHARE * free:
        return {key: value.to(device) for key, value in train.items()}, "gpu"
    return {key: value.pin_memory() for key, value in train.items()}, "pinned host memory"


def iterate_batches(data: dict[str, torch.Tensor], batch_size: int, device: torch.device) -> Iterator[Batch]:
    n = len(next(iter(data.values())))
    for start in range(0, n, batch_size):
        yield {key: value[start : start + batch_size].to(device) for key, value in data.items()}


def make_deterministic(device: torch.device, cpu_threads: int) -> dict[str, Any]:
    """Ask torch for deterministic kernels, run CPU work on `cpu_threads` threads (and set cuDNN's and cuBLAS's
    deterministic modes on CUDA); returns what was set, for the record.

    `use_deterministic_algorithms` also fills uninitialised memory (`torch.empty`) with NaN, so a kernel that
    leaves outputs unwritten gives NaN, a failed run, rather than a silently different record. It does not cover
    oneDNN's CPU convolutions, whose backward passes are reproducible only on one thread (see `Job.cpu_threads`).
    On the CPU the settings carry the kernels' fingerprint at this thread count (`aebench.kernels`): another CPU
    model can round differently, and the fingerprint says whether it does.
    """
    torch.use_deterministic_algorithms(True, warn_only=True)
    if device.type == "cpu":
        torch.set_num_threads(cpu_threads)
    settings: dict[str, Any] = {
        "deterministic_algorithms": True,
        "fill_uninitialized_memory": bool(torch.utils.deterministic.fill_uninitialized_memory),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA"),
        "threads": torch.get_num_threads(),
        "bitwise_reproducible_on_cpu": torch.get_num_threads() == 1,  # on this CPU model: see kernel_fingerprint
    }
    if device.type == "cpu":
        settings["kernel_fingerprint"] = kernels.fingerprint()
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when cuBLAS starts
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        settings.update(
            cudnn_deterministic=True,
            cudnn_benchmark=False,
            cublas_workspace_config=os.environ["CUBLAS_WORKSPACE_CONFIG"],
        )
    return settings


def checkpoint_identity(job: Job, config: Any, budget: Budget) -> dict[str, Any]:
    """What a checkpoint must match to be resumed: the same model, config, seed and budget."""
    return {
        "task": job.task,
        "model": job.model,
        "seed": job.seed,
        "config": to_dict(config),
        "budget": dataclasses.asdict(budget),
    }


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a run; `message` says what `--resume` will do with it."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def run_job(job: Job, *, progress: bool = True, on_step: StepHook | None = None) -> dict[str, Any]:
    """Train, evaluate and record one job; returns the record (also written to `job.record_path`).

    Training or evaluation errors of the model (NaN losses, exceptions, an unusable checkpoint) become a failed
    record. Bad input (unknown names, malformed config, missing data) raises AebenchError before any training. A
    KeyboardInterrupt propagates as `Interrupted`, leaving the last periodic checkpoint for `resume`.
    """
    started, cpu_started = time.perf_counter(), time.process_time()
    task = get_task(job.task, job.cache_dir)
    budget = budget_of(task, job.budget)
    model_cls, config = resolve_model(job, task)
    device = resolve_device(job.device)
    data = load_data(job)
    check_record_slot(job)
    check_trackers(job.track, job.track_uri)
    record = _base_record(job, task, budget, model_cls, config, data, device)
    record.update(accelerator_info(job, model_cls, device))

    if job.resume and _finished(job, record["identity"]["hash"]):
        return results.load_record(job.record_path)

    missing = sorted(task.requires - model_cls.capabilities)
    if missing:
        record.update(status="not_applicable", reason=f"model lacks capability {', '.join(missing)} needed by the task")
        return _finish(record, job, started, cpu_started)

    threads = torch.get_num_threads()  # the caller's settings, given back after the run
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    record["determinism"] = make_deterministic(device, job.cpu_threads)
    tracking = RunTracking(record)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    try:
        data_hash = record["identity"]["parts"]["data"]
        checkpoint = (
            load_checkpoint(job.checkpoint_path, checkpoint_identity(job, config, budget), data_hash)
            if job.resume
            else None
        )
        record["resumed"] = checkpoint is not None
        earlier, processes = (0.0, _this_process(record)) if checkpoint is None else _resumed(record, checkpoint)
        started -= earlier  # the run's clocks start with the seconds its earlier processes spent
        cpu_earlier = 0.0 if checkpoint is None else checkpoint.get("cpu_time_s")
        cpu_started = None if cpu_earlier is None else cpu_started - cpu_earlier  # None: not kept by an earlier one
        tracking = RunTracking.start(job, record, first_step=checkpoint["step"] if checkpoint else 0)
        model, trained = _train(
            job, task, budget, model_cls, config, data, device, checkpoint, progress, on_step, tracking,
            carry=lambda: {"wall_time_s": time.perf_counter() - started, "cpu_time_s": _cpu_time(cpu_started),
                           **processes, "data": data_hash},
        )  # fmt: skip
        record.update(trained)
        record["n_parameters"] = model.n_parameters()
        model.eval()
        generator = torch.Generator().manual_seed(job.seed)
        with torch.no_grad():
            evaluation = task.evaluate(model, data, budget, generator)
        record["metrics"] = metric_entries(task, evaluation)
        record["details"] = json_safe(evaluation.details)
        record["status"] = "ok"
        _save_samples(task, model, data, job, record)
    except KeyboardInterrupt:
        tracking.interrupted()
        raise Interrupted(_interrupt_message(job, budget)) from None
    except CannotBuild as error:
        record.update(status="not_applicable", reason=f"the model cannot be built for this task: {error}")
    except (NonFiniteLoss, UnusableCheckpoint) as error:
        record.update(status="failed", reason=str(error))
    except Exception as error:  # a broken model must not stop the other jobs; keep the cause
        record.update(status="failed", reason=f"{type(error).__name__}: {error}")
        record["traceback"] = traceback.format_exc(limit=8)
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
    if device.type == "cuda":
        record["peak_gpu_memory_bytes"] = torch.cuda.max_memory_allocated(device)
    tracking.finish(record, job.samples_path)  # before the record is written: it holds the trackers' warnings
    record = _finish(record, job, started, cpu_started)
    if record["status"] == "ok":
        job.checkpoint_path.unlink(missing_ok=True)
    return record


def _this_process(record: dict[str, Any]) -> dict[str, list[str | None]]:
    """What a checkpoint keeps of the process that writes it: its code and its CPU kernels (None on a GPU)."""
    return {
        "git_commits": [record["environment"]["git_commit"]],
        "kernel_fingerprints": [record["determinism"].get("kernel_fingerprint")],
    }


def _resumed(record: dict[str, Any], checkpoint: dict[str, Any]) -> tuple[float, dict[str, list[str | None]]]:
    """What a resumed run's record takes from its checkpoint: `resumed_at_step`; the seconds its earlier processes
    spent up to it (less the steps after it that they lost), which `wall_time_s` includes; `git_commits`, the code
    of its processes in turn, and `kernel_fingerprints`, their CPU kernels in turn (aebench.kernels: a run continued
    on a CPU that rounds differently is not the run either machine would give alone), repeats merged, with a warning
    when either changed. A checkpoint written before it kept these (earlier aebench versions) gives
    `wall_time_partial` (this process's seconds only) and None for what it did not keep."""
    record["resumed_at_step"] = checkpoint["step"]
    if checkpoint.get("wall_time_s") is None:
        record["wall_time_partial"] = True
    chains = {}
    for key, (now,) in _this_process(record).items():
        chain = list(checkpoint.get(key) or [None])
        chains[key] = chain if chain[-1] == now else [*chain, now]
    record.update(chains)
    said = {"git_commits": "ran commits", "kernel_fingerprints": "computed with CPU kernels"}
    for key, chain in chains.items():
        if len(chain) > 1:
            named = ", ".join(str(value)[:12] if value else "not recorded" for value in chain)
            record.setdefault("warnings", []).append(f"the processes of this resumed run {said[key]} {named} in turn")
    return float(checkpoint.get("wall_time_s") or 0.0), chains


def _save_samples(task: Task, model: Model, data: TaskData, job: Job, record: dict[str, Any]) -> None:
    """The sample picture; a failure to draw it is a warning in the record, never the loss of the metrics."""
    try:
        with torch.no_grad():
            task.save_samples(model, data, job.samples_path, torch.Generator().manual_seed(job.seed))
    except Exception as error:
        record.setdefault("warnings", []).append(f"sample picture not drawn: {type(error).__name__}: {error}")


def _interrupt_message(job: Job, budget: Budget) -> str:
    if job.checkpoint_path.exists():
        return f"interrupted; rerun with --resume to continue {job.model_name} seed {job.seed} from its last checkpoint"
    if budget.checkpoint_every >= budget.steps:
        return f"interrupted; budget '{job.budget}' writes no checkpoints, so --resume starts {job.model_name} over"
    return (
        f"interrupted before the first checkpoint (step {budget.checkpoint_every}); "
        f"--resume starts {job.model_name} seed {job.seed} over"
    )


def check_record_slot(job: Job) -> None:
    """A run may replace its own earlier record, never one of something else that landed on the same file name
    (a --label used again for other --model-args, or another model file with the same name)."""
    if not job.record_path.exists():
        return
    done = results.load_record(job.record_path)
    theirs = (done["model"].get("spec"), (done["model"].get("overrides") or {}).get("user", {}))
    if done["kind"] != "model" or theirs != (job.model, dict(job.model_args)):
        raise AebenchError(
            f"{job.record_path} holds a run of {theirs[0]} with --model-args {theirs[1] or '{}'}, not of {job.model} "
            f"with {dict(job.model_args) or '{}'}: give this run another --label, or another --out"
        )


def check_checkpoint_slot(job: Job, force: bool) -> None:
    """A run that does not resume writes its first checkpoint over the one already at its path: refused unless
    forced, so that an unfinished run (hours of training, perhaps) is continued with --resume or given up on
    purpose, never lost to a forgotten flag."""
    if job.resume or force or not job.checkpoint_path.exists():
        return
    raise AebenchError(
        f"{job.checkpoint_path} holds the checkpoint of an unfinished run of {job.row_name} seed {job.seed}: "
        "--resume continues it; --force starts over and replaces it"
    )


def _finished(job: Job, identity: str) -> bool:
    """Whether a resumed job already has a successful record of the same identity."""
    if not job.record_path.exists():
        return False
    done = results.load_record(job.record_path)
    return done["status"] == "ok" and identity_of(done) == identity


def job_identity(job: Job) -> dict[str, Any]:
    """The run identity of a job (aebench.identity), from its task, resolved model config, seed, budget and data."""
    task = get_task(job.task, job.cache_dir)
    budget = budget_of(task, job.budget)
    model_cls, config = resolve_model(job, task)
    return _run_identity(job, task, budget, model_cls, config, load_data(job))


def _run_identity(job, task, budget, model_cls, config, data) -> dict[str, Any]:
    return run_identity(
        task=task, budget_name=job.budget, budget=budget, model_name=job.model_name, model_cls=model_cls,
        config=config, seed=job.seed, data=data,
    )  # fmt: skip


SLURM_VARIABLES = {
    "slurm_job_id": "SLURM_JOB_ID",
    "slurm_array_job_id": "SLURM_ARRAY_JOB_ID",
    "slurm_array_task_id": "SLURM_ARRAY_TASK_ID",
    "slurm_restarts": "SLURM_RESTART_COUNT",
}


def executor_info(job: Job) -> dict[str, Any]:
    """The job's executor settings, with SLURM's job id and restart count when it runs under SLURM."""
    info = dict(job.executor) or {"name": "in-process"}
    for key, variable in SLURM_VARIABLES.items():
        if variable in os.environ:
            info[key] = os.environ[variable]
    return info


class CannotBuild(Exception):
    """The model refused the task's data (e.g. an image model given event vectors): the run is not applicable."""


def refusal(model_cls: type[Model], config: Any, spec: DataSpec) -> str | None:
    """Why the model would not take data of this spec (its constructor's AebenchError, as in `build_model`), or
    None. The model is built on the meta device: no memory, no initialisation, no training."""
    try:
        with torch.device("meta"):
            model_cls(config, spec)
    except AebenchError as error:
        return str(error)
    except Exception:  # a constructor that needs real tensors: it did not refuse the data
        return None
    return None


def build_model(model_cls: type[Model], config: Any, data: TaskData, budget: Budget, device: torch.device):
    """The model with its optimizers and schedulers; a model's AebenchError (data it cannot take) is CannotBuild."""
    try:
        model = model_cls(config, data.spec).to(device)
    except AebenchError as error:  # models say so for data (or config combinations) they cannot handle
        raise CannotBuild(str(error)) from None
    optimizers = model.configure_optimizers()
    return model, optimizers, model.configure_schedulers(optimizers, budget.steps)


def _train(
    job, task, budget, model_cls, config, data, device, checkpoint, progress, on_step, tracking=None, carry=None
):
    seed_everything(job.seed)
    model, optimizers, schedulers = build_model(model_cls, config, data, budget, device)
    identity = checkpoint_identity(job, config, budget)
    start, losses, selection, history = 0, {}, Selection(budget.select_every), LossHistory(budget.steps)
    if checkpoint is not None:
        start, losses = restore(checkpoint, model, optimizers, schedulers)
        selection.load_state_dict(checkpoint.get("selection"))
        if "history" in checkpoint:  # the checkpoint's identity holds the budget, so its windows are these
            history.load_state_dict(checkpoint["history"])
        else:  # a checkpoint from before loss histories: the curve starts where it resumed
            history = None

    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if uses_amp(job, model_cls, device) else nullcontext()
    model = prepare_for_device(model, data.spec, device, job.compile)
    train, placement = train_on_device(data.train, device)
    image = device.type == "cuda" and data.spec.kind == "image"
    sampler = BatchSampler(train, budget.batch_size, job.seed, device=device, channels_last=image)
    log = LossLog(defer=model.defer_logs)
    model.train()
    bar = tqdm(
        range(start, budget.steps),
        desc=f"{job.task_name} {job.model_name} seed {job.seed}",
        initial=start,
        total=budget.steps,
        disable=not progress or None,
        leave=False,
        dynamic_ncols=True,
    )
    for step in bar:
        with autocast:
            log.add(step, model.training_step(sampler(step), optimizers))
        due = (step + 1) % LOG_EVERY == 0 or step + 1 == budget.steps or selection.due(step + 1, budget.steps)
        logged = log.read() if not log.defer or due or (step + 1) % budget.checkpoint_every == 0 else []
        for logged_step, logged_losses in logged:  # every step on the CPU; on a GPU every LOG_EVERY steps
            bad = [key for key, value in logged_losses.items() if not np.isfinite(value)]
            if bad:
                raise NonFiniteLoss(f"non-finite loss {bad[0]}={logged_losses[bad[0]]} at step {logged_step}")
            if history is not None:
                history.add(logged_step, logged_losses)
            losses = logged_losses
            if tracking is not None and tracking.due(logged_step):  # the learning rates before the schedulers move
                tracking.log_step(logged_step, logged_losses, optimizers)  # them (on a GPU: those of the read)
        for scheduler in schedulers.values():
            scheduler.step()
        if selection.due(step + 1, budget.steps):
            selection.consider(step + 1, task, model, data, budget, job.seed)
        if (step + 1) % budget.checkpoint_every == 0 and step + 1 < budget.steps:
            state = checkpoint_state(identity, step + 1, losses, model, optimizers, schedulers)
            extra = {"selection": selection.state_dict()} | ({"history": history.state_dict()} if history else {})
            if carry is not None:  # what run_job keeps across a resume: time, code, kernels, data
                extra |= carry()
            save_checkpoint(job.checkpoint_path, {**state, **extra})
        if logged and step % LOG_EVERY < len(logged):  # a step that is a multiple of LOG_EVERY was just read
            bar.set_postfix({key: f"{value:.4g}" for key, value in list(losses.items())[:3]})
        if on_step is not None:
            for logged_step, logged_losses in logged:
                on_step(logged_step, logged_losses)
    bar.close()
    selection.restore_best(model)
    seed_everything(job.seed + 1)  # what follows training starts from the same state after a resume
    with torch.no_grad():
        model.eval()
        model.after_training(iterate_batches(data.train, budget.batch_size, device))
    trained = {"final_losses": losses, "steps_done": budget.steps}
    if device.type == "cuda":
        trained["train_data_on"] = placement
    if history is not None:
        trained["loss_history"] = history.summary()
    if selection.every:
        trained["selection"] = selection.summary()
    return model, trained


def metric_entries(task: Task, evaluation: Evaluation) -> dict[str, dict[str, Any]]:
    """The record form of an evaluation: value, direction, label, extractor or reason per metric."""
    entries = {}
    for spec in task.metrics:
        value = evaluation.metrics.get(spec.name)
        entry: dict[str, Any] = {
            "value": None if value is None else float(value),
            "higher_is_better": spec.higher_is_better,
            "label": spec.label or spec.name,
        }
        if spec.name in evaluation.extractors:
            entry["extractor"] = evaluation.extractors[spec.name]
        if (interval := item_interval(value)) is not None:  # a mean over test items: its bootstrap interval
            entry["interval"] = interval
        if value is None:
            entry["unavailable"] = evaluation.unavailable.get(spec.name, "not computed")
        elif not np.isfinite(value):
            raise NonFiniteLoss(f"metric {spec.name} is {value}")
        entries[spec.name] = entry
    return entries


def json_safe(value: Any) -> Any:
    """`value` with tensors and numpy values as plain lists and numbers, and NaN or ±inf as None (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (torch.Tensor, np.ndarray, np.generic)):
        return json_safe(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _base_record(job, task, budget, model_cls, config, data, device) -> dict[str, Any]:
    return {
        "schema_version": results.SCHEMA_VERSION,
        "kind": "model",
        "status": "failed",
        "reason": None,
        "task": {"name": task.name, "version": task.version},
        "model": {
            "name": job.model_name,
            "label": job.row_name,
            "spec": job.model,
            "class": f"{model_cls.__module__}.{model_cls.__qualname__}",
            "config": to_dict(config),
            "overrides": resolve_overrides(job, task, model_cls),
        },
        "seed": job.seed,
        "budget": {"name": job.budget, **dataclasses.asdict(budget)},
        "data": {"source": data.source, **data.info},
        "metrics": {},
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "environment": results.environment(),
        "resumed": False,
        "identity": _run_identity(job, task, budget, model_cls, config, data),
        "executor": executor_info(job),
    }


def _cpu_time(started: float | None) -> float | None:
    """The CPU seconds (every thread of this process, user and system) since `started` (`time.process_time()`, less
    the seconds of a resumed run's earlier processes); None when an earlier process's are unknown."""
    return None if started is None else round(time.process_time() - started, 3)


def _finish(record: dict[str, Any], job: Job, started: float, cpu_started: float | None) -> dict[str, Any]:
    record["wall_time_s"] = round(time.perf_counter() - started, 3)
    record["cpu_time_s"] = _cpu_time(cpu_started)
    record["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    record = json_safe(record)  # strict JSON whatever a model put in its losses or config
    results.save_record(record, job.record_path)
    return record


def run_references(
    task_name: str, budget_name: str, out_dir: str, data_dir: str | None, cache_dir: str
) -> list[dict[str, Any]]:
    """Compute and store the task's reference rows (they do not depend on any model); rows already stored under the
    same identity (task name and version, data content, budget, aebench version) are kept as they are, and rows
    computed for another results folder are copied from `cache_dir/references` instead of computed again."""
    job = Job(
        task=task_name, model="reference", budget=budget_name, out_dir=out_dir, data_dir=data_dir, cache_dir=cache_dir
    )
    task = get_task(task_name, cache_dir)
    budget = budget_of(task, budget_name)
    data = load_data(job)
    identity = reference_identity(task, budget_name, budget, data)
    stored = _stored_references(Path(out_dir), task.name, budget_name, job.data_tag, identity["hash"])
    if stored is not None:
        return stored
    shared = _cached_references(Path(cache_dir), task.name, identity["hash"])
    if shared is not None:
        for record in shared:
            path = results.reference_path(Path(out_dir), task.name, record["model"]["name"], budget_name, job.data_tag)
            results.save_record(record, path)
        return shared
    seed_everything(0)
    records = []
    for row, evaluation in task.references(data, budget, torch.Generator().manual_seed(0)).items():
        record = {
            "schema_version": results.SCHEMA_VERSION,
            "kind": "reference",
            "status": "ok",
            "reason": None,
            "task": {"name": task.name, "version": task.version},
            "model": {"name": row, "spec": None, "config": {}},
            "seed": 0,
            "budget": {"name": budget_name, **dataclasses.asdict(budget)},
            "data": {"source": data.source, **data.info},
            "metrics": metric_entries(task, evaluation),
            "details": json_safe(evaluation.details),
            "environment": results.environment(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "identity": identity,
        }
        results.save_record(record, results.reference_path(Path(out_dir), task.name, row, budget_name, job.data_tag))
        records.append(record)
    if records:
        try:  # for the next results folder; a cache that cannot be written costs only the recomputation
            path = _references_cache(Path(cache_dir), task.name, identity["hash"])
            path.parent.mkdir(parents=True, exist_ok=True)
            results.write_atomic(path, json.dumps(records, allow_nan=False) + "\n")
        except OSError as error:
            warnings.warn(f"{task.name}: cannot keep the reference rows in {cache_dir} ({error})", stacklevel=2)
    return records


def _references_cache(cache_dir: Path, task: str, identity: str) -> Path:
    return cache_dir / "references" / f"{results.slug(task)}-{identity[:16]}.json"


def _cached_references(cache_dir: Path, task: str, identity: str) -> list[dict[str, Any]] | None:
    """The reference records computed for this identity into another folder, or None (absent, damaged, foreign)."""
    path = _references_cache(cache_dir, task, identity)
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        records = [results.validate(record, str(path)) for record in stored]
    except (OSError, ValueError, TypeError, AebenchError):
        return None
    if not records or any(record["kind"] != "reference" or identity_of(record) != identity for record in records):
        return None
    return records


def _stored_references(out: Path, task: str, budget_name: str, data: str, identity: str) -> list[dict[str, Any]] | None:
    """The stored reference records of this budget and data (`results.data_tag`) when every one has this identity,
    else None (recompute)."""
    folder = results.task_dir(out, task) / "records"
    paths = sorted(folder.glob(f"reference-{results.slug(budget_name)}-*.json")) if folder.is_dir() else []
    stored = []
    for path in paths:
        try:
            record = results.load_record(path)
        except AebenchError:
            return None
        if record["budget"]["name"] == budget_name and results.data_tag(record["data"]) == data:
            stored.append(record)
    if not stored or any(identity_of(record) != identity for record in stored):
        return None
    return stored
