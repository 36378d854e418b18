"""Regression testing: compare the metrics of new results with baseline results, within tolerances.

A side is a record file or a results folder, optionally narrowed to one model with `PATH@MODEL`. When both sides
name one model each, those two are compared (a new model against a baseline); otherwise every (task, model) found
on both sides is compared with itself (the same models after a code change).

Only rows of the same task version and budget are compared: a quick run is no regression of a paper run, and a
task whose data or metrics changed (a new version) has no baseline in the old one. Pairs that differ only in
those are refused with a line saying so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from aebench import results
from aebench.errors import AebenchError
from aebench.leaderboard import Column, summarise


@dataclass(frozen=True)
class Tolerance:
    """A difference is allowed when it is within max(absolute, relative · |baseline|)."""

    relative: float = 0.0
    absolute: float = 0.0
    per_metric: tuple[tuple[str, float], ...] = ()  # absolute tolerances by metric name

    def allowed(self, metric: str, baseline: float) -> float:
        absolute = dict(self.per_metric).get(metric, self.absolute)
        return max(absolute, self.relative * abs(baseline))


def parse_tolerance(values: list[str]) -> Tolerance:
    """`["0.05"]` → 5 % relative; `["fid=2.0", "abs=0.01"]` → absolute, per metric or for all."""
    relative, absolute, per_metric = 0.0, 0.0, []
    for value in values:
        key, sep, number = value.rpartition("=")
        try:
            amount = float(number)
        except ValueError:
            raise AebenchError(
                f"--tolerance: malformed '{value}': expected FRACTION, abs=VALUE or METRIC=VALUE"
            ) from None
        if amount < 0 or not np.isfinite(amount):
            raise AebenchError(f"--tolerance: '{value}' must be a finite, non-negative number")
        if not sep:
            relative = amount
        elif key == "abs":
            absolute = amount
        else:
            per_metric.append((key, amount))
    return Tolerance(relative, absolute, tuple(per_metric))


def _side(spec: str) -> tuple[pd.DataFrame, list[Column], str | None]:
    """The summary of one side; `PATH@ROW` narrows it to one leaderboard row (`runs@ae`, `runs@ae [lr=0.01]`)."""
    path, _, model = ("", "", "") if Path(spec).exists() else spec.partition("@")
    records = [r for r in results.load_records(Path(path or spec)) if r["kind"] == "model"]
    if model:
        rows = sorted({results.row_name(r) for r in records})
        records = [r for r in records if results.row_name(r) == model]
        if not records:
            raise AebenchError(f"{spec}: no records of '{model}' (rows: {', '.join(rows) or 'none'})")
    if not records:
        raise AebenchError(f"{spec}: no model records")
    table, columns = summarise(records)
    return table, columns, model or None


@dataclass(frozen=True)
class Comparison:
    task: str
    new: str
    baseline: str
    metric: str
    new_value: float
    baseline_value: float
    allowed: float
    regressed: bool


def _rows(table: pd.DataFrame) -> dict[tuple[str, str, str, str], pd.Series]:
    """(task, task version, budget, model) → the summary row."""
    return {(r["task"], r["task_version"], r["budget"], r["model"]): r for _, r in table.iterrows()}


def _runs(rows: dict[tuple[str, str, str, str], pd.Series]) -> str:
    return ", ".join(sorted({f"v{version} {budget}" for _, version, budget, _ in rows}))


def _pairs(new: pd.DataFrame, base: pd.DataFrame, new_model: str | None, base_model: str | None):
    new_rows, base_rows = _rows(new), _rows(base)
    if new_model and base_model:
        pairs = [
            (key, (*key[:3], base_model))
            for key in sorted(new_rows)
            if key[3] == new_model and (*key[:3], base_model) in base_rows
        ]
    else:
        pairs = [(key, key) for key in sorted(set(new_rows) & set(base_rows))]
    if not pairs:
        if new_model and base_model:
            same_models = {k[0] for k in new_rows} & {k[0] for k in base_rows}
        else:
            same_models = {(k[0], k[3]) for k in new_rows} & {(k[0], k[3]) for k in base_rows}
        if same_models:
            raise AebenchError(
                "nothing comparable: the two sides hold the same models, but of other task versions or budgets "
                f"(new: {_runs(new_rows)}; baseline: {_runs(base_rows)})"
            )
        raise AebenchError("nothing to compare: the two sides share no (task, model)")
    return [(new_rows[a], base_rows[b]) for a, b in pairs]


def _label(row: pd.Series, table: pd.DataFrame) -> str:
    """The model's name, with its task version and budget when its side holds several."""
    several = table["task_version"].nunique() > 1 or table["budget"].nunique() > 1
    return f"{row['model']} (v{row['task_version']} {row['budget']})" if several else row["model"]


def compare(new_spec: str, baseline_spec: str, tolerance: Tolerance) -> list[Comparison]:
    new, new_columns, new_model = _side(new_spec)
    base, base_columns, base_model = _side(baseline_spec)
    base_keys = {c.key: c for c in base_columns}
    outcome = []
    for new_row, base_row in _pairs(new, base, new_model, base_model):
        task, new_name, base_name = new_row["task"], _label(new_row, new), _label(base_row, base)
        for column in new_columns:
            if column.key not in base_keys:
                continue  # a metric (or an extractor) the baseline does not have cannot regress against it
            base_value, new_value = base_row[f"{column.key}:mean"], new_row[f"{column.key}:mean"]
            if not np.isfinite(base_value):
                continue
            allowed = tolerance.allowed(column.metric, base_value)
            worse = base_value - new_value if column.higher_is_better else new_value - base_value
            regressed = not np.isfinite(new_value) or worse > allowed
            outcome.append(Comparison(task, new_name, base_name, column.key, new_value, base_value, allowed, regressed))
        if new_row["status"] != "ok" and not any(c.task == task and c.new == new_name and c.regressed for c in outcome):
            outcome.append(Comparison(task, new_name, base_name, "status", np.nan, np.nan, 0.0, True))
    if not outcome:
        raise AebenchError("nothing to compare: the two sides share no metric")
    return outcome


def render(comparisons: list[Comparison]) -> str:
    lines = [
        f"{'task':<18} {'new':<14} {'baseline':<14} {'metric':<28} {'new':>10} {'baseline':>10} {'allowed':>9}  verdict"
    ]
    for c in comparisons:
        verdict = "REGRESSED" if c.regressed else "ok"
        lines.append(
            f"{c.task:<18} {c.new:<14} {c.baseline:<14} {c.metric:<28} {c.new_value:>10.4g} {c.baseline_value:>10.4g} "
            f"{c.allowed:>9.3g}  {verdict}"
        )
    regressions = sum(c.regressed for c in comparisons)
    lines.append(f"{regressions} regression(s) in {len(comparisons)} comparison(s)")
    return "\n".join(lines)
