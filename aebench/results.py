"""Result records: one versioned JSON file per (task, model, seed), written atomically.

Layout under an output folder (RUN names what was run: the model, or its variant, and the budget):

    OUT/TASK/records/RUN-seedN.json              a model's run (status ok, failed or not_applicable)
    OUT/TASK/records/reference-BUDGET-NAME.json  a reference row (e.g. real test data vs real training data)
    OUT/TASK/leaderboard.{md,csv,tex}            views rebuilt from the records
    OUT/TASK/samples/RUN-seedN.png               what the trained model produced
    OUT/TASK/checkpoints/RUN-seedN.pt            resumable state of unfinished runs (not a result)

RUN is `MODEL-BUDGET` for a model run as the task and budget configure it (`ae-smoke`), `MODEL@KEY=VALUE,...-BUDGET`
with the user's --model-args (`ae@lr=0.01-smoke`), or `LABEL-BUDGET` for a run the user labelled, so that runs of
different things never share a file.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import json
import math
import os
import platform
import re
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from aebench.errors import AebenchError

SCHEMA_VERSION = 1
STATUSES = ("ok", "failed", "not_applicable")
KINDS = ("model", "reference")
REQUIRED = {
    "schema_version": int,
    "kind": str,
    "status": str,
    "task": dict,
    "model": dict,
    "seed": int,
    "budget": dict,
    "metrics": dict,
}
# Optional fields: records written before a field existed lack it and still load. The hardware path (`device_name`,
# `amp`, `compile`, `peak_gpu_memory_bytes`) came with the GPU fast path; null where it does not apply.
OPTIONAL = {
    "reason": str, "device": str, "n_parameters": int, "wall_time_s": float, "details": dict, "identity": dict,
    "executor": dict, "reused_from": str, "device_name": str, "amp": str, "compile": bool,
    "peak_gpu_memory_bytes": int, "resumed": bool, "resumed_at_step": int, "wall_time_partial": bool,
    "git_commits": list, "kernel_fingerprints": list, "cpu_time_s": float,
}  # fmt: skip


MAX_STEM = 96  # longer run names are cut and end in a hash of the whole name, so that they stay distinct


def slug(name: str) -> str:
    """A file-name-safe form of a model, run or row name (`./my_model.py:MyModel` → `my_model.py-MyModel`,
    `W/O processing` → `W-O-processing`, `ae@lr=0.01,beta=2` unchanged)."""
    base = name.rsplit("/", 1)[-1] if ".py" in name else name  # a model file's path: its name is enough
    text = re.sub(r"[^A-Za-z0-9_.+=,@-]+", "-", base).strip("-") or "model"
    if len(text) > MAX_STEM:
        text = f"{text[: MAX_STEM - 13]}-{hashlib.sha256(name.encode()).hexdigest()[:12]}"
    return text


def task_dir(out: Path, task: str) -> Path:
    return Path(out) / task


def record_path(out: Path, task: str, run: str, seed: int) -> Path:
    """`run` is a run's name (`Job.run_name`: model or variant, and budget)."""
    return task_dir(out, task) / "records" / f"{slug(run)}-seed{seed}.json"


def reference_path(out: Path, task: str, row: str, budget: str, data: str = "") -> Path:
    """`data`: the `data_tag` of the data the row was computed on ("" for the task's embedded data)."""
    run = f"{budget}-{data}" if data else budget
    return task_dir(out, task) / "records" / f"reference-{slug(run)}-{slug(row)}.json"


def data_tag(data: dict[str, Any]) -> str:
    """Which data a run used, as names tell runs apart: "" for the task's embedded default data, else the kind of
    published files (what the record's source names before its colon: `mnist-idx`, `indigo`, ...) and six hex
    digits of their content (the splits' digests), e.g. `mnist-idx-1a2b3c`. `data` is a record's "data" entry;
    a source that is not of the form `kind: path` names no published data either.

    Runs of one model and budget on different data are different runs: their files get different names, and a
    leaderboard never averages or ranks them together (their FID extractors, test sets and difficulty differ)."""
    published = published_source(data)
    if published is None:
        return ""
    content = data.get("sha256") or {key: value for key, value in data.items() if key != "source"}
    return f"{slug(published[0])}-{hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:6]}"


