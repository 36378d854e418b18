"""The degradation ladder: does each metric see what it is meant to see?

A task declares named corruptions of its own real data (`Ladder`, in `tasks/<task>/corruptions.py`), each with 3–5
strengths. A pseudo-model (`CorruptedData`) answers every capability the task asks for from real data — new
training examples for `sample`, the true target of its input for `translate`, its input for `reconstruct`, as the
task's `outputs` declare — corrupted at one strength, and the task's own `evaluate` scores it: every metric of the
task, including ones added later, is on the ladder without any code of its own. Strength 0 (no corruption) is the
real-vs-real floor.

Each (metric, corruption) gets a verdict from its means over seeds: **sees it** (worsens monotonically, beyond the
seed spread), **blind** (never moves beyond the spread), **wrong way** (improves beyond the spread, never worsens),
or **non-monotone** (moves, but not steadily one way). A task states what it expects (`Expectation`), and
`aebench ladder TASK` writes the ladder (`ladder.md`, `.csv`, `.json`, one plot per corruption).
"""

from __future__ import annotations

import dataclasses
import math
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aebench import results
from aebench.errors import AebenchError
from aebench.model import CAPABILITIES, Model, ModelConfig
from aebench.task import Budget, Task, TaskData

SEES, BLIND, WRONG_WAY, NON_MONOTONE, NOT_MEASURED = "sees it", "blind", "wrong way", "non-monotone", "not measured"
VERDICTS = (SEES, BLIND, WRONG_WAY, NON_MONOTONE)
SPREAD_FACTOR = 2.0  # a move counts when it exceeds twice the seed standard deviation
RELATIVE_TOLERANCE = 1e-6  # ... and a millionth of the metric's size (round-off of deterministic metrics)
ABSOLUTE_TOLERANCE = 1e-12  # ... and this: a metric whose floor is 0 moves by round-off alone (1e-32)
MIN_SEEDS = 2


@dataclass(frozen=True)
class Context:
    """What a corruption may look at besides the outputs: which field they are (e.g. "x", "z"), the task's data
    (normalisation, sizes), the inputs the pseudo-model was given (None for `sample`) and, for a `Paired` answer,
    the row of each input among the pair's inputs."""

    field: str
    data: TaskData
    inputs: Tensor | None = None
    rows: Tensor | None = None


Apply = Callable[[Tensor, float, torch.Generator, Context], Tensor]
Keep = Callable[[dict[str, Tensor], float, TaskData], Tensor]


@dataclass(frozen=True)
class Corruption:
    """A named corruption of real outputs. `apply` changes a batch of outputs; `keep` (for corruptions of the
    distribution, such as mode collapse) says which rows of the real pool may be drawn at all (a bool mask)."""

    name: str
    description: str
    strengths: tuple[float, ...]  # 3–5, increasing, all > 0; strength 0 is the floor
    apply: Apply | None = None
    keep: Keep | None = None
    unit: str = ""

    def __post_init__(self) -> None:
        s = self.strengths
        if not 3 <= len(s) <= 5 or any(b <= a for a, b in zip(s, s[1:])) or s[0] <= 0:
            raise ValueError(f"corruption {self.name}: 3–5 increasing strengths above 0, got {s}")
        if self.apply is None and self.keep is None:
            raise ValueError(f"corruption {self.name}: needs apply or keep")


@dataclass(frozen=True)
class Expectation:
    """The statement "`metric` <verdict> `corruption`", e.g. Expectation("fid", "blur", SEES)."""

    metric: str
    corruption: str
    verdict: str
    why: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"expectation {self.metric}/{self.corruption}: unknown verdict {self.verdict!r}")


def expect(verdict: str, corruption: str, *metrics: str, why: str = "") -> tuple[Expectation, ...]:
    """Several metrics with one verdict on one corruption: `expect(SEES, "blur", "fid", "kid")`."""
    return tuple(Expectation(metric, corruption, verdict, why) for metric in metrics)


COPYING_METRICS = ("copying_ct", "authenticity", "near_duplicates")  # aebench.metrics.copying's columns


def replayed_copies(*corruptions: str) -> tuple[Expectation, ...]:
    """What the data-copying scores make of a floor that replays training examples: it is all copies, so a
    corruption that makes the copies less exact reads to them as less copying (wrong way, by design)."""
    why = "the floor replays training examples: it is all copies"
    return tuple(e for c in corruptions for e in expect(WRONG_WAY, c, *COPYING_METRICS, why=why))


