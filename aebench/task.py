"""The interface of a task: a declarative spec plus a data builder and an evaluation protocol.

A task folder in `tasks/` holds one `Task` subclass registered with `@tasks.register("name")`. The runner asks it
for data (`load`), trains any model that has the capabilities in `requires`, and hands the trained model back to
`evaluate`. Reference rows (real data against real data, no translation, ...) come from `references`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from inspect import Parameter, signature
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar

import torch
from torch import Tensor

from aebench.errors import AebenchError, NonFiniteOutput
from aebench.hashing import content_hash
from aebench.model import DataSpec, Model

if TYPE_CHECKING:
    from aebench.claims import Published
    from aebench.ladder import Corruption, Expectation, Ladder
    from aebench.metrics import Metric
    from aebench.report import ReportSpec


@dataclass(frozen=True)
class Budget:
    """How much training a run gets and how large its evaluation is; part of every result record."""

    steps: int
    batch_size: int
    eval_samples: int
    checkpoint_every: int = 500
    note: str = ""
    # Config values for every model that has such a field, on top of the task's: e.g. narrower networks so that
    # a CPU budget fits in minutes. The resolved config is saved in every record.
    model_overrides: dict[str, Any] = field(default_factory=dict)
    # Model selection: every `select_every` steps (0: never) the runner asks the task for `validation_score` and
    # keeps the weights that scored lowest; the record says which step was kept and its score.
    select_every: int = 0
    # Budgets with the same table are ranked together: a paper's models, each trained with its own published
    # recipe (Turbo-Sim at batch 100, OTUS at batch 20,000), in one table. Empty: the budget's own name.
    table: str = ""


@dataclass(frozen=True)
class MetricSpec:
    """A column of the task's leaderboard."""

    name: str
    higher_is_better: bool
    label: str = ""  # as shown in tables; defaults to the name
    description: str = ""
    # The metric object that makes the column: its class, or a factory returning one. `Task.build_metrics` calls
    # it with the keyword arguments it names (an extractor, a data range, a budget). `output` is the column's
    # entry of a metric with several values (`value()[output]`: a name, or KID's 0 of (mean, std)); columns with the
    # same factory and an `output` share one object, any other column has its own.
    metric: Callable[..., Metric] | None = None
    output: str | int | None = None
    no_metric: str = ""  # why the column is not a metric of the outputs (a wall time, a count); then no `metric`
    scale: float = 1  # the column holds scale × the value, as its label says ("FPD ×10³"); the details keep it unscaled


@dataclass
class TaskData:
    """Tensors of one task instance, already normalised; `source` says where they came from."""

    train: dict[str, Tensor]
    test: dict[str, Tensor]
    spec: DataSpec
    source: str
    info: dict[str, Any] = field(default_factory=dict)  # split sizes, normalisation, hashes: stored in records
    valid: dict[str, Tensor] = field(default_factory=dict)  # for model selection (`Task.validation_score`)
    _hash: str | None = field(default=None, init=False, repr=False, compare=False)

    def __len__(self) -> int:
        return len(next(iter(self.train.values())))

    def content_hash(self) -> str:
        """sha256 of every array of every split (computed once): part of each run's identity."""
        if self._hash is None:
            splits = {"train": self.train, "valid": self.valid, "test": self.test}
            arrays = {f"{name}/{key}": value for name, split in splits.items() for key, value in split.items()}
            self._hash = content_hash(arrays)
        return self._hash


@dataclass
class Evaluation:
    """Metric values of one model (or reference row); `None` values carry a reason in `unavailable`."""

    metrics: dict[str, float | None]
    unavailable: dict[str, str] = field(default_factory=dict)
    extractors: dict[str, dict[str, Any]] = field(default_factory=dict)  # metric name → extractor description
    # Finer values behind the leaderboard's numbers (per feature, per class): JSON-serialisable, kept in the record.
    details: dict[str, Any] = field(default_factory=dict)


