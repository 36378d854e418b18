"""Experiment tracking: `aebench run --track tensorboard` / `--track mlflow` logs each run to the user's tracker.

One tracker run per (task, model, seed), grouped per task: a TensorBoard log folder per task (`OUT/TASK/tensorboard`,
one sub-run per model and seed) and an MLflow experiment per task (a local file store `OUT/mlruns` unless
`--track-uri` names another). Logged: each loss and learning rate at up to `TRACK_POINTS` steps of a run (the values
that step returned: the runner holds them as Python floats already, so logging adds no device sync), the final
metrics, the resolved model config and budget as parameters, and the sample picture.

The record stays the result: a tracker is a copy for the user's dashboards. A tracker that fails (a full disk, an
unreachable server) is dropped for the rest of the run with a warning in the record; the run and its record go on.
The packages are imported only when a tracker is asked for (`pip install 'aebench[tensorboard]'` or `[mlflow]`).
"""

from __future__ import annotations

import importlib
import json
import math
import os
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from aebench import results
from aebench.errors import AebenchError

TRACK_POINTS = 1000  # at most this many logged steps per run (and the last step)
MLFLOW_PARAMS_PER_BATCH = 100  # MLflow's limits on one log_batch call
MLFLOW_METRICS_PER_BATCH = 1000
MLFLOW_FLUSH_S = 10.0  # logged values wait at most this long (or for a full batch) before they are sent


class Tracker(ABC):
    """One tracking backend; an instance follows one run, from `start_run` to `end_run`."""

    name: str
    package: str  # the module imported for it; missing → `aebench run` stops before training
    extra: str  # the pip extra that installs it

    @abstractmethod
    def start_run(self, experiment: str, run_name: str, tags: dict[str, str], first_step: int) -> dict[str, Any]:
        """Open the run (`first_step` > 0: a resumed run); returns where it is, for the record."""

    @abstractmethod
    def log_params(self, params: dict[str, str | int | float | bool]) -> None: ...

    @abstractmethod
    def log_metrics(self, metrics: dict[str, float], step: int) -> None: ...

    @abstractmethod
    def log_image(self, name: str, path: Path, step: int) -> None:
        """A PNG picture (the run's samples)."""

    @abstractmethod
    def end_run(self, status: str) -> None:
        """`status`: the record's (ok, failed, not_applicable) or 'interrupted'."""


class TensorBoardTracker(Tracker):
    """Event files in `OUT/TASK/tensorboard/RUN`: `tensorboard --logdir OUT/TASK/tensorboard` shows the task's runs.

    Scalars are written as float64 tensors (the TF2 summary format), so a logged loss is the step's value exactly;
    parameters go to the HParams dashboard (its session-start summary) and, as JSON text, to the Text dashboard."""

    name, package, extra = "tensorboard", "tensorboard", "tensorboard"

    def __init__(self, out_dir: Path, task: str, uri: str | None = None):
        self.root = results.task_dir(out_dir, task) / "tensorboard"

    def start_run(self, experiment, run_name, tags, first_step):
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir = self.root / run_name
        # a session start at the first step this process logs (1-based): TensorBoard then drops what an interrupted
        # process logged after the checkpoint this one resumes from (it ignores a folder's first session start)
        self.writer = SummaryWriter(str(self.log_dir), purge_step=first_step + 1)
        self.writer.add_text("tags", _json_block(tags), 0)
        return {"log_dir": str(self.log_dir)}

    def log_params(self, params):
        from torch.utils.tensorboard.summary import hparams

        _, session_start, _ = hparams(params, {})
        self.writer.file_writer.add_summary(session_start)
        self.writer.add_text("params", _json_block(params), 0)

    def log_metrics(self, metrics, step):
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, step, new_style=True, double_precision=True)

    def log_image(self, name, path, step):
        import numpy as np
        from PIL import Image

        with Image.open(path) as picture:
            pixels = np.asarray(picture.convert("RGB"))  # (H, W, 3) uint8
        self.writer.add_image(name, pixels, step, dataformats="HWC")

    def end_run(self, status):
        self.writer.file_writer.add_summary(_session_end(status))
        self.writer.close()


def _session_end(status: str):
    """The HParams dashboard's end-of-session summary: success for a finished record, failure otherwise."""
    from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    code = api_pb2.STATUS_SUCCESS if status in ("ok", "not_applicable") else api_pb2.STATUS_FAILURE
    content = plugin_data_pb2.HParamsPluginData(
        version=metadata.PLUGIN_DATA_VERSION, session_end_info=plugin_data_pb2.SessionEndInfo(status=code)
    )
    plugin = SummaryMetadata.PluginData(plugin_name=metadata.PLUGIN_NAME, content=content.SerializeToString())
    return Summary(
        value=[Summary.Value(tag=metadata.SESSION_END_INFO_TAG, metadata=SummaryMetadata(plugin_data=plugin))]
    )