# --- where the pseudo-model's outputs come from ---------------------------------------------------------------------
@dataclass(frozen=True)
class Draw:
    """Fresh real examples: rows of `split[field]`, drawn without replacement (a new permutation per seed)."""

    field: str
    split: str = "train"


@dataclass(frozen=True)
class Paired:
    """The real counterpart of each input: `targets[i]` for an input equal to `inputs[i]` (looked up by content)."""

    inputs: Tensor
    targets: Tensor
    field: str = "z"


@dataclass(frozen=True)
class Same:
    """The input itself (e.g. `reconstruct`: a perfect auto-encoder), then corrupted."""

    field: str = "x"


Source = Draw | Paired | Same
Outputs = Callable[[Task, TaskData, Budget], dict[str, Source]]


@dataclass(frozen=True)
class Ladder:
    """A task's ladder: its corruptions, what the pseudo-model returns per capability, and the verdicts expected.

    `floor` says in words what strength 0 is (it should be the task's real-vs-real reference row)."""

    corruptions: tuple[Corruption, ...]
    outputs: Outputs
    expectations: tuple[Expectation, ...] = ()
    floor: str = ""

    def __post_init__(self) -> None:
        names = [c.name for c in self.corruptions]
        if len(set(names)) < len(names):
            raise ValueError(f"ladder: a corruption name is repeated in {names}")
        for e in self.expectations:
            if e.corruption not in names:
                raise ValueError(f"ladder: expectation on unknown corruption {e.corruption!r}")


class CorruptedData(Model):
    """The pseudo-model: real data, corrupted at one strength. Its capabilities are those its sources declare."""

    name = "corrupted-data"
    description = "real data through a corruption of the degradation ladder (aebench/ladder.py)"
    capabilities = frozenset(c for c in CAPABILITIES if c not in ("encode", "decode"))

    def __init__(
        self,
        data: TaskData,
        sources: dict[str, Source],
        corruption: Corruption | None,
        strength: float,
        seed: int,
    ):
        super().__init__(ModelConfig(), data.spec)
        self.task_data, self.sources, self.corruption, self.strength = data, sources, corruption, float(strength)
        self._anchor = nn.Parameter(torch.zeros(0), requires_grad=False)  # `device` needs a parameter
        self.generator = torch.Generator().manual_seed(seed)  # the same draws and noise at every strength
        self._order: dict[str, Tensor] = {}  # split → permutation of its kept rows (shared: x and z of one event)
        self._position: dict[str, int] = {}  # capability → rows drawn so far
        self._index: dict[int, dict[bytes, int]] = {}

    @classmethod
    def for_sources(cls, sources: dict[str, Source]) -> type[CorruptedData]:
        """A subclass that declares exactly the capabilities of `sources` (a task may test for optional ones)."""
        unknown = set(sources) - cls.capabilities
        if unknown:
            raise AebenchError(f"ladder: no pseudo-model output for capabilities {sorted(unknown)}")
        return type("CorruptedData", (cls,), {"capabilities": frozenset(sources)})

    # --- capabilities -----------------------------------------------------------------------------------------
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return self._answer("sample", n, None)

    def reconstruct(self, x: Tensor) -> Tensor:
        return self._answer("reconstruct", len(x), x)

    def translate(self, x: Tensor) -> Tensor:
        return self._answer("translate", len(x), x)

    def translate_back(self, z: Tensor) -> Tensor:
        return self._answer("translate_back", len(z), z)

    # --- helpers ----------------------------------------------------------------------------------------------
    def _answer(self, capability: str, n: int, inputs: Tensor | None) -> Tensor:
        source = self.sources[capability]
        cpu = None if inputs is None else inputs.detach().cpu()
        rows = None
        if isinstance(source, Draw):
            out = self._draw(capability, source, n)
        elif isinstance(source, Paired):
            rows = self._lookup(source, cpu)
            out = source.targets[rows]
        else:
            out = cpu.clone()
        if self.corruption is not None and self.corruption.apply is not None:
            context = Context(source.field, self.task_data, cpu, rows)
            out = self.corruption.apply(out, self.strength, self.generator, context)
        return out.to(inputs.device if inputs is not None else self.device)

    def _draw(self, capability: str, source: Draw, n: int) -> Tensor:
        split = getattr(self.task_data, source.split)
        if source.split not in self._order:
            rows = torch.arange(len(split[source.field]))
            if self.corruption is not None and self.corruption.keep is not None:
                rows = rows[self.corruption.keep(split, self.strength, self.task_data)]
            if len(rows) == 0:
                raise AebenchError(f"ladder: {self.corruption.name} at {self.strength} keeps no {source.split} rows")
            self._order[source.split] = rows[torch.randperm(len(rows), generator=self.generator)]
        order = self._order[source.split]
        start = self._position.get(capability, 0)
        self._position[capability] = start + n
        picked = order[torch.arange(start, start + n) % len(order)]  # cycles when more are asked than there are
        return split[source.field][picked].clone()

    def _lookup(self, source: Paired, inputs: Tensor) -> Tensor:
        index = self._index.setdefault(id(source), {})
        if not index:
            index.update({_key(row): i for i, row in enumerate(source.inputs)})
        try:
            return torch.tensor([index[_key(row)] for row in inputs], dtype=torch.long)
        except KeyError:
            raise AebenchError("ladder: the task asked the pseudo-model for an input with no real target") from None