class Task:
    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    description: ClassVar[str] = ""
    requires: ClassVar[frozenset[str]] = frozenset()
    metrics: ClassVar[tuple[MetricSpec, ...]] = ()
    budgets: ClassVar[dict[str, Budget]] = {}
    real_data: ClassVar[str] = ""  # what `--data-dir` must hold: the published files, by name
    # Config values set for every model that has such a field (e.g. the paper's latent size).
    model_overrides: ClassVar[dict[str, Any]] = {}
    # The degradation ladder (aebench/ladder.py): named corruptions of the task's real data, scored by `evaluate`.
    ladder: ClassVar[Ladder | None] = None
    # The paper's printed numbers, shown beside ours in the task's report (aebench/report.py), and what the report
    # shows beyond its common sections (the task's diagnostic plots, what its sample pictures are).
    published: ClassVar[tuple[Published, ...]] = ()
    report: ClassVar[ReportSpec | None] = None

    def __init__(self, cache_dir: Path):
        self.cache_dir = Path(cache_dir)  # generated data and trained feature extractors, keyed by content hash

    def load(self, data_dir: Path | None, budget: Budget | None = None) -> TaskData:
        """The task's data: the published files in `data_dir` when given, else the embedded default.

        `budget` is the run's: a task may need the published split sizes only at its `paper` budget, and take a
        smaller file (its first rows, said in `info`) at the others. None means the task's default sizes."""
        raise NotImplementedError

    def evaluate(self, model: Model, data: TaskData, budget: Budget, generator: torch.Generator) -> Evaluation:
        raise NotImplementedError

    def data_spec(self, budget: Budget | None = None) -> DataSpec:
        """What a model is told about the embedded data (shape, kind, pairs, classes), without loading it, so that
        `aebench list` can ask every model whether it takes this task's data. The default loads the data: override
        it with the task's known shapes (a test checks that the two agree)."""
        return self.load(None, budget).spec

    def validation_score(self, model: Model, data: TaskData, budget: Budget, generator: torch.Generator) -> float:
        """A model-selection score on `data.valid`, lower is better; asked for when `budget.select_every` > 0."""
        raise NotImplementedError(f"task {self.name} defines no validation_score for model selection")

    def references(self, data: TaskData, budget: Budget, generator: torch.Generator) -> dict[str, Evaluation]:
        """Rows that are not models, e.g. real test data against real training data."""
        return {}

    def save_samples(self, model: Model, data: TaskData, path: Path, generator: torch.Generator) -> None:
        """A picture of what the trained model produces (PNG), for results/."""

    def corruptions(self) -> dict[str, Corruption]:
        """The ladder's corruptions by name; none when the task declares no ladder."""
        return {} if self.ladder is None else {c.name: c for c in self.ladder.corruptions}

    @property
    def ladder_expectations(self) -> tuple[Expectation, ...]:
        """What the task expects each metric to make of each corruption ("fid sees blur"), as data."""
        return () if self.ladder is None else self.ladder.expectations

    @classmethod
    def metric(cls, name: str) -> MetricSpec:
        return next(m for m in cls.metrics if m.name == name)

    @classmethod
    def build_metrics(cls, *names: str, **needs: Any) -> dict[str, Metric]:
        """Fresh metric objects of the declared columns `names` (all that declare one when none is given), by
        column name; the named values (`output`) of one factory share one object. Each factory is called with the
        entries of `needs` its signature names (e.g. `extractor`, `data_range`, `budget`)."""
        declared = {m.name: m for m in cls.metrics}
        if unknown := [name for name in names if name not in declared]:
            raise AebenchError(f"task {cls.name} declares no column {', '.join(unknown)}")
        specs = [declared[name] for name in names] if names else [m for m in cls.metrics if m.metric is not None]
        built: dict[Any, Metric] = {}
        out = {}
        for spec in specs:
            if spec.metric is None:
                raise AebenchError(f"task {cls.name}: column {spec.name} declares no metric ({spec.no_metric})")
            key = spec.metric if spec.output is not None else spec.name
            if key not in built:
                built[key] = spec.metric(**_named_arguments(spec.metric, needs))
            out[spec.name] = built[key]
        return out


def _named_arguments(factory: Callable[..., Any], needs: dict[str, Any]) -> dict[str, Any]:
    """The entries of `needs` that `factory` names as parameters (not those a **kwargs would swallow)."""
    named = {p.name for p in signature(factory).parameters.values() if p.kind is not Parameter.VAR_KEYWORD}
    return {key: value for key, value in needs.items() if key in named}


def checked_output(
    x: Tensor, shape: tuple[int, ...], what: str, value_range: tuple[float, float] | None = None
) -> Tensor:
    """A model's output as float32 on the CPU; a wrong shape or a NaN is a clear error naming `what` (e.g.
    "ae: decode()"), and values are clamped to `value_range` when one is given."""
    if tuple(x.shape) != tuple(shape):
        raise AebenchError(f"{what} returned shape {tuple(x.shape)}, expected {tuple(shape)}")
    x = x.detach().float().cpu()
    if not torch.isfinite(x).all():
        raise NonFiniteOutput(f"{what} returned NaN or infinite values")
    return x if value_range is None else x.clamp(*value_range)
