"""What lets an interrupted run resume to the record of an uninterrupted one: every generator's state, the
checkpoint file (plain data, read with `weights_only=True`, so that a crafted file cannot run code), and the
model-selection history kept across a resume."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aebench import results
from aebench.errors import NonFiniteLoss
from aebench.model import Model
from aebench.task import Budget, Task, TaskData


def rng_state() -> dict[str, Any]:
    """Every generator's state as tensors, ints and lists: what `torch.load(weights_only=True)` accepts."""
    version, words, gauss = random.getstate()
    numpy = np.random.get_state(legacy=False)
    state = {
        "python": {"version": version, "words": torch.tensor(words, dtype=torch.int64), "gauss": gauss},
        "numpy": {
            "key": torch.from_numpy(numpy["state"]["key"].astype(np.int64)),
            "pos": int(numpy["state"]["pos"]),
            "has_gauss": int(numpy["has_gauss"]),
            "gauss": float(numpy["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    python, numpy = state["python"], state["numpy"]
    random.setstate((python["version"], tuple(python["words"].tolist()), python["gauss"]))
    np.random.set_state(
        {
            "bit_generator": "MT19937",
            "state": {"key": numpy["key"].numpy().astype(np.uint32), "pos": numpy["pos"]},
            "has_gauss": numpy["has_gauss"],
            "gauss": numpy["gauss"],
        }
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class UnusableCheckpoint(Exception):
    """A checkpoint under --resume is corrupt, unsafe or of another config: that run fails, the grid goes on."""


HISTORY_POINTS = 500  # at most this many points per loss in a record


class LossHistory:
    """Each loss averaged over consecutive windows of `every` steps, at most `points` windows over a run, so that a
    record can draw its curves without a tracker. Kept in checkpoints: a resumed run has the history (bit for bit)
    of an uninterrupted one. A window ends at its last step (1-based); the last window may be shorter."""

    def __init__(self, steps: int, points: int = HISTORY_POINTS):
        self.every = max(1, math.ceil(steps / points))
        self.steps = steps
        self.ends: list[int] = []
        self.means: dict[str, list[float]] = {}
        self._sums: dict[str, float] = {}  # of the open window, per loss
        self._counts: dict[str, int] = {}

    def add(self, step: int, losses: dict[str, float]) -> None:
        """The losses of 0-based `step`."""
        for key, value in losses.items():
            self._sums[key] = self._sums.get(key, 0.0) + value
            self._counts[key] = self._counts.get(key, 0) + 1
        if (step + 1) % self.every == 0 or step + 1 == self.steps:
            for key, total in self._sums.items():
                # a loss that appears late (a schedule that switches it on) is null in the windows before it
                self.means.setdefault(key, [None] * len(self.ends)).append(total / self._counts[key])
            for key in self.means.keys() - self._sums.keys():
                self.means[key].append(None)
            self.ends.append(step + 1)
            self._sums, self._counts = {}, {}

    def summary(self) -> dict[str, Any]:
        return {"every": self.every, "steps": list(self.ends), "losses": {k: list(v) for k, v in self.means.items()}}

    def state_dict(self) -> dict[str, Any]:
        return {**self.summary(), "sums": dict(self._sums), "counts": dict(self._counts)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.ends = [int(step) for step in state["steps"]]
        self.means = {key: list(values) for key, values in state["losses"].items()}
        self._sums, self._counts = dict(state["sums"]), {k: int(v) for k, v in state["counts"].items()}


class Selection:
    """Model selection on the task's validation score: every `every` steps and after the last, the best is kept."""

    def __init__(self, every: int):
        self.every = every
        self.scores: list[tuple[int, float]] = []
        self.best_step, self.best_score, self.best_state = None, math.inf, None

    def due(self, step: int, total: int) -> bool:
        return bool(self.every) and (step % self.every == 0 or step == total)

    def consider(self, step: int, task: Task, model: Model, data: TaskData, budget: Budget, seed: int) -> None:
        rng = rng_state()  # scoring must not move the training's random streams
        model.eval()
        with torch.no_grad():
            score = float(task.validation_score(model, data, budget, torch.Generator().manual_seed(seed)))
        model.train()
        set_rng_state(rng)
        if not math.isfinite(score):
            raise NonFiniteLoss(f"validation score {score} at step {step}")
        self.scores.append((step, score))
        if score < self.best_score:
            self.best_step, self.best_score = step, score
            self.best_state = {key: value.detach().clone() for key, value in model.state_dict().items()}

    def restore_best(self, model: Model) -> None:
        if self.best_state is not None:
            model.load_state_dict(self.best_state)

    def summary(self) -> dict[str, Any]:
        return {
            "every": self.every,
            "criterion": "lowest task.validation_score on the validation split",
            "best_step": self.best_step,
            "best_score": self.best_score,
            "scores": [list(entry) for entry in self.scores],
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            "scores": [list(entry) for entry in self.scores],
            "best_step": self.best_step,
            "best_score": self.best_score,
            "best_state": self.best_state,
        }

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if state:
            self.scores = [(int(step), float(score)) for step, score in state["scores"]]
            self.best_step, self.best_score, self.best_state = (
                state["best_step"],
                state["best_score"],
                state["best_state"],
            )


def checkpoint_state(identity, step, losses, model, optimizers, schedulers) -> dict[str, Any]:
    return {
        "identity": json.dumps(identity, sort_keys=True),
        "step": step,
        "losses": losses,
        "model": model.state_dict(),
        "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
        "schedulers": {k: s.state_dict() for k, s in schedulers.items()},
        "rng": rng_state(),
    }


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    with results.atomic_file(path) as handle:
        torch.save(state, handle)


def _why_unreadable(error: Exception) -> str:
    """The first line of what torch.load said (at most 200 characters), or the error's type when it said nothing."""
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__


def load_checkpoint(path: Path, identity: dict[str, Any], data: str) -> dict[str, Any] | None:
    """The checkpoint of an interrupted run, if any. It is read with `weights_only=True`: tensors and plain
    containers only, so a crafted file cannot run code; anything else makes this one run fail. `data`: the content
    hash of this run's data, which must be the checkpoint's (a checkpoint carried to a machine whose embedded data
    came out otherwise; one from before checkpoints kept it is not checked)."""
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        reason = _why_unreadable(error)
        raise UnusableCheckpoint(
            f"--resume: checkpoint {path} is corrupt or not a plain-data checkpoint ({reason}); delete it to start over"
        ) from None
    if not isinstance(state, dict) or state.get("identity") != json.dumps(identity, sort_keys=True):
        raise UnusableCheckpoint(
            f"--resume: checkpoint {path} belongs to a different config or budget; delete it to start over"
        )
    if state.get("data", data) != data:
        raise UnusableCheckpoint(
            f"--resume: checkpoint {path} was trained on other data (content {state['data']}, this run's {data}); "
            "delete it to start over"
        )
    return state


def unfinished_runs(task_dir: Path) -> list[dict[str, Any]]:
    """The checkpoints in a task's results folder: runs stopped (or still training) before their record. Each has
    its `path`, `step`, the budget's `steps`, `wall_time_s` trained so far (None before checkpoints kept it) and
    `saved` (the file's mtime); a file that does not read as a checkpoint has a `problem` instead. Read like
    `load_checkpoint` (`weights_only`), memory-mapped so a large model's tensors are not read."""
    found = []
    for path in sorted((Path(task_dir) / "checkpoints").glob("*.pt")):
        entry: dict[str, Any] = {"path": path, "saved": path.stat().st_mtime}
        try:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            budget = json.loads(state["identity"])["budget"]
            entry.update(step=int(state["step"]), steps=int(budget["steps"]), wall_time_s=state.get("wall_time_s"))
        except Exception as error:
            entry["problem"] = _why_unreadable(error)
        found.append(entry)
    return found


def restore(state, model, optimizers, schedulers) -> tuple[int, dict[str, float]]:
    model.load_state_dict(state["model"])
    for key, optimizer in optimizers.items():
        optimizer.load_state_dict(state["optimizers"][key])
    for key, scheduler in schedulers.items():
        scheduler.load_state_dict(state["schedulers"][key])
    set_rng_state(state["rng"])
    return state["step"], state["losses"]