def _key(row: Tensor) -> bytes:
    return row.detach().float().contiguous().numpy().tobytes()


# --- corruptions shared by several tasks ----------------------------------------------------------------------------
def gaussian_blur(images: Tensor, sigma: float) -> Tensor:
    """(N, C, H, W) blurred by a separable Gaussian of σ pixels (reflected edges)."""
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-(t**2) / (2 * sigma**2))
    kernel = (kernel / kernel.sum()).to(images.dtype)
    c = images.shape[1]
    mode = "reflect" if radius < min(images.shape[-2:]) else "replicate"  # reflect needs a wider image
    x = F.pad(images, (radius, radius, radius, radius), mode=mode)
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(x, kernel.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def blur(strengths: tuple[float, ...] = (0.5, 1.0, 1.5, 2.5)) -> Corruption:
    return Corruption(
        "blur", "Gaussian blur of σ pixels", strengths, lambda x, s, g, c: gaussian_blur(x, s), unit="σ (px)"
    )


def pixel_noise(strengths: tuple[float, ...] = (0.02, 0.05, 0.1, 0.2)) -> Corruption:
    """Additive white Gaussian noise, σ as a fraction of the data's value range."""

    def apply(x: Tensor, s: float, g: torch.Generator, context: Context) -> Tensor:
        low, high = context.data.spec.value_range
        return x + s * (high - low) * torch.randn(x.shape, generator=g, dtype=x.dtype)

    return Corruption("noise", "additive Gaussian pixel noise, σ as a fraction of the value range", strengths, apply,
                      unit="σ / range")  # fmt: skip


def shift(strengths: tuple[float, ...] = (1, 2, 4, 8)) -> Corruption:
    """The image moved k pixels right and down, edges repeated."""

    def apply(x: Tensor, s: float, g: torch.Generator, context: Context) -> Tensor:
        k = int(s)
        height, width = x.shape[-2:]
        return F.pad(x, (k, 0, k, 0), mode="replicate")[..., :height, :width]

    return Corruption("shift", "moved k pixels right and down (edges repeated)", strengths, apply, unit="k (px)")


def contrast(strengths: tuple[float, ...] = (0.1, 0.25, 0.5, 0.75)) -> Corruption:
    """Contrast reduced by a fraction s about each image's mean: x' = m + (1 − s)(x − m)."""

    def apply(x: Tensor, s: float, g: torch.Generator, context: Context) -> Tensor:
        mean = x.mean(dim=tuple(range(1, x.dim())), keepdim=True)
        return mean + (1 - s) * (x - mean)

    return Corruption("contrast", "contrast reduced by a fraction s about each image's mean", strengths, apply,
                      unit="s")  # fmt: skip


def drop_classes(dropped: tuple[int, ...], strengths: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)) -> Corruption:
    """Mode collapse: a fraction s of the examples of the classes `dropped` (labels "y") leave the pool; at 1 the
    samples hold none of those classes. The first examples of each class go first, so weaker is a subset."""

    def keep(split: dict[str, Tensor], s: float, data: TaskData) -> Tensor:
        labels = split["y"]
        mask = torch.ones(len(labels), dtype=torch.bool)
        for label in dropped:
            rows = torch.nonzero(labels == label).flatten()
            mask[rows[: math.ceil(s * len(rows))]] = False
        return mask

    what = f"mode collapse: a fraction s of the examples of classes {', '.join(map(str, dropped))} never sampled"
    return Corruption("drop-classes", what, strengths, keep=keep, unit="s")