class MLflowTracker(Tracker):
    """An MLflow run in the experiment named after the task; the default store is a local file store `OUT/mlruns`
    (`mlflow ui --backend-store-uri OUT/mlruns`, with MLFLOW_ALLOW_FILE_STORE=true since MLflow 3.7), any tracking
    URI otherwise (`sqlite:///runs.db`, `http://host:5000`). A resumed run continues the MLflow run it interrupted."""

    name, package, extra = "mlflow", "mlflow", "mlflow"

    def __init__(self, out_dir: Path, task: str, uri: str | None = None):
        if uri is None:
            uri = (out_dir / "mlruns").resolve().as_uri()
        if uri.startswith("file:") or "://" not in uri:
            # MLflow 3.7+ refuses its file store unless told it is wanted: here it is the default, by design
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.uri = uri

    def start_run(self, experiment, run_name, tags, first_step):
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=self.uri)
        self.pending, self.flushed = [], time.time()
        experiment_id = self._experiment(experiment)
        previous = self._interrupted_run(experiment_id, tags) if first_step else None
        if previous is not None:
            self.run_id = previous
            self.client.update_run(self.run_id, status="RUNNING")
        else:
            self.run_id = self.client.create_run(experiment_id, tags=tags, run_name=run_name).info.run_id
        return {"tracking_uri": self.uri, "experiment_id": experiment_id, "run_id": self.run_id}

    def _experiment(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        try:
            return self.client.create_experiment(name)
        except Exception:  # another job of the grid created it meanwhile
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return found.experiment_id

    def _interrupted_run(self, experiment_id: str, tags: dict[str, str]) -> str | None:
        query = " and ".join(f"tags.`{key}` = '{tags[key]}'" for key in ("aebench.run", "aebench.identity"))
        runs = self.client.search_runs([experiment_id], query, order_by=["attributes.start_time DESC"], max_results=1)
        return runs[0].info.run_id if runs and runs[0].info.status != "FINISHED" else None

    def log_params(self, params):
        from mlflow.entities import Param

        items = [Param(key, str(value)) for key, value in params.items()]
        for start in range(0, len(items), MLFLOW_PARAMS_PER_BATCH):
            self.client.log_batch(self.run_id, params=items[start : start + MLFLOW_PARAMS_PER_BATCH])

    def log_metrics(self, metrics, step):
        """Sent in batches (one request per batch, not per step: a tracking server may be far away)."""
        from mlflow.entities import Metric

        now = time.time()
        self.pending += [Metric(key, value, int(now * 1000), step) for key, value in metrics.items()]
        if len(self.pending) >= MLFLOW_METRICS_PER_BATCH or now - self.flushed > MLFLOW_FLUSH_S:
            self._flush()

    def _flush(self):
        while self.pending:
            batch, self.pending = self.pending[:MLFLOW_METRICS_PER_BATCH], self.pending[MLFLOW_METRICS_PER_BATCH:]
            self.client.log_batch(self.run_id, metrics=batch)
        self.flushed = time.time()

    def log_image(self, name, path, step):
        self.client.log_artifact(self.run_id, str(path), artifact_path=name)

    def end_run(self, status):
        self._flush()
        state = {"ok": "FINISHED", "not_applicable": "FINISHED", "interrupted": "KILLED"}.get(status, "FAILED")
        self.client.set_terminated(self.run_id, status=state)


TRACKERS: dict[str, type[Tracker]] = {tracker.name: tracker for tracker in (TensorBoardTracker, MLflowTracker)}


def check_trackers(names: list[str] | tuple[str, ...], uri: str | None = None) -> None:
    """Bad input before any training: an unknown tracker, a tracker whose package does not import, a URI for none."""
    for name in names:
        if name not in TRACKERS:
            raise AebenchError(f"--track: unknown tracker '{name}' (choose {' or '.join(TRACKERS)})")
        tracker = TRACKERS[name]
        try:
            importlib.import_module(tracker.package)
        except ImportError as error:
            raise AebenchError(
                f"--track {name}: the {tracker.package} package is not installed ({error}); "
                f"pip install 'aebench[{tracker.extra}]'"
            ) from None
        except Exception as error:  # e.g. built against another protobuf
            problem = f"{type(error).__name__}: {error}".splitlines()[0]
            raise AebenchError(f"--track {name}: the {tracker.package} package does not import ({problem})") from None
    if uri is not None and "mlflow" not in names:
        raise AebenchError("--track-uri is MLflow's tracking URI: it needs --track mlflow")


def run_params(record: dict[str, Any]) -> dict[str, str | int | float | bool]:
    """What the run was, flat: the resolved model config (`config.*`), the budget (`budget.*`), seed and names.
    Values that are not numbers, strings or booleans (lists, None) are JSON text."""
    params = {
        "task": record["task"]["name"],
        "task_version": record["task"]["version"],
        "model": record["model"]["name"],
        "model_spec": record["model"]["spec"],
        "seed": record["seed"],
        "device": record["device"],
    }
    params |= _flat("config", record["model"]["config"]) | _flat("budget", record["budget"])
    return {
        key: value if isinstance(value, (str, int, float, bool)) else json.dumps(value) for key, value in params.items()
    }


def _flat(prefix: str, values: dict[str, Any]) -> dict[str, Any]:
    flat = {}
    for key, value in values.items():
        name = f"{prefix}.{key}"
        flat |= _flat(name, value) if isinstance(value, dict) and value else {name: value}
    return flat


def _json_block(values: dict[str, Any]) -> str:
    """Markdown for TensorBoard's Text dashboard: an indented (code) block of JSON."""
    return "\n".join("    " + line for line in json.dumps(values, indent=2, sort_keys=True).splitlines())


class RunTracking:
    """The trackers of one run, as the runner uses them: `due(step)` says when to log a training step; each call
    keeps a failing tracker's error as a warning in the record and stops using that tracker."""

    def __init__(self, record: dict[str, Any], trackers: list[Tracker] | None = None, steps: int = 1):
        self.trackers = list(trackers or [])
        self.every = max(1, math.ceil(steps / TRACK_POINTS))
        self.steps = steps
        self.record = record

    @classmethod
    def start(cls, job, record: dict[str, Any], first_step: int = 0) -> RunTracking:
        """Open one run per tracker the job asks for (none: a tracking that does nothing) and log the run's
        parameters; `first_step` > 0 for a run resumed from its checkpoint at that step."""
        out, task, steps = Path(job.out_dir), record["task"]["name"], record["budget"]["steps"]
        tracking = cls(record, [TRACKERS[name](out, task, job.track_uri) for name in job.track], steps)
        run_name = job.record_path.stem
        tags = {
            "aebench.run": run_name,
            "aebench.identity": record["identity"]["hash"],
            "aebench.label": record["model"]["label"],
            "aebench.record": str(job.record_path),
        }
        for tracker in list(tracking.trackers):
            tracking._call(tracker, "start its run", tracker.start_run, task, run_name, tags, first_step)
        tracking._call_all("log parameters", "log_params", run_params(record))
        return tracking

    def due(self, step: int) -> bool:
        """Whether 0-based `step` is logged: every `every` steps and the last."""
        return bool(self.trackers) and ((step + 1) % self.every == 0 or step + 1 == self.steps)

    def log_step(self, step: int, losses: dict[str, float], optimizers: dict[str, Any]) -> None:
        """The losses step `step` returned and the learning rate it used (of each optimizer's first group), at
        1-based step `step + 1`, as the record's loss history counts."""
        values = {f"loss/{key}": value for key, value in losses.items()}
        values |= {f"lr/{name}": float(opt.param_groups[0]["lr"]) for name, opt in optimizers.items()}
        self._call_all(f"log step {step + 1}", "log_metrics", values, step + 1)

    def finish(self, record: dict[str, Any], samples: Path) -> None:
        """The final metrics and the sample picture, then the end of the run with the record's status."""
        if not self.trackers:
            return
        metrics = {f"metrics/{name}": m["value"] for name, m in record["metrics"].items() if m["value"] is not None}
        if metrics:
            self._call_all("log the final metrics", "log_metrics", metrics, self.steps)
        if samples.exists():
            self._call_all("log the sample picture", "log_image", "samples", samples, self.steps)
        self._call_all("end the run", "end_run", record["status"])

    def interrupted(self) -> None:
        self._call_all("end the run", "end_run", "interrupted")

    def _call_all(self, what: str, method: str, *args) -> None:
        for tracker in list(self.trackers):
            self._call(tracker, what, getattr(tracker, method), *args)

    def _call(self, tracker: Tracker, what: str, call, *args) -> bool:
        try:
            answer = call(*args)
        except Exception as error:  # the record is the result; a tracker's failure only stops the tracking
            self.trackers.remove(tracker)
            if call != tracker.end_run:
                try:  # close its files, mark its run failed, where it still can
                    tracker.end_run("failed")
                except Exception:
                    pass
            self.record.setdefault("warnings", []).append(
                f"tracking: {tracker.name} failed to {what} ({type(error).__name__}: {error}); "
                f"nothing more was logged to it for this run"
            )
            return False
        if isinstance(answer, dict):
            self.record.setdefault("tracking", {})[tracker.name] = answer
        return True