def published_source(data: dict[str, Any]) -> tuple[str, str] | None:
    """(kind, path) of a record's "data" entry whose source names published files as `kind: path`, else None (the
    task's embedded data, `embedded: ...`, or a source of another form)."""
    kind, colon, path = str(data.get("source") or "").partition(":")
    return None if not colon or kind.strip() == "embedded" else (kind.strip(), path.strip())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """A binary file to write that replaces `path` when the block ends: readers see the old file or the whole new
    one, never a partial one. Each writer has its own temporary file beside `path` (concurrent writers of one path
    leave one of their files whole), synced to disk before the rename; a block that raises, or is interrupted,
    leaves `path` as it was and no temporary file behind.

    The file gets the permissions of any file the user creates (0666 less the umask), not mkstemp's private 0600:
    records on a shared machine are meant to be read by the group.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: Path, text: str) -> None:
    """Write `text` (UTF-8) to `path` through `atomic_file`."""
    with atomic_file(path) as handle:
        handle.write(text.encode("utf-8"))


def rewrite_section(path: Path, begin: str, end: str, body: str, heading: str) -> None:
    """Put `body` between the marker lines `begin` and `end` of the Markdown file `path`, the rest unchanged: the
    part of a README that a command generates. A file without the markers gets `heading` and the marked block
    appended; one with `begin` but no `end` after it is an error, and is left as it is."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
    except (OSError, UnicodeDecodeError) as error:
        raise AebenchError(f"{path}: cannot read: {getattr(error, 'strerror', None) or error}") from error
    body = body if body.endswith("\n") else body + "\n"
    block = f"{begin}\n{body}{end}"
    head, found, rest = text.partition(begin)
    if found and end not in rest:  # appending would leave two begins, and the next rewrite would eat what lies between
        raise AebenchError(f"{path}: has the line '{begin}' but not '{end}' after it; put it back where it belongs")
    if found:
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + ("\n\n" if text.strip() else "") + f"{heading}\n\n{block}\n"
    try:
        write_atomic(path, text)
    except OSError as error:
        raise AebenchError(f"{path}: cannot write: {error.strerror or error}") from error


def save_record(record: dict[str, Any], path: Path) -> None:
    validate(record, str(path))
    write_atomic(path, json.dumps(record, indent=2, sort_keys=False, allow_nan=False) + "\n")


def validate(record: Any, where: str) -> dict[str, Any]:
    """`record` if it is a well-formed result record; otherwise one line naming `where` and the first fault.

    Every field a leaderboard or `compare` reads is checked for its type, so that a hand-edited or damaged record
    cannot crash them or change a ranking silently (a string "no" would read as true for `higher_is_better`).
    """
    if not isinstance(record, dict):
        raise AebenchError(f"{where}: not a result record (expected a JSON object)")
    for key, kind in REQUIRED.items():
        if not _is(record.get(key), kind):
            raise AebenchError(f"{where}: not a valid result record: '{key}' is missing or not a {kind.__name__}")
    if record["schema_version"] > SCHEMA_VERSION:
        raise AebenchError(f"{where}: record schema {record['schema_version']} is newer than this aebench reads")
    if record["kind"] not in KINDS:
        raise AebenchError(f"{where}: unknown kind '{record['kind']}' (expected {' or '.join(KINDS)})")
    if record["status"] not in STATUSES:
        raise AebenchError(f"{where}: unknown status '{record['status']}'")
    if record["model"].get("label") is not None and not isinstance(record["model"]["label"], str):
        raise AebenchError(f"{where}: 'model.label' is not a string")
    for part, keys in (("task", ("name", "version")), ("model", ("name",)), ("budget", ("name",))):
        for key in keys:
            if not isinstance(record[part].get(key), str) or not record[part][key]:
                raise AebenchError(f"{where}: '{part}.{key}' is missing or not a non-empty string")
    if record["seed"] < 0:
        raise AebenchError(f"{where}: 'seed' is negative")
    if record["status"] != "ok" and not isinstance(record.get("reason"), str):
        raise AebenchError(f"{where}: a record of status '{record['status']}' needs its 'reason' as a string")
    for name, metric in record["metrics"].items():
        _validate_metric(name, metric, where)
    for key, kind in OPTIONAL.items():
        if record.get(key) is not None and not _is(record[key], kind):
            raise AebenchError(f"{where}: '{key}' is not a {kind.__name__}")
    if "identity" in record and not isinstance(record["identity"].get("hash"), str):
        raise AebenchError(f"{where}: 'identity.hash' is missing or not a string")
    return record


def _is(value: Any, kind: type) -> bool:
    """isinstance, where a bool is no number and an int is a float."""
    if isinstance(value, bool):
        return kind is bool
    return isinstance(value, (int, float)) if kind is float else isinstance(value, kind)


def _validate_metric(name: str, metric: Any, where: str) -> None:
    if not isinstance(metric, dict) or "value" not in metric or "higher_is_better" not in metric:
        raise AebenchError(f"{where}: metric '{name}' lacks 'value' or 'higher_is_better'")
    value = metric["value"]
    if value is not None and (not _is(value, float) or not math.isfinite(value)):
        raise AebenchError(f"{where}: metric '{name}': value {value!r} is not a finite number or null")
    if not isinstance(metric["higher_is_better"], bool):
        raise AebenchError(
            f"{where}: metric '{name}': higher_is_better {metric['higher_is_better']!r} is not true/false"
        )
    if metric.get("label") is not None and not isinstance(metric["label"], str):
        raise AebenchError(f"{where}: metric '{name}': label is not a string")
    if value is None and not isinstance(metric.get("unavailable", ""), str):
        raise AebenchError(f"{where}: metric '{name}': 'unavailable' is not a string")
    extractor = metric.get("extractor")
    if extractor is not None and not (isinstance(extractor, dict) and isinstance(extractor.get("name"), str)):
        raise AebenchError(f"{where}: metric '{name}': extractor must be an object with a 'name' string")
    interval = metric.get("interval")  # optional (records before it have none): a bootstrap interval over items
    if interval is not None:
        bounds = (interval.get("low"), interval.get("high")) if isinstance(interval, dict) else (None, None)
        if not all(_is(b, float) and math.isfinite(b) for b in bounds) or not bounds[0] <= bounds[1]:
            raise AebenchError(f"{where}: metric '{name}': interval must be an object with finite low ≤ high")


