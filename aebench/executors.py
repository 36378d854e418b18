"""Executors: where the jobs of a grid (models × seeds of one task) run.

- `in-process` (the default): one job after another in this process.
- `local`: up to N jobs at once, each in its own process (`aebench job`), so one crashing job never takes another
  down; on a machine with GPUs each job gets its own (CUDA_VISIBLE_DEVICES), on a CPU each gets its share of the
  cores as threads.
- `slurm` (aebench.slurm): one SLURM job per run through submitit, as a job array, requeued and resumed from its
  checkpoint when preempted or timed out.

The local and SLURM executors save the grid as OUT/TASK/grids/GRID/grid.json (its jobs, identities, executor and
resources, SLURM job ids). A running job keeps a marker in OUT/TASK/running/ (host, pid, step), writes its record
atomically, and the last job of a grid to end rebuilds the leaderboard, so a detached grid needs no one waiting
for it. `aebench status OUT` reads those files: each job is queued, running, done, failed or lost (its process
ended without a record).
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from queue import Queue
from typing import Any, TextIO

from aebench import leaderboard, report, results
from aebench.errors import AebenchError
from aebench.identity import identity_of
from aebench.runner import Interrupted, Job, run_job

EXECUTORS = ("in-process", "local", "slurm")
STATES = ("queued", "running", "done", "failed", "lost")
UNFINISHED, BROKEN = ("queued", "running"), ("failed", "lost")
# SLURM states of a job that has not ended (PREEMPTED: submitit requeues it; ENDING: aebench.slurm's word for an
# end too recent to be final)
WAITING = ("ENDING", "PENDING", "RUNNING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "CONFIGURING", "COMPLETING",
           "RESIZING", "SUSPENDED", "PREEMPTED", "SIGNALING", "STAGE_OUT")  # fmt: skip
HEARTBEAT_S = 2.0  # how often a running job rewrites its marker (step, time)


# --- a grid on disk ------------------------------------------------------------------------------------------


def new_grid(jobs: list[Job], identities: list[str], reused: list[bool], executor: dict[str, Any]) -> Path:
    """Write the grid file of `jobs` (one task; `reused`: which have a finished identical run) and return its path."""
    task_dir = results.task_dir(Path(jobs[0].out_dir), jobs[0].task_name)
    grid_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
    path = task_dir / "grids" / grid_id / "grid.json"
    grid = {
        "id": grid_id,
        "task": jobs[0].task_name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "executor": executor,
        "jobs": [
            {"row": job.row_name, "job": dataclasses.asdict(job), "identity": key, "reused": done}
            for job, key, done in zip(jobs, identities, reused)
        ],
    }
    save_grid(path, grid)
    return path


def save_grid(path: Path, grid: dict[str, Any]) -> None:
    results.write_atomic(path, json.dumps(grid, indent=2) + "\n")


def load_grid(path: Path) -> dict[str, Any]:
    try:
        grid = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise AebenchError(f"{path}: not a readable grid file: {error}") from None
    if not isinstance(grid, dict) or not isinstance(grid.get("jobs"), list):
        raise AebenchError(f"{path}: not a grid file (no 'jobs' list)")
    return grid


def grid_jobs(grid: dict[str, Any]) -> list[Job]:
    return [Job.from_json(json.dumps(entry["job"])) for entry in grid["jobs"]]


def latest_grids(out: Path, task: str | None = None) -> list[Path]:
    """The newest grid file of each task under `out` (of `task` only, when given)."""
    newest = []
    for task_dir in sorted(p for p in Path(out).iterdir() if (p / "grids").is_dir()) if Path(out).is_dir() else []:
        if task is not None and task_dir.name != task:
            continue
        grids = sorted((task_dir / "grids").glob("*/grid.json"))
        if grids:
            newest.append(grids[-1])
    return newest


def marker_path(job: Job) -> Path:
    return results.task_dir(Path(job.out_dir), job.task_name) / "running" / f"{job.record_path.stem}.json"


# --- one job, in whatever process runs it --------------------------------------------------------------------


def execute(job: Job, grid_file: Path | None = None) -> dict[str, Any]:
    """Run one job of a grid: keep its running marker while it trains, write its record, and rebuild the
    leaderboard when it is the grid's last job to end."""
    marker = marker_path(job)
    started, last = time.time(), [0.0]
    state = {"host": socket.gethostname(), "pid": os.getpid(), "started": started, "step": 0}

    def heartbeat(step: int, losses: dict[str, float]) -> None:
        if time.time() - last[0] >= HEARTBEAT_S:
            last[0] = time.time()
            results.write_atomic(marker, json.dumps({**state, "step": step + 1, "updated": last[0]}))

    results.write_atomic(marker, json.dumps({**state, "updated": started}))
    try:
        record = run_job(job, progress=False, on_step=heartbeat)
    finally:
        marker.unlink(missing_ok=True)
    if grid_file is not None:
        finish_if_done(Path(grid_file))
    return record


