"""A paper's qualitative claims as data, checked on the records by `aebench claims TASK`.

A task lists its paper's claims in `tasks/<task>/claims.py` (its `claims` attribute), one line each, next to the
published numbers they come from. Each is checked on the records of every table of budgets (models ranked
together) separately:

- `holds`: significant in the claimed direction (every pair and metric of it, at α);
- `fails`: significantly the other way (any pair or metric, Holm-adjusted over the claim's parts);
- `inconclusive`: neither, or too few seeds to test (a test needs two seeds per model row), or a row not run (a
  claim with a row not run can fail on the rows that were, never hold).

Two model rows are compared by Welch's t-test over their seeds; a model row against a reference row (one
deterministic record, e.g. the real data or the unprocessed input) by a one-sample t-test of the model's seeds
against the reference's value. A claim about a value (`Value`) is checked against an interval: the claimed
number, as precise as the paper prints it, must contain the row's 95 % interval (over seeds, or for a single
record its bootstrap interval over test items) to hold, and must lie apart from it to fail.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from aebench import stats
from aebench.errors import AebenchError
from aebench.leaderboard import Column, summarise

VERDICTS = ("holds", "fails", "inconclusive")


@dataclass(frozen=True, kw_only=True)
class Ordering:
    """`text`: every row of `better` beats every row of `worse` on each metric of `metrics` (metric names as the
    task records them; the direction is the metric's own)."""

    text: str
    better: tuple[str, ...]
    worse: tuple[str, ...]
    metrics: tuple[str, ...]
    source: str = ""


@dataclass(frozen=True, kw_only=True)
class Value:
    """`text`: `row` scores `value` on `metric`, as precisely as the paper prints it: ± `precision`, half its
    last printed digit (0.18 → ± 0.005)."""

    text: str
    row: str
    metric: str
    value: float
    precision: float
    source: str = ""


Claim = Ordering | Value


@dataclass(frozen=True, kw_only=True)
class Published:
    """A number the paper prints: `row` scored `value` on `metric` (metric names as the task records them). Shown
    beside ours in the task's report (`aebench report`); a task lists them in `PUBLISHED` in its claims.py."""

    row: str
    metric: str
    value: float
    source: str = ""


def published_table(source: str, metrics: tuple[str, ...], rows: dict[str, tuple[float | None, ...]]) -> tuple:
    """`Published` entries from a paper's table as printed: one tuple of values per row, in `metrics` order (None:
    a cell the paper leaves empty)."""
    out = []
    for row, values in rows.items():
        if len(values) != len(metrics):
            raise ValueError(f"{source}: row {row} has {len(values)} values for {len(metrics)} metrics")
        out += [Published(row=row, metric=m, value=v, source=source) for m, v in zip(metrics, values) if v is not None]
    return tuple(out)


@dataclass(frozen=True)
class Check:
    """The verdict of one claim on one table of budgets, and the numbers behind it."""

    claim: str
    budgets: str
    verdict: str
    evidence: str
    p_value: float | None = None


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _row(table: pd.DataFrame, name: str) -> pd.Series | None:
    rows = table[table["model"] == name]
    return None if rows.empty else rows.iloc[0]


def _column(columns: list[Column], metric: str, rows: list[pd.Series]) -> tuple[Column | None, str]:
    """The metric's column that holds these rows' values, or None and why: of two trainings of its extractor (two
    columns, see `leaderboard.records_frame`) the one they were measured in, none when they span both."""
    candidates = [c for c in columns if c.metric == metric]
    measured = [c for c in candidates if any(len(row[f"{c.key}:values"]) for row in rows)]
    if len(measured) > 1:
        return None, f"{metric}: measured in {len(measured)} trainings of its extractor, not comparable"
    return (measured or candidates or [None])[0], f"no {metric}"


def _values(row: pd.Series, column: Column) -> tuple[float, ...]:
    return tuple(row.get(f"{column.key}:values", ()) or ())


def _seeds(row: pd.Series, values: tuple[float, ...]) -> str:
    if row["kind"] == "reference":
        return "reference"
    return f"{len(values)} seed{'s' if len(values) != 1 else ''}"


def _pair(better: pd.Series, worse: pd.Series, column: Column, alpha: float) -> tuple[str, str, float | None]:
    """(direction, evidence, p) of one pair on one metric: direction "claimed" or "other way" (p None: of the
    means alone, untested), or "" when a side did not measure it."""
    x, y = _values(better, column), _values(worse, column)
    sides = [f"{row['model']} {_fmt(float(np.mean(v))) if v else '–'} ({_seeds(row, v)})" for row, v in
             ((better, x), (worse, y))]  # fmt: skip
    label = f"{column.metric}: {sides[0]} vs {sides[1]}"
    if not x or not y:
        return "", f"{label}, not measured", None
    models = better["kind"] == "model", worse["kind"] == "model"
    if all(models) and len(x) >= 2 and len(y) >= 2:
        result = stats.difference(x, y, "welch", alpha)
    elif models == (True, False) and len(x) >= 2 and len(y) == 1:
        result = stats.against_value(x, y[0], alpha)  # mean(x) − reference: better − worse
    elif models == (False, True) and len(y) >= 2 and len(x) == 1:
        flipped = stats.against_value(y, x[0], alpha)  # mean(y) − reference: worse − better
        low, high = flipped.interval
        result = stats.Difference(flipped.test, flipped.p_value, -flipped.difference, (-high, -low), flipped.detectable)
    else:
        as_claimed = (float(np.mean(x)) > float(np.mean(y))) == column.higher_is_better
        return ("claimed" if as_claimed else "other way"), label, None
    claimed = (result.difference > 0) == column.higher_is_better
    evidence = (
        f"{label}, difference {result.difference:+.3g} [{result.interval[0]:+.3g}, {result.interval[1]:+.3g}], "
        f"p = {result.p_value:.3g} ({result.test})"
    )
    return ("claimed" if claimed else "other way"), evidence, result.p_value


def _check_ordering(claim: Ordering, table: pd.DataFrame, columns: list[Column], alpha: float) -> tuple:
    parts, missing = [], []
    for metric in claim.metrics:
        for better_name in claim.better:
            for worse_name in claim.worse:
                better, worse = _row(table, better_name), _row(table, worse_name)
                absent = [n for n, r in ((better_name, better), (worse_name, worse)) if r is None]
                if absent:
                    missing.append(f"{metric}: no records of {', '.join(absent)}")
                    continue
                column, why = _column(columns, metric, [better, worse])
                if column is None:
                    missing.append(why)
                    continue
                parts.append(_pair(better, worse, column, alpha))
    tested = [(d, p) for d, _, p in parts if p is not None]
    evidence = "; ".join(e for _, e, _ in parts)
    untested = [d for d, _, p in parts if p is None]
    few_seeds = [d for d in untested if d]  # "": not measured, said in its part
    if few_seeds:
        agree = sum(d == "claimed" for d in few_seeds)
        evidence += (
            f" (too few seeds to test, a test needs ≥ 2 per model row; the means agree with the claim in {agree} of "
            f"{len(few_seeds)})"
        )
    evidence = "; ".join(filter(None, [evidence, *missing]))
    adjusted = stats.holm([p for _, p in tested]) if tested else []
    if any(d == "other way" and q < alpha for (d, _), q in zip(tested, adjusted)):
        verdict = "fails"
    elif not missing and not untested and all(d == "claimed" and p < alpha for d, p in tested):
        verdict = "holds"
    else:
        verdict = "inconclusive"
    p_value = max((p for _, p in tested), default=None) if verdict == "holds" else min(adjusted, default=None)
    return verdict, evidence, p_value


def _check_value(claim: Value, table: pd.DataFrame, columns: list[Column], alpha: float) -> tuple:
    row = _row(table, claim.row)
    if row is None:
        return "inconclusive", f"no records of {claim.row}", None
    column, why = _column(columns, claim.metric, [row])
    if column is None:
        return "inconclusive", why, None
    values = _values(row, column)
    low, high = claim.value - claim.precision, claim.value + claim.precision
    stated = f"{claim.metric} {claim.row} against {_fmt(low)}–{_fmt(high)}"
    p_value = None
    if len(values) >= 2:
        interval = stats.mean_interval(values, 1 - alpha)
        p_value = stats.against_value(values, claim.value, alpha).p_value
        what = f"{_fmt(np.mean(values))} over {len(values)} seeds, 95 % interval"
    elif len(values) == 1 and row.get(f"{column.key}:item") is not None:
        interval = row[f"{column.key}:item"]
        what = f"{_fmt(values[0])}, bootstrap interval over test items"
    else:
        reason = "not measured" if not values else "one record without an interval over its items"
        return "inconclusive", f"{stated}: {reason}", None
    evidence = f"{stated}: {what} [{_fmt(interval[0])}, {_fmt(interval[1])}]"
    if low <= interval[0] and interval[1] <= high:
        return "holds", evidence, p_value
    if interval[1] < low or interval[0] > high:
        return "fails", evidence, p_value
    return "inconclusive", evidence, p_value


def check(claims: tuple[Claim, ...], records: list[dict[str, Any]], alpha: float = stats.ALPHA) -> list[Check]:
    """Every claim on every table of budgets (rows ranked together) of the records."""
    if not records:
        raise AebenchError("no records to check the claims on")
    table, columns = summarise(records)
    out = []
    for (version, table_name), group in table.groupby(["task_version", "table"], sort=False):
        budgets = f"v{version} " + ", ".join(sorted(group["budget"].unique()))
        ok = group[(group["status"] == "ok") | (group["kind"] == "reference")]
        for claim in claims:
            checker = _check_ordering if isinstance(claim, Ordering) else _check_value
            verdict, evidence, p_value = checker(claim, ok, columns, alpha)
            out.append(Check(claim.text, budgets, verdict, evidence, p_value))
    return out


def readme_markers(task_name: str) -> tuple[str, str]:
    """The lines around a task's claims table in a README, which `aebench claims TASK --update-readme` rewrites."""
    return (
        f"<!-- claims {task_name}: generated by `aebench claims {task_name} --update-readme`; do not edit by hand -->",
        f"<!-- claims {task_name}: end -->",
    )


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def render(checks: list[Check], fmt: str = "text", alpha: float = stats.ALPHA) -> str:
    note = (
        f"holds / fails: significant at α = {alpha:g} in the claimed / the other direction (a value: the row's "
        "95 % interval inside / outside the paper's printed precision); inconclusive: neither, or too few seeds "
        "(a test needs ≥ 2 seeds per model row)."
    )
    if fmt == "md":
        lines = ["| budget | claim | verdict | evidence |", "|---|---|---|---|"]
        lines += [f"| {c.budgets} | {c.claim} | **{c.verdict}** | {_escape(c.evidence)} |" for c in checks]
        return "\n".join(lines + ["", note]) + "\n"
    if fmt != "text":
        raise AebenchError(f"--format: unknown format '{fmt}' (choose text, md)")
    lines = []
    for budgets in dict.fromkeys(c.budgets for c in checks):
        lines.append(f"{budgets}:")
        for c in (c for c in checks if c.budgets == budgets):
            lines.append(f"  {c.verdict:<12} {c.claim}")
            lines.append(f"  {'':<12}   {c.evidence}")
    counts = ", ".join(f"{sum(c.verdict == v for c in checks)} {v}" for v in VERDICTS)
    return "\n".join(lines + [f"{counts}. {note}"]) + "\n"
