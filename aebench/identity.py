"""Run identity: a content hash of everything that makes two runs the same run, so finished work is reused.

A run's identity covers the task's name and version, the content hash of its data (every split, every array),
the model (its name, class, the sha256 of the file that defines the class, and the resolved config), the seed,
the budget (its name and every value), and the aebench version. Equal identities mean the record of one stands for
the other: `aebench run` reuses a finished record with the same identity instead of training again, from its own
output folder and from any folder given with `--reuse`; `--force` trains anyway. The device, the thread count and
the executor are not part of it: they say where a run ran, not what it computed (the record keeps them).
A task's reference rows have an identity too (task, data, budget, aebench version): stored rows of the same identity
are kept instead of recomputed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import shutil
from functools import lru_cache
from pathlib import Path
from typing import Any

import aebench
from aebench import results
from aebench.config import to_dict
from aebench.errors import AebenchError
from aebench.model import Model
from aebench.task import Budget, Task, TaskData

IDENTITY_VERSION = "1"  # bump when the parts below change: older identities then never match


@lru_cache(maxsize=64)
def _file_sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def model_source_hash(model_cls: type[Model]) -> str | None:
    """sha256 of the file that defines the model class (its code, not its imports); None when it has none."""
    try:
        path = inspect.getsourcefile(model_cls)
    except TypeError:
        return None
    return _file_sha256(path)[:16] if path and Path(path).is_file() else None


def run_identity(
    *, task: Task, budget_name: str, budget: Budget, model_name: str, model_cls: type[Model], config: Any,
    seed: int, data: TaskData,
) -> dict[str, Any]:  # fmt: skip
    """{"hash": …, "parts": …}: the hash is sha256 over the canonical JSON of the parts."""
    parts = {
        "identity_version": IDENTITY_VERSION,
        "task": {"name": task.name, "version": task.version},
        "data": data.content_hash()[:16],
        "model": {
            "name": model_name,
            "class": f"{model_cls.__module__}.{model_cls.__qualname__}",
            "source": model_source_hash(model_cls),
            "config": to_dict(config),
        },
        "seed": seed,
        "budget": {"name": budget_name, **dataclasses.asdict(budget)},
        "aebench": aebench.__version__,
    }
    return {"hash": identity_hash(parts), "parts": parts}


def identity_hash(parts: dict[str, Any]) -> str:
    """sha256 (24 hex digits) of the canonical JSON of an identity's parts."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:24]


def reference_identity(task: Task, budget_name: str, budget: Budget, data: TaskData) -> dict[str, Any]:
    """The identity of a task's reference rows: what they are computed from (no model, seed 0)."""
    parts = {
        "identity_version": IDENTITY_VERSION,
        "task": {"name": task.name, "version": task.version},
        "data": data.content_hash()[:16],
        "budget": {"name": budget_name, **dataclasses.asdict(budget)},
        "aebench": aebench.__version__,
        "kind": "reference",
    }
    return {"hash": identity_hash(parts), "parts": parts}


def identity_of(record: dict[str, Any]) -> str | None:
    """The identity hash a record was made under; None for records from before identities (never reused)."""
    identity = record.get("identity")
    return identity.get("hash") if isinstance(identity, dict) else None


class FinishedRuns:
    """Finished records (status ok) by identity, from the job's own output folder and the `--reuse` folders."""

    def __init__(self, task_name: str, folders: list[Path]):
        self.by_identity: dict[str, Path] = {}
        for folder in folders:
            task_folder = results.task_dir(folder, task_name)
            if not folder.is_dir():
                raise AebenchError(f"--reuse: {folder} is not a folder")
            if not (task_folder / "records").is_dir():
                continue
            for record, path in zip(*_records_with_paths(task_folder)):
                key = identity_of(record)
                if record["kind"] == "model" and record["status"] == "ok" and key is not None:
                    self.by_identity.setdefault(key, path)

    def find(self, identity: str, own_path: Path) -> Path | None:
        """The job's own record when it has this identity, else any other finished record that has it."""
        if own_path.is_file():
            try:
                own = results.load_record(own_path)
            except AebenchError:
                own = {}
            if own.get("status") == "ok" and identity_of(own) == identity:
                return own_path
        return self.by_identity.get(identity)


def _records_with_paths(task_folder: Path) -> tuple[list[dict[str, Any]], list[Path]]:
    paths = sorted((task_folder / "records").glob("*.json"))
    return [results.load_record(p) for p in paths], paths


def adopt(found: Path, record_path: Path, samples_to: Path, label: str) -> dict[str, Any]:
    """Copy a finished record (and its sample picture) of the same identity to this run's place; the copy keeps
    every number and says where it came from."""
    record = results.load_record(found)
    if found.resolve() == record_path.resolve():
        return record
    record["model"]["label"] = label
    record["reused_from"] = str(found)
    results.save_record(record, record_path)
    samples_from = found.parent.parent / "samples" / f"{found.stem}.png"  # the layout of aebench.results
    if samples_from.is_file():
        samples_to.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(samples_from, samples_to)
    return record