# --- the verdict ----------------------------------------------------------------------------------------------------
def verdict(values: Sequence[Sequence[float]], higher_is_better: bool) -> str:
    """The verdict of one metric on one corruption from its values (strengths × seeds; row 0 is strength 0).

    A move is a change of the mean from the floor by more than twice the larger seed standard deviation (of the
    floor and that strength), more than a millionth of the metric's size and more than 1e-12."""
    table = np.asarray(values, dtype=float)
    if table.ndim != 2 or table.shape[0] < 2:
        raise ValueError("verdict: values must be strengths × seeds, with the floor first")
    if not np.isfinite(table).all():
        return NOT_MEASURED
    sign = -1.0 if higher_is_better else 1.0
    means = table.mean(axis=1)
    stds = table.std(axis=1, ddof=1) if table.shape[1] > 1 else np.zeros(len(table))
    worse = sign * (means - means[0])  # > 0: worse than the floor
    size = max(RELATIVE_TOLERANCE * np.abs(means).max(), ABSOLUTE_TOLERANCE)
    threshold = np.maximum(SPREAD_FACTOR * np.maximum(stds, stds[0]), size)
    right, wrong = worse[1:] > threshold[1:], worse[1:] < -threshold[1:]
    if not right.any() and not wrong.any():
        return BLIND
    if wrong.any() and not right.any():
        return WRONG_WAY
    steps_down = [
        worse[i] - worse[i + 1] > SPREAD_FACTOR * max(stds[i], stds[i + 1], size / SPREAD_FACTOR)
        for i in range(len(worse) - 1)
    ]
    if not wrong.any() and right[-1] and not any(steps_down):
        return SEES
    return NON_MONOTONE


# --- running it -----------------------------------------------------------------------------------------------------
@dataclass
class LadderResult:
    task: str
    task_version: str
    budget: str
    seeds: list[int]
    corruptions: list[Corruption]
    metrics: list[Any]  # the task's MetricSpecs
    # values[corruption][strength index][seed index][metric] (strength index 0 is the floor, shared by all)
    values: dict[str, list[list[dict[str, float | None]]]]
    data_source: str = ""
    wall_time_s: float = 0.0
    expectations: tuple[Expectation, ...] = ()
    floor: str = ""
    environment: dict[str, Any] = field(default_factory=dict)

    def table(self, corruption: str, metric: str) -> list[list[float]]:
        return [[_number(seed.get(metric)) for seed in row] for row in self.values[corruption]]

    def verdicts(self) -> dict[tuple[str, str], str]:
        """(metric, corruption) → verdict."""
        return {
            (m.name, c.name): verdict(self.table(c.name, m.name), m.higher_is_better)
            for c in self.corruptions
            for m in self.metrics
        }

    def surprises(self) -> list[tuple[Expectation, str]]:
        """Expectations the ladder contradicts, with what it found."""
        found = self.verdicts()
        return [(e, found[e.metric, e.corruption]) for e in self.expectations
                if (e.metric, e.corruption) in found and found[e.metric, e.corruption] != e.verdict]  # fmt: skip


def from_record(task: Task, record: dict[str, Any]) -> LadderResult:
    """The ladder of a stored `ladder.json`, with the task's current corruptions and expectations (to re-render
    its tables without scoring again)."""
    declared = task.corruptions()
    corruptions = [declared[c["name"]] for c in record["corruptions"]]
    names = {c.name for c in corruptions}
    return LadderResult(
        task=record["task"]["name"],
        task_version=record["task"]["version"],
        budget=record["budget"]["name"],
        seeds=record["seeds"],
        corruptions=corruptions,
        metrics=[m for m in task.metrics if any(m.name in row for row in record["values"][corruptions[0].name][0])],
        values=record["values"],
        data_source=record["data"]["source"],
        wall_time_s=record["wall_time_s"],
        expectations=tuple(e for e in task.ladder_expectations if e.corruption in names),
        floor=record["floor"],
        environment=record["environment"],
    )