def check_records(folder: Path) -> None:
    """Read every record already in a task folder: a corrupt one is named now, not after hours of training."""
    if (Path(folder) / "records").is_dir():
        load_records(folder, allow_empty=True)


def load_record(path: Path) -> dict[str, Any]:
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise AebenchError(f"{path}: cannot read: {error}") from error
    except json.JSONDecodeError as error:
        raise AebenchError(f"{path}: corrupt record (invalid JSON at line {error.lineno})") from error
    return validate(record, str(path))


def load_records(source: Path, *, allow_empty: bool = False) -> list[dict[str, Any]]:
    """Records from a record file, a task folder, or an output folder holding several tasks."""
    source = Path(source)
    if source.is_file():
        return [load_record(source)]
    if not source.is_dir():
        raise AebenchError(f"{source}: no such results file or folder")
    paths = sorted(p for p in source.glob("**/records/*.json"))
    if not paths and not allow_empty:
        raise AebenchError(f"{source}: no result records found (expected TASK/records/*.json)")
    records, seen = [], {}
    for path in paths:
        record = load_record(path)
        key = run_key(record)
        if key in seen:
            raise AebenchError(
                f"{path} and {seen[key]} are two records of the same run ({key[2]}, budget {key[4]}, seed {key[5]}): "
                "remove the one that is out of date"
            )
        seen[key] = path
        records.append(record)
    return records


def row_name(record: dict[str, Any]) -> str:
    """The leaderboard row of a record: its label (a variant's or the user's), else its model's name."""
    return record["model"].get("label") or record["model"]["name"]


def budget_label(record: dict[str, Any], name: str | None = None) -> str:
    """A record's budget (`name`: its table's, if given) as tables and figures name it: `quick`, and for a run on
    published data `quick on mnist-idx-1a2b3c` (`data_tag`), so rows on different data are never merged."""
    tag = data_tag(record.get("data") or {})
    name = record["budget"]["name"] if name is None else name
    return f"{name} on {tag}" if tag else name


def wall_time_partial(record: dict[str, Any]) -> bool:
    """Whether a record's `wall_time_s` misses the processes before a resume: records of resumed runs written before
    checkpoints kept the time (no `resumed_at_step`), and runs resumed from such a checkpoint (`wall_time_partial`)."""
    return bool(record.get("resumed")) and (record.get("wall_time_partial") or "resumed_at_step" not in record)


def run_key(record: dict[str, Any]) -> tuple:
    """What makes two records one run: task, kind, row, task version, budget, seed and data (`data_tag`)."""
    task, budget = record["task"], record["budget"]
    return (
        task["name"], record["kind"], row_name(record), task["version"], budget["name"], record["seed"],
        data_tag(record.get("data") or {}),
    )  # fmt: skip


def environment() -> dict[str, Any]:
    """Library versions, the CPU (`aebench.kernels.cpu`) and the git commit of the code that produced a record."""
    import numpy
    import torch

    import aebench
    from aebench import kernels

    return {
        "aebench": aebench.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "cpu": kernels.cpu(),
        "git_commit": git_commit(),
    }


SOURCE_PATHS = ("aebench", "baselines", "tasks", "pyproject.toml", "setup.py")  # what `git_commit` calls the code


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the aebench source tree, with '+dirty' when its code (`SOURCE_PATHS`) has uncommitted changes;
    None outside git. Records and leaderboards that runs write into a tracked results/ folder are not code: a run
    after another one's records replaced committed ones is not dirty. '+mixed': the tasks or baselines come from
    another tree than aebench/ (`python -m aebench` run in one checkout while another is installed, whose
    `aebench.tasks` and `aebench.baselines` then run), so the commit does not name all the code that ran.

    Looked up once per process: the code that runs is the code that was imported at the start.
    """
    root = Path(__file__).resolve().parent.parent
    mixed = any(not _inside(root, package) for package in ("aebench.tasks", "aebench.baselines"))
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", *SOURCE_PATHS],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "") + ("+mixed" if mixed else "")


def _inside(root: Path, package: str) -> bool:
    """Whether an importable package's folders lie in `root` (True when it cannot be imported at all)."""
    try:
        spec = importlib.util.find_spec(package)
    except ImportError:
        return True
    folders = (spec.submodule_search_locations or []) if spec else []
    return all(Path(folder).resolve().is_relative_to(root) for folder in folders)