def finish_if_done(grid_file: Path) -> bool:
    """Rebuild the grid's leaderboard and report when every job has its record; True when it did."""
    grid = load_grid(grid_file)
    if unfinished(states_of(grid)):
        return False
    first = grid["jobs"][0]["job"]
    leaderboard.write_leaderboards(Path(first["out_dir"]), grid["task"])
    report.write_report(Path(first["out_dir"]), grid["task"])
    return True


# --- states --------------------------------------------------------------------------------------------------


def job_state(entry: dict[str, Any], since: str, scheduler: dict[str, str] | None = None) -> tuple[str, str]:
    """(state, detail) of one grid entry, from its record (one of this grid: reused, or written after `since`, the
    grid's creation), its running marker and (SLURM) the scheduler's word."""
    job = Job.from_json(json.dumps(entry["job"]))
    path = job.record_path
    if path.is_file():
        try:
            record = results.load_record(path)
        except AebenchError as error:
            return "failed", str(error)
        ours = entry.get("reused") or _time(record.get("created")) >= _time(since)
        if ours and identity_of(record) == entry["identity"]:
            if record["status"] == "failed":
                return "failed", record.get("reason") or ""
            if record["status"] == "not_applicable":
                return "done", f"not applicable: {record.get('reason')}"
            return "done", "reused" if entry.get("reused") else f"{record.get('wall_time_s', 0):.0f} s"
    word = (scheduler or {}).get(str(entry.get("slurm_job_id")))
    marker = marker_path(job)
    if marker.is_file():
        try:
            info = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            info = {}
        alive = info.get("host") != socket.gethostname() or _alive(info.get("pid"))
        if alive and word not in ("PENDING", "REQUEUED"):
            return "running", f"step {info.get('step', 0)} · {info.get('host')} pid {info.get('pid')}"
        if word is None and not alive:
            return "lost", f"process {info.get('pid')} ended without a record (--resume continues it)"
    if word and word not in WAITING:
        return "lost", f"SLURM says {word} and no record was written (see {entry.get('log', 'its log')})"
    if entry.get("ended"):  # a local job's process ended without a record
        return "lost", f"its process ended without a record (see {entry.get('log')})"
    return "queued", word.lower() if word else ""


def _time(stamp: Any) -> float:
    try:
        return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S%z").timestamp()
    except (TypeError, ValueError):
        return float("-inf")