def _number(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def check_seeds(n: int) -> list[int]:
    if n < MIN_SEEDS:
        raise AebenchError(f"--seeds: {n} seeds cannot show a spread; give at least {MIN_SEEDS}")
    return list(range(n))


def select(task: Task, names: Sequence[str] | None) -> list[Corruption]:
    """The task's corruptions named (all when None); an unknown name or a task without a ladder is bad input."""
    declared = task.corruptions()
    if not declared:
        raise AebenchError(f"task '{task.name}' declares no corruptions (no degradation ladder)")
    if names is None:
        return list(declared.values())
    unknown = [n for n in names if n not in declared]
    if unknown:
        raise AebenchError(f"--corruptions: task '{task.name}' has no corruption '{unknown[0]}' "
                           f"(known: {', '.join(declared)})")  # fmt: skip
    return [declared[n] for n in names]


def run_ladder(
    task: Task,
    data: TaskData,
    budget: Budget,
    budget_name: str,
    seeds: Sequence[int],
    corruptions: Sequence[Corruption] | None = None,
    progress: Callable[[str], None] | None = None,
) -> LadderResult:
    """Every metric of `task` at every strength of every corruption (and the floor), for each seed."""
    ladder = task.ladder
    if ladder is None:
        raise AebenchError(f"task '{task.name}' declares no corruptions (no degradation ladder)")
    corruptions = list(corruptions or ladder.corruptions)
    sources = ladder.outputs(task, data, budget)
    model_cls = CorruptedData.for_sources(sources)
    started = time.perf_counter()

    def scores(corruption: Corruption | None, strength: float, seed: int) -> dict[str, float | None]:
        model = model_cls(data, sources, corruption, strength, seed)
        with torch.no_grad():
            evaluation = task.evaluate(model, data, budget, torch.Generator().manual_seed(seed))
        if progress is not None:
            name = "floor" if corruption is None else f"{corruption.name} {strength:g}"
            progress(f"{task.name}: {name}, seed {seed} ({time.perf_counter() - started:.0f} s)")
        return {m.name: _finite(evaluation.metrics.get(m.name)) for m in task.metrics}

    floor = [scores(None, 0.0, seed) for seed in seeds]
    values = {c.name: [floor, *[[scores(c, s, seed) for seed in seeds] for s in c.strengths]] for c in corruptions}
    return LadderResult(
        task=task.name,
        task_version=task.version,
        budget=budget_name,
        seeds=list(seeds),
        corruptions=corruptions,
        metrics=list(task.metrics),
        values=values,
        data_source=data.source,
        wall_time_s=round(time.perf_counter() - started, 1),
        expectations=tuple(e for e in ladder.expectations if e.corruption in {c.name for c in corruptions}),
        floor=ladder.floor,
        environment=results.environment(),
    )


def _finite(value: Any) -> float | None:
    return None if value is None or not math.isfinite(float(value)) else float(value)


# --- writing it -----------------------------------------------------------------------------------------------------
def _fmt(value: float) -> str:
    if not math.isfinite(value):
        return "–"
    return f"{value:.3g}" if abs(value) < 1e4 else f"{value:.4g}"


def _cell(row: list[float]) -> str:
    finite = [v for v in row if math.isfinite(v)]
    if not finite:
        return "–"
    mean, std = float(np.mean(finite)), float(np.std(finite, ddof=1)) if len(finite) > 1 else 0.0
    return f"{_fmt(mean)} ± {_fmt(std)}"


def sees_table(result: LadderResult) -> str:
    """The table "what each metric sees": metrics × corruptions, the verdicts, ✗ where an expectation was wrong."""
    found = result.verdicts()
    expected = {(e.metric, e.corruption): e.verdict for e in result.expectations}
    names = [c.name for c in result.corruptions]
    lines = ["| metric | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for m in result.metrics:
        cells = []
        for c in names:
            v = found[m.name, c]
            hope = expected.get((m.name, c))
            mark = "" if hope is None else (" (expected)" if hope == v else f" ✗ (expected {hope})")
            cells.append(f"**{v}**{mark}" if v == SEES else f"{v}{mark}")
        arrow = "↑" if m.higher_is_better else "↓"
        lines.append(f"| {m.label or m.name} {arrow} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def render_md(result: LadderResult) -> str:
    commit = result.environment.get("git_commit") or "unknown"
    lines = [
        f"# Degradation ladder: {result.task} (task version {result.task_version})",
        "",
        f"Budget `{result.budget}` (its evaluation sizes), seeds {', '.join(map(str, result.seeds))}; "
        f"data: {result.data_source}; code {commit}; {result.wall_time_s:.0f} s. Regenerate with "
        f"`aebench ladder {result.task} --seeds {len(result.seeds)} --budget {result.budget} --out results`.",
        "",
        f"Strength 0 is the real-vs-real floor: {result.floor}",
        "",
        "A verdict compares the mean over seeds at each strength with the floor: **sees it** (worse at the "
        f"strongest strength by more than {SPREAD_FACTOR:g}× the seed standard deviation, and never better, nor "
        "better from one strength to the next), blind (never moves beyond the spread), wrong way (only better), "
        "non-monotone (moves both ways); not measured: the metric is not available for this pseudo-model.",
        "",
        "## What each metric sees",
        "",
        sees_table(result),
    ]
    surprises = result.surprises()
    if surprises:
        lines += ["Expectations the ladder contradicts:", ""]
        lines += [f"- {e.metric} on {e.corruption}: expected {e.verdict}, found {v}" for e, v in surprises]
        lines.append("")
    for c in result.corruptions:
        strengths = (0.0, *c.strengths)
        lines += [
            f"## {c.name}: {c.description}",
            "",
            f"![{c.name}](ladder-{c.name}.png)",
            "",
            "| metric | " + " | ".join(f"{c.unit or 's'} = {s:g}" for s in strengths) + " |",
            "|---|" + "---|" * len(strengths),
        ]
        for m in result.metrics:
            table = result.table(c.name, m.name)
            lines.append(f"| {m.label or m.name} | " + " | ".join(_cell(row) for row in table) + " |")
        lines.append("")
    return "\n".join(lines)


def render_csv(result: LadderResult) -> str:
    commit = result.environment.get("git_commit") or ""
    lines = ["task,task_version,code,budget,corruption,strength,seed,metric,value,higher_is_better"]
    for c in result.corruptions:
        for strength, row in zip((0.0, *c.strengths), result.values[c.name]):
            for seed, values in zip(result.seeds, row):
                for m in result.metrics:
                    value = values.get(m.name)
                    text = "" if value is None else repr(float(value))
                    lines.append(f"{result.task},{result.task_version},{commit},{result.budget},{c.name},{strength:g},"
                                 f"{seed},{m.name},{text},{str(m.higher_is_better).lower()}")  # fmt: skip
    return "\n".join(lines) + "\n"


def to_record(result: LadderResult) -> dict[str, Any]:
    """The ladder as JSON, with the task and code version as model records carry them."""
    return {
        "schema_version": results.SCHEMA_VERSION,
        "kind": "ladder",
        "task": {"name": result.task, "version": result.task_version},
        "budget": {"name": result.budget},
        "seeds": result.seeds,
        "data": {"source": result.data_source},
        "floor": result.floor,
        "corruptions": [
            {"name": c.name, "description": c.description, "unit": c.unit, "strengths": [0.0, *c.strengths]}
            for c in result.corruptions
        ],
        "values": result.values,
        "verdicts": [{"metric": m, "corruption": c, "verdict": v} for (m, c), v in result.verdicts().items()],
        "expectations": [dataclasses.asdict(e) for e in result.expectations],
        "environment": result.environment,
        "wall_time_s": result.wall_time_s,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def normalised(result: LadderResult) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """corruption → metric → (mean, std) of the worsening over strengths, 0 at the floor and 1 at the largest
    worsening of that metric anywhere on the ladder (so a blind metric stays near 0 beside one that sees)."""
    out: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for m in result.metrics:
        sign = -1.0 if m.higher_is_better else 1.0
        tables = {c.name: np.asarray(result.table(c.name, m.name)) for c in result.corruptions}
        if not all(np.isfinite(t).all() for t in tables.values()):
            continue
        worse = {c: sign * (t - t[0].mean()) for c, t in tables.items()}
        scale = max(float(np.abs(w.mean(axis=1)).max()) for w in worse.values()) or 1.0
        for c, w in worse.items():
            std = w.std(axis=1, ddof=1) if w.shape[1] > 1 else np.zeros(len(w))
            out.setdefault(c, {})[m.name] = (w.mean(axis=1) / scale, std / scale)
    return out


def plot(result: LadderResult, folder: Path) -> list[Path]:
    """One PNG per corruption: each metric's normalised worsening against strength (matplotlib Agg)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    found, curves, paths = result.verdicts(), normalised(result), []
    for c in result.corruptions:
        figure = Figure(figsize=(7.5, 4.5), layout="constrained")
        FigureCanvasAgg(figure)
        ax = figure.subplots()
        strengths = np.array((0.0, *c.strengths))
        for m in result.metrics:
            if m.name not in curves.get(c.name, {}):
                continue
            mean, std = curves[c.name][m.name]
            style = "-" if found[m.name, c.name] == SEES else "--"
            ax.errorbar(strengths, mean, yerr=std, ls=style, marker="o", ms=3, capsize=2, lw=1,
                        label=f"{m.label or m.name}: {found[m.name, c.name]}")  # fmt: skip
        ax.axhline(0.0, color="0.6", lw=0.8)
        ax.set_xlabel(f"strength ({c.unit or 's'})")
        ax.set_ylabel("worsening (0: real-vs-real floor,\n1: the metric's largest on the ladder)")
        ax.set_title(f"{result.task}: {c.name} ({len(result.seeds)} seeds, mean ± std)", fontsize=10)
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        path = Path(folder) / f"ladder-{c.name}.png"
        figure.savefig(path, dpi=90)
        paths.append(path)
    return paths


def write(result: LadderResult, folder: Path) -> dict[str, Path]:
    """ladder.md, ladder.csv, ladder.json and the plots in `folder` (the task's results folder)."""
    import json

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"md": folder / "ladder.md", "csv": folder / "ladder.csv", "json": folder / "ladder.json"}
    results.write_atomic(paths["md"], render_md(result))
    results.write_atomic(paths["csv"], render_csv(result))
    results.write_atomic(paths["json"], json.dumps(to_record(result), indent=1, allow_nan=False) + "\n")
    plot(result, folder)
    return paths


README_BEGIN = "<!-- ladder: generated by `aebench ladder TASK --update-readme`; do not edit by hand -->"
README_END = "<!-- ladder: end -->"


def readme_section(task: Task, result: LadderResult, ladder_md: Path, readme: Path) -> str:
    """The task README's "What each metric sees" section, between its markers: the verdict table and the expected
    blind spots."""
    import os

    link = Path(os.path.relpath(ladder_md, readme.parent)).as_posix()
    blind = [e for e in result.expectations if e.verdict != SEES]
    prose = (
        f"From the degradation ladder ([{link}]({link}): budget `{result.budget}`, {len(result.seeds)} seeds; "
        f"regenerate with `aebench ladder {result.task} --seeds {len(result.seeds)} --budget {result.budget} "
        "--out results --update-readme`). Each corruption of the real data, at growing strength, is scored by "
        "the task's own `evaluate`; **sees it**: worsens steadily beyond the seed spread; ✗ marks a verdict the "
        f"task did not expect. Strength 0: {result.floor}."
    )
    lines = [
        textwrap.fill(prose, width=116, break_long_words=False, break_on_hyphens=False),
        "",
        sees_table(result).rstrip("\n"),
        "",
    ]
    if blind:
        lines += ["Expected blind spots and wrong ways:", ""]
        lines += [
            textwrap.fill(
                f"- {e.metric} {e.verdict} to {e.corruption}" + (f": {e.why}" if e.why else ""),
                width=116,
                subsequent_indent="  ",
            )  # fmt: skip
            for e in blind
        ]
        lines.append("")
    return "\n".join(lines) + "\n"


def update_readme(task: Task, result: LadderResult, out: Path) -> Path:
    """Rewrite the generated section of the task's README (appended under "## What each metric sees" if absent)."""
    import inspect

    readme = Path(inspect.getfile(type(task))).parent / "README.md"
    section = readme_section(task, result, Path(out).resolve() / task.name / "ladder.md", readme.resolve())
    results.rewrite_section(readme, README_BEGIN, README_END, section, heading="## What each metric sees")
    return readme
