"""The SLURM executor: one SLURM job per run, submitted with submitit (`pip install 'aebench[slurm]'`).

The runs of a grid go out as one job array. Each runs `aebench.executors.execute` on its node with `--resume`
on, so a job that SLURM preempts or that reaches its time limit is requeued by submitit's checkpointing protocol
(`submitit.helpers.Checkpointable`: SLURM signals the job `signal_delay_s` before the limit, submitit resubmits the
same call) and continues from its last periodic checkpoint: it ends with the record an uninterrupted run writes.
The resources are recorded in each record (`executor`), with the SLURM job id and its restart count.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import tomllib

from aebench.config import PositiveInt, build_config, parse_assignments
from aebench.errors import AebenchError
from aebench.executors import WAITING, GridView, execute, grid_jobs, load_grid, save_grid, states_of, unfinished
from aebench.runner import Job

REQUEUE_GRACE_S = 30.0

try:
    import submitit
    from submitit.helpers import Checkpointable
except ImportError:  # the [slurm] extra is not installed: `require_submitit` says so before anything is submitted
    submitit, Checkpointable = None, object


@dataclass(frozen=True)
class SlurmResources:
    """What each SLURM job asks for; from `--slurm KEY=VALUE` and/or `--slurm-config FILE` (TOML or JSON)."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    gpus_per_job: int = 0
    cpus_per_job: PositiveInt = 1
    mem_gb: float | None = None
    time_min: PositiveInt = 60  # the time limit; a run that needs longer is requeued and resumed
    signal_delay_s: int = 120  # SLURM warns the job this long before its limit, so it can requeue itself
    array_parallelism: PositiveInt = 256  # at most this many jobs of the array at once
    setup: tuple[str, ...] = ()  # shell lines run before each job (e.g. "module load cuda")
    sbatch: tuple[str, ...] = ()  # extra sbatch options, each KEY=VALUE (e.g. constraint=a100)

    def submitit_parameters(self, task: str) -> dict[str, Any]:
        extra = {}
        for item in self.sbatch:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise AebenchError(f"--slurm sbatch: '{item}' is not KEY=VALUE")
            extra[key.strip()] = value.strip()
        parameters = {
            "job_name": f"aebench-{task}",
            "partition": self.partition,
            "account": self.account,
            "qos": self.qos,
            "gpus_per_node": self.gpus_per_job or None,
            "cpus_per_task": self.cpus_per_job,
            "mem": None if self.mem_gb is None else f"{int(self.mem_gb * 1024)}M",
            "time": self.time_min,
            "signal_delay_s": self.signal_delay_s,
            "array_parallelism": self.array_parallelism,
            "setup": list(self.setup),
            "additional_parameters": extra,
            "nodes": 1,
            "ntasks_per_node": 1,
        }
        return {key: value for key, value in parameters.items() if value is not None}


def resources_from(config_file: Path | None, assignments: list[str]) -> SlurmResources:
    """The resources of a config file (TOML or JSON) with `KEY=VALUE` flags on top; unknown keys are errors."""
    values: dict[str, Any] = {}
    if config_file is not None:
        try:
            text = Path(config_file).read_text(encoding="utf-8")
            values = json.loads(text) if Path(config_file).suffix == ".json" else tomllib.loads(text)
        except OSError as error:
            raise AebenchError(f"--slurm-config: cannot read {config_file}: {error.strerror}") from None
        except (json.JSONDecodeError, tomllib.TOMLDecodeError) as error:
            raise AebenchError(f"--slurm-config: {config_file} is not valid TOML or JSON: {error}") from None
        values = values.get("slurm", values) if isinstance(values, dict) else values
    flags = parse_assignments([f"slurm.{item}" for item in assignments], option="--slurm").get("slurm", {})
    return build_config(SlurmResources, {**values, **flags}, where="--slurm")