def _alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except (TypeError, ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def summary(states: list[tuple[str, str]]) -> str:
    counts = {state: sum(s == state for s, _ in states) for state in STATES}
    return ", ".join(f"{n} {state}" for state, n in counts.items() if n or state in ("done", "failed"))


class GridView:
    """The grid's progress, one line per job: redrawn in place on a terminal, one line per change elsewhere."""

    def __init__(self, grid: dict[str, Any], stream: TextIO = sys.stderr):
        self.grid, self.stream = grid, stream
        self.tty = stream.isatty()
        self.shown: list[tuple[str, str]] = []
        self.lines = 0

    def lines_of(self, states: list[tuple[str, str]]) -> list[str]:
        rows = [f"grid {self.grid['id']} ({self.grid['task']}, {self.grid['executor']['name']}): {summary(states)}"]
        for entry, (state, detail) in zip(self.grid["jobs"], states):
            rows.append(f"  {entry['row']:<22} seed {entry['job']['seed']:<4} {state:<8} {detail}")
        return rows

    def update(self, states: list[tuple[str, str]]) -> None:
        if self.tty:
            if self.lines:
                self.stream.write(f"\x1b[{self.lines}F\x1b[J")
            lines = self.lines_of(states)
            self.stream.write("\n".join(lines) + "\n")
            self.lines = len(lines)
        else:
            lines = self.lines_of(states)
            for i, (new, old) in enumerate(zip(states, self.shown or [None] * len(states))):
                if new[0] != (old or ("",))[0]:
                    self.stream.write(lines[i + 1].strip() + "\n")
        self.stream.flush()
        self.shown = list(states)


def states_of(grid: dict[str, Any], scheduler: dict[str, str] | None = None) -> list[tuple[str, str]]:
    return [job_state(entry, grid["created"], scheduler) for entry in grid["jobs"]]


def unfinished(states: list[tuple[str, str]]) -> bool:
    """Whether some job is still queued or running."""
    return any(state in UNFINISHED for state, _ in states)


def broken(states: list[tuple[str, str]]) -> bool:
    """Whether some job failed or was lost."""
    return any(state in BROKEN for state, _ in states)


# --- the local executor --------------------------------------------------------------------------------------


@dataclasses.dataclass
class Slots:
    """What each concurrent local job gets: a GPU of its own, or its share of the CPU cores as threads."""

    gpus: list[str]
    threads: int

    @classmethod
    def for_jobs(cls, n: int, device: str) -> Slots:
        import torch

        gpus: list[str] = []
        if device != "cpu" and torch.cuda.is_available():
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            gpus = visible.split(",") if visible else [str(i) for i in range(torch.cuda.device_count())]
            if n > len(gpus):
                raise AebenchError(f"--jobs {n}: each local job gets its own GPU and {len(gpus)} are visible")
        return cls(gpus=gpus, threads=max(1, (os.cpu_count() or 1) // n))


class LocalExecutor:
    """Up to `n` jobs at once, each `aebench job FILE --grid GRID` in a process of its own."""

    def __init__(self, n: int, slots: Slots):
        self.n, self.slots = n, slots
        self.free: Queue[int] = Queue()
        for slot in range(n):
            self.free.put(slot)
        self.processes: dict[int, subprocess.Popen] = {}
        self.stopping = threading.Event()
        self.lock = threading.Lock()

    def run(self, grid_file: Path, view: GridView | None) -> None:
        grid = load_grid(grid_file)
        folder = grid_file.parent
        for entry in grid["jobs"]:
            job = Job.from_json(json.dumps(entry["job"]))
            if job.cpu_threads > self.slots.threads:  # the threads are shared: no job takes more than its part
                job = dataclasses.replace(job, cpu_threads=self.slots.threads)
                entry["job"] = dataclasses.asdict(job)
            entry["file"] = str(folder / "jobs" / f"{job.record_path.stem}.json")
            entry["log"] = str(folder / "logs" / f"{job.record_path.stem}.log")
            results.write_atomic(Path(entry["file"]), job.to_json() + "\n")
        save_grid(grid_file, grid)
        todo = [i for i, (state, _) in enumerate(states_of(grid)) if state in ("queued", "lost")]  # lost: rerun
        with ThreadPoolExecutor(max_workers=self.n) as pool:
            futures = [pool.submit(self._one, grid_file, i, grid["jobs"][i]) for i in todo]
            try:
                while not all(f.done() for f in futures):
                    if view is not None:
                        view.update(states_of(grid))
                    time.sleep(0.5)
            except KeyboardInterrupt:
                self.stop()
                raise Interrupted("interrupted; rerun the same command with --resume to continue the grid") from None
        for future in futures:
            future.result()  # an error of the executor itself (not of a job) surfaces here
        if view is not None:
            view.update(states_of(grid))

    def _one(self, grid_file: Path, index: int, entry: dict[str, Any]) -> None:
        if self.stopping.is_set():
            return
        slot = self.free.get()
        try:
            env = dict(os.environ, OMP_NUM_THREADS=str(self.slots.threads), MKL_NUM_THREADS=str(self.slots.threads))
            if self.slots.gpus:
                env["CUDA_VISIBLE_DEVICES"] = self.slots.gpus[slot]
            command = [sys.executable, "-m", "aebench", "job", entry["file"], "--grid", str(grid_file)]
            Path(entry["log"]).parent.mkdir(parents=True, exist_ok=True)
            with open(entry["log"], "w", encoding="utf-8") as log:
                with self.lock:
                    if self.stopping.is_set():
                        return
                    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
                    self.processes[slot] = process
                process.wait()
            marker_path(Job.from_json(json.dumps(entry["job"]))).unlink(missing_ok=True)  # a dead job's marker
            with self.lock:  # a job whose process ended without a record is lost, not queued
                entry.update(ended=True, returncode=process.returncode)
                grid = load_grid(grid_file)
                grid["jobs"][index].update(ended=True, returncode=process.returncode)
                save_grid(grid_file, grid)
        finally:
            self.processes.pop(slot, None)
            self.free.put(slot)

    def stop(self) -> None:
        """No new job starts; running ones get SIGINT (they keep their last checkpoint for --resume)."""
        self.stopping.set()
        with self.lock:
            for process in self.processes.values():
                if process.poll() is None:
                    process.send_signal(signal.SIGINT)
        for process in list(self.processes.values()):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def detach_local(grid_file: Path) -> int:
    """Start `aebench grid GRID` in a session of its own (it outlives this shell); returns its pid."""
    log = grid_file.parent / "grid.log"
    with open(log, "w", encoding="utf-8") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "aebench", "grid", str(grid_file)],
            stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    grid = load_grid(grid_file)
    grid["leader"] = {"host": socket.gethostname(), "pid": process.pid, "log": str(log)}
    save_grid(grid_file, grid)
    return process.pid


def run_saved_local(grid_file: Path) -> int:
    """What a detached local grid runs: its jobs, then the leaderboard; exit 1 when a job failed."""
    grid = load_grid(grid_file)
    executor = grid["executor"]
    slots = Slots(gpus=list(executor.get("gpus", [])), threads=int(executor.get("threads", 1)))
    LocalExecutor(int(executor["jobs"]), slots).run(grid_file, GridView(grid, sys.stdout))
    finish_if_done(grid_file)
    return int(broken(states_of(grid)))