def check_cluster(resources: SlurmResources) -> None:
    """submitit and sbatch are there, and the partition exists: bad input is found before any data is loaded."""
    if submitit is None:
        raise AebenchError("--executor slurm needs submitit: pip install 'aebench[slurm]' (or pip install submitit)")
    if shutil.which("sbatch") is None:
        raise AebenchError("--executor slurm: no sbatch on PATH (is this a SLURM login node?)")
    if resources.partition is not None:
        try:
            listed = subprocess.run(["sinfo", "-h", "-o", "%R"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError) as error:
            raise AebenchError(f"--executor slurm: sinfo failed: {error}") from None
        known = listed.stdout.split()
        if listed.returncode == 0 and resources.partition not in known:
            raise AebenchError(
                f"--slurm partition: no partition '{resources.partition}' on this cluster (known: {', '.join(known)})"
            )


class SlurmRun(Checkpointable):
    """The callable each SLURM job runs; requeued as the same call when SLURM preempts it or time runs out."""

    def __call__(self, job_json: str, grid_file: str) -> str:
        survive_own_requeue()
        record = execute(Job.from_json(job_json), Path(grid_file))
        return record["status"]


def survive_own_requeue() -> None:
    """submitit's handler of the requeue signal runs `scontrol requeue` inside the job, and the requeue it asks for
    ends the job's processes, that scontrol among them when it has not returned yet (a loaded node; cf. submitit
    issue 1617). The handler then raises CalledProcessError wherever training was, and the run would be recorded as
    failed while SLURM starts it again. Wrapped, that case exits as a requeue does, its checkpoint kept; any other
    error of the handler goes on as before."""
    requeue_signal = submitit.JobEnvironment._usr_sig()
    handler = signal.getsignal(requeue_signal)
    if not callable(handler):
        return

    def handle(signum: int, frame: Any) -> None:
        try:
            handler(signum, frame)
        except subprocess.CalledProcessError as error:
            if list(error.cmd[:2]) != ["scontrol", "requeue"] or error.returncode >= 0:
                raise
            print(f"aebench: {error} (ended by the requeue it asked for): exiting as requeued", file=sys.stderr)
            raise SystemExit(-1) from None

    signal.signal(requeue_signal, handle)


def submit(grid_file: Path, resources: SlurmResources) -> list[str]:
    """Submit every unfinished job of the grid as one array; the SLURM ids go into the grid file."""
    check_cluster(resources)
    grid = load_grid(grid_file)
    todo = [i for i, entry in enumerate(grid["jobs"]) if not entry.get("reused")]
    if not todo:
        return []
    executor = submitit.SlurmExecutor(folder=grid_file.parent / "slurm" / "%j", max_num_timeout=20)
    executor.update_parameters(**resources.submitit_parameters(grid["task"]))
    jobs = grid_jobs(grid)
    try:
        submitted = executor.map_array(SlurmRun(), [jobs[i].to_json() for i in todo], [str(grid_file)] * len(todo))
    except Exception as error:  # sbatch refused (unknown partition, account, ...): one clear line
        raise AebenchError(f"--executor slurm: submission failed: {error}".splitlines()[0]) from None
    for i, job in zip(todo, submitted):
        grid["jobs"][i]["slurm_job_id"] = job.job_id
        grid["jobs"][i]["log"] = str(job.paths.stdout)
    save_grid(grid_file, grid)
    return [job.job_id for job in submitted]


def scheduler_states(grid: dict[str, Any]) -> dict[str, str]:
    """SLURM's state of each job of the grid still known to slurmctld (`squeue` in every state, ended ones for
    MinJobAge; array elements one by one): a requeued job is always listed, as REQUEUED or PENDING."""
    ids = sorted({str(e["slurm_job_id"]).split("_")[0] for e in grid["jobs"] if e.get("slurm_job_id")})
    if not ids or shutil.which("squeue") is None:
        return {}
    try:
        command = ["squeue", "-h", "-r", "-t", "all", "-o", "%i %T %e", "-j", ",".join(ids)]
        listed = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return {}
    if listed.returncode != 0:  # slurmctld busy or unreachable: nothing is known, so nothing has ended
        return {}
    out = listed.stdout
    states = {}
    for line in out.splitlines():
        job_id, state, ended = (line.split() + ["", ""])[:3]
        # A signalled job reads FAILED for a moment before submitit's requeue lands: an end within the last
        # REQUEUE_GRACE_S seconds is not final yet.
        if state not in WAITING and time.time() - _epoch(ended) < REQUEUE_GRACE_S:
            state = "ENDING"
        states[job_id] = state
    for entry in grid["jobs"]:  # a job no longer in squeue has ended; its record says how
        job_id = str(entry.get("slurm_job_id"))
        if entry.get("slurm_job_id") and job_id not in states:
            states[job_id] = "ENDED"
    return states


def _epoch(stamp: str) -> float:
    """squeue's end time (2026-12-02T07:05:30, local time) in seconds since the epoch; 0 when it has none."""
    try:
        return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S").timestamp()
    except ValueError:
        return 0.0


def wait(grid_file: Path, view: GridView | None, poll_s: float = 2.0) -> list[tuple[str, str]]:
    """Follow a submitted grid until every job has a record or is lost; returns the final states."""
    while True:
        grid = load_grid(grid_file)
        states = states_of(grid, scheduler_states(grid))
        if view is not None:
            view.update(states)
        if not unfinished(states):
            return states
        time.sleep(poll_s)


def cancel(grid_file: Path) -> None:
    """scancel the grid's jobs (Ctrl-C on a grid that was not detached)."""
    grid = load_grid(grid_file)
    ids = sorted({str(e["slurm_job_id"]).split("_")[0] for e in grid["jobs"] if e.get("slurm_job_id")})
    if ids:
        subprocess.run(["scancel", *ids], capture_output=True, timeout=30)


def executor_info(resources: SlurmResources) -> dict[str, Any]:
    return {"name": "slurm", "resources": json.loads(json.dumps(dataclasses.asdict(resources)))}
