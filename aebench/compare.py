"""Regression testing: is NEW significantly worse than BASELINE, metric by metric, given how noisy each metric is?

A side is a record file or a results folder, optionally narrowed to one model with `PATH@MODEL`. When both sides
name one model each, those two are compared (a new model against a baseline); otherwise every (task, model) found
on both sides is compared with itself (the same models after a code change).

Each metric gets a verdict, `better`, `worse` or `no significant difference`, from a test over the seeds: the
paired t-test when both sides hold the same row's runs of the same seeds on the same data (a code change
re-run), Welch's t-test otherwise, or a permutation test (`--test permutation`); the p-values of one comparison's
metrics are Holm-adjusted, so that ten metrics do not find a regression by chance one time in two. A regression is
a significant worsening, and larger than `--tolerance` when one is given. With fewer than two seeds on a side no
test is possible: the metric is judged by the tolerance alone (default 0: any worsening), and marked so.

Only rows of the same task version and budget are compared: a quick run is no regression of a paper run, and a
task whose data or metrics changed (a new version) has no baseline in the old one. Pairs that differ only in
those are refused with a line saying so.

From Python (e.g. a model repository's CI):

    from aebench.compare import assert_no_regression

    def test_my_model_does_not_regress():
        assert_no_regression("runs/mnist-sharpness@my-vae", "baseline-runs/mnist-sharpness@my-vae")
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from aebench import results, stats
from aebench.errors import AebenchError
from aebench.leaderboard import Column, records_frame, summarise, trainings
from aebench.metrics.copying import CT_METRIC, is_copying

TOLERANCE_ONLY = "tolerance only"  # the test column of a metric with fewer than two seeds on a side
# The verdict of a metric whose sides were measured in different trainings of its feature extractor (other weights,
# e.g. trained on another CPU): two feature spaces, no comparison; the check fails, since it cannot tell.
INCOMPARABLE = "not comparable"


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


@dataclass(frozen=True)
class Comparison:
    """One metric of one (new, baseline) pair: the means, the test and its verdict.

    `difference` is new − baseline; `interval` its 95 % interval; `detectable` the smallest |difference| the test
    finds with 80 % probability at α for these seeds; `p_value` is Holm-adjusted over the pair's metrics
    (`p_raw` before). `verdict` is better, worse or no significant difference (a tolerance-only metric: better,
    worse or within tolerance); a metric without a direction (the copying statistic C_T: ≈ 0 is ideal) is higher,
    lower or no significant difference, and regresses only when the new side copies and the baseline did not. A
    metric measured in two trainings of its feature extractor is `not comparable (…)` and fails the check."""

    task: str
    new: str
    baseline: str
    metric: str
    new_value: float
    baseline_value: float
    allowed: float
    regressed: bool
    verdict: str = ""
    test: str = ""
    n_new: int = 0
    n_baseline: int = 0
    difference: float = np.nan
    interval: tuple[float, float] | None = None
    detectable: float | None = None
    p_value: float | None = None
    p_raw: float | None = None


def _pick_test(test: str, paired: bool) -> str:
    if test == "auto":
        return "paired" if paired else "welch"
    if test == "permutation":
        return "paired-permutation" if paired else "permutation"
    if test == "paired" and not paired:
        raise AebenchError("--test paired: the two sides do not hold the same seeds on the same data")
    return test


def judge(
    new: dict[str, Sequence[float]],
    baseline: dict[str, Sequence[float]],
    higher_is_better: dict[str, bool | None],
    *,
    tolerance: Tolerance | None = None,
    alpha: float = stats.ALPHA,
    test: str = "auto",
    paired: bool = False,
    names: tuple[str, str, str] = ("", "new", "baseline"),
) -> list[Comparison]:
    """The verdicts of one comparison: per-seed values of each metric on both sides (paired: the same seeds, in
    the same order, on the same data), Holm-adjusted across the metrics."""
    if test not in stats.TESTS:
        raise AebenchError(f"--test: unknown test '{test}' (choose {', '.join(stats.TESTS)})")
    if not 0 < alpha < 1:
        raise AebenchError(f"--alpha: {alpha} is not between 0 and 1")
    tolerance = tolerance or Tolerance()
    rows: list[dict[str, Any]] = []
    for metric, base_values in baseline.items():
        if metric not in new:
            continue  # a metric (or an extractor) the new side does not have cannot be compared
        y = np.asarray(base_values, dtype=np.float64)
        y = y[np.isfinite(y)]
        x = np.asarray(new[metric], dtype=np.float64)
        x = x[np.isfinite(x)]
        if not len(y):
            continue
        base_mean = float(y.mean())
        row = {
            "metric": metric,
            "new_value": float(x.mean()) if len(x) else np.nan,
            "baseline_value": base_mean,
            "allowed": tolerance.allowed(metric.split("[")[0], base_mean),
            "n_new": len(x),
            "n_baseline": len(y),
        }
        direction = higher_is_better[metric]
        sign = 1.0 if direction else -1.0  # sign · difference > 0: better
        if not len(x):
            row.update(regressed=True, verdict="missing", test="–")
        elif direction is None and (len(x) < 2 or len(y) < 2):
            diff = row["new_value"] - base_mean
            verdict = "higher" if diff > 0 else "lower" if diff < 0 else "no significant difference"
            row.update(regressed=False, verdict=verdict, test=TOLERANCE_ONLY, difference=diff)
        elif len(x) < 2 or len(y) < 2:
            diff = row["new_value"] - base_mean
            worse = -sign * diff
            regressed = worse > row["allowed"]
            verdict = "worse" if regressed else "better" if sign * diff > 0 else "within tolerance"
            row.update(regressed=regressed, verdict=verdict, test=TOLERANCE_ONLY, difference=diff)
        else:
            name = _pick_test(test, paired and len(x) == len(y))
            result = stats.difference(x, y, name, alpha)
            row.update(
                test=result.test,
                difference=result.difference,
                interval=result.interval,
                detectable=result.detectable,
                p_raw=result.p_value,
            )
        rows.append(row)
    tested = [row for row in rows if "p_raw" in row]
    for row, adjusted in zip(tested, stats.holm([row["p_raw"] for row in tested])):
        significant = adjusted < alpha
        if higher_is_better[row["metric"]] is None:
            verdict = ("higher" if row["difference"] > 0 else "lower") if significant else "no significant difference"
            row.update(p_value=adjusted, verdict=verdict, regressed=False)
            continue
        better = higher_is_better[row["metric"]] == (row["difference"] > 0)
        verdict = ("better" if better else "worse") if significant else "no significant difference"
        regressed = significant and not better and abs(row["difference"]) > row["allowed"]
        row.update(p_value=adjusted, verdict=verdict, regressed=regressed)
    for row in rows:  # the copying statistic: a regression when the new side copies and the baseline did not
        if row["metric"].split("[")[0] == CT_METRIC and is_copying(row["new_value"]):
            if not is_copying(row["baseline_value"]):
                row.update(regressed=True, verdict="copying")
    task, new_name, base_name = names
    return [Comparison(task, new_name, base_name, **row) for row in rows]


# --- sides: records, grouped into leaderboard rows ---------------------------------------------------------------
def _records(side: str | Path | Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], str | None, str]:
    """The model records of one side and the row it names; `PATH@ROW` narrows a folder to one leaderboard row
    (`runs@ae`, `runs@ae [lr=0.01]`)."""
    if not isinstance(side, (str, Path)):
        records = [results.validate(r, "record") for r in side if r["kind"] == "model"]
        spec, model = "records", None
    else:
        spec = str(side)
        path, _, model = ("", "", "") if Path(spec).exists() else spec.partition("@")
        records = [r for r in results.load_records(Path(path or spec)) if r["kind"] == "model"]
    if model:
        rows = sorted({results.row_name(r) for r in records})
        records = [r for r in records if results.row_name(r) == model]
        if not records:
            raise AebenchError(f"{spec}: no records of '{model}' (rows: {', '.join(rows) or 'none'})")
    if not records:
        raise AebenchError(f"{spec}: no model records")
    return records, model or None, spec


Key = tuple[str, str, str, str]  # (task, task version, budget, row)


def _rows(table: pd.DataFrame) -> dict[Key, pd.Series]:
    """(task, task version, budget, model) → the summary row."""
    return {(r["task"], r["task_version"], r["budget"], r["model"]): r for _, r in table.iterrows()}


def _runs(rows: dict[Key, pd.Series]) -> str:
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


def _seeds(records: list[dict[str, Any]], columns: list[Column]) -> dict[Key, dict[int, tuple[str, dict]]]:
    """row key → seed → (data hash, metric key → value) of the runs that succeeded."""
    frame, _ = records_frame(records, split_trainings=False)  # the columns of `summarise(..., False)`
    out: dict[Key, dict[int, tuple[str, dict]]] = {}
    for record, (_, row) in zip(records, frame.iterrows()):
        if record["status"] != "ok":
            continue
        key = (row["task"], row["task_version"], row["budget"], row["model"])
        digest = (record.get("data") or {}).get("sha256")
        values = {c.key: row[c.key] for c in columns if c.key in row}
        out.setdefault(key, {})[int(row["seed"])] = (json.dumps(digest, sort_keys=True) if digest else "", values)
    return out


def verdicts(
    new: str | Path | Sequence[dict[str, Any]],
    baseline: str | Path | Sequence[dict[str, Any]],
    *,
    tolerance: Tolerance | float | Sequence[str] | None = None,
    alpha: float = stats.ALPHA,
    test: str = "auto",
) -> list[Comparison]:
    """The verdict of every metric of every (new, baseline) pair of rows: the public form of `aebench compare`.

    `new` and `baseline` are record files, results folders (`PATH@ROW` for one row) or lists of records;
    `tolerance` a `Tolerance`, a relative fraction or `--tolerance` strings."""
    if isinstance(tolerance, (int, float)):
        tolerance = parse_tolerance([str(tolerance)])
    elif tolerance is not None and not isinstance(tolerance, Tolerance):
        tolerance = parse_tolerance(list(tolerance))
    new_records, new_model, _ = _records(new)
    base_records, base_model, _ = _records(baseline)
    # One column per metric and extractor name, whichever training of the extractor measured it: a pair whose two
    # sides were measured in different trainings is told apart below, not silently left out.
    training = trainings(new_records + base_records)  # a digest on one side names the same training on the other
    new_table, new_columns = summarise(new_records, split_trainings=False, training=training)
    base_table, base_columns = summarise(base_records, split_trainings=False, training=training)
    new_seeds, base_seeds = _seeds(new_records, new_columns), _seeds(base_records, base_columns)
    base_keys = {c.key for c in base_columns}
    directions = {c.key: None if c.metric == CT_METRIC else c.higher_is_better for c in new_columns}
    outcome: list[Comparison] = []
    for new_row, base_row in _pairs(new_table, base_table, new_model, base_model):
        task = new_row["task"]
        names = (task, _label(new_row, new_table), _label(base_row, base_table))
        ours = new_seeds.get((task, new_row["task_version"], new_row["budget"], new_row["model"]), {})
        theirs = base_seeds.get((task, base_row["task_version"], base_row["budget"], base_row["model"]), {})
        # Paired only for a re-run of the same row (a code change): seed s of two different models are unrelated.
        paired = new_row["model"] == base_row["model"] and len(ours) >= 2 and sorted(ours) == sorted(theirs)
        paired = paired and all(ours[s][0] and ours[s][0] == theirs[s][0] for s in ours)
        order = sorted(ours) if paired else None
        keys = [c.key for c in new_columns if c.key in base_keys]
        apart = {k: (new_row[f"{k}:trainings"], base_row[f"{k}:trainings"]) for k in keys}
        apart = {k: sides for k, sides in apart.items() if all(sides) and (sides[0] != sides[1] or len(sides[0]) > 1)}
        keys = [k for k in keys if k not in apart]

        def values(side: dict[int, tuple[str, dict]], key: str) -> list[float]:
            seeds = order or sorted(side)
            return [side[s][1].get(key, np.nan) for s in seeds] if side else []

        pair = judge(
            {k: values(ours, k) for k in keys},
            {k: values(theirs, k) for k in keys},
            directions,
            tolerance=tolerance,
            alpha=alpha,
            test=test,
            paired=paired,
            names=names,
        )
        outcome += pair
        for key, (ours_trained, theirs_trained) in apart.items():
            trained = f"extractor trainings {'+'.join(ours_trained)} vs {'+'.join(theirs_trained)}"
            outcome.append(
                Comparison(
                    *names,
                    metric=key,
                    new_value=new_row[f"{key}:mean"],
                    baseline_value=base_row[f"{key}:mean"],
                    allowed=0.0,
                    regressed=True,
                    verdict=f"{INCOMPARABLE} ({trained})",
                    test="–",
                    n_new=len(new_row[f"{key}:values"]),
                    n_baseline=len(base_row[f"{key}:values"]),
                )
            )
        if new_row["status"] != "ok" and not any(c.regressed for c in pair):
            outcome.append(Comparison(*names, "status", np.nan, np.nan, 0.0, True, new_row["status"], "–"))
    if not outcome:
        raise AebenchError("nothing to compare: the two sides share no metric")
    return outcome


def compare(
    new_spec: str, baseline_spec: str, tolerance: Tolerance, *, alpha: float = stats.ALPHA, test: str = "auto"
) -> list[Comparison]:
    return verdicts(new_spec, baseline_spec, tolerance=tolerance, alpha=alpha, test=test)


def assert_no_regression(
    new: str | Path | Sequence[dict[str, Any]], baseline: str | Path | Sequence[dict[str, Any]], **options: Any
) -> list[Comparison]:
    """Fail the calling test (AssertionError, with the verdict table as its message) when `new` regresses against
    `baseline`; `options` are those of `verdicts` (tolerance, alpha, test). Returns the verdicts otherwise."""
    outcome = verdicts(new, baseline, **options)
    if any(c.regressed for c in outcome):
        raise AssertionError("aebench: regression\n" + render(outcome))
    return outcome


def _number(value: float | None, digits: str = ".4g") -> str:
    return "–" if value is None or not np.isfinite(value) else f"{value:{digits}}"


def render(comparisons: list[Comparison]) -> str:
    header = (
        f"{'task':<18} {'new':<14} {'baseline':<14} {'metric':<26} {'new':>14} {'baseline':>14} "
        f"{'difference [95% CI]':>30} {'p (Holm)':>9} {'detectable':>10}  {'test':<24} verdict"
    )
    lines = [header]
    for c in comparisons:
        new = f"{_number(c.new_value)} ({c.n_new})"
        base = f"{_number(c.baseline_value)} ({c.n_baseline})"
        diff = _number(c.difference, "+.3g")
        if c.interval is not None:
            diff += f" [{_number(c.interval[0], '+.3g')}, {_number(c.interval[1], '+.3g')}]"
        elif c.test == TOLERANCE_ONLY:
            diff += f" (allowed {c.allowed:.3g})"
        verdict = c.verdict + ("  REGRESSED" if c.regressed and not c.verdict.startswith(INCOMPARABLE) else "")
        lines.append(
            f"{c.task:<18} {c.new:<14} {c.baseline:<14} {c.metric:<26} {new:>14} {base:>14} {diff:>30} "
            f"{_number(c.p_value, '.3g'):>9} {_number(c.detectable, '.3g'):>10}  {c.test:<24} {verdict}"
        )
    lines.append("(n): seeds; detectable: the smallest |difference| the test finds 80 % of the time at this α.")
    tests = sorted({c.test for c in comparisons if c.p_value is not None})
    if tests:
        lines.append(f"tests: {', '.join(tests)}; p-values Holm-adjusted across each pair's metrics.")
    if any(c.test == TOLERANCE_ONLY for c in comparisons):
        lines.append(
            "a significance test needs at least two seeds per side: the metrics marked 'tolerance only' are "
            "judged by the tolerance alone (any worsening beyond it regresses)"
        )
    apart = sum(c.verdict.startswith(INCOMPARABLE) for c in comparisons)
    if apart:
        lines.append(
            f"{INCOMPARABLE}: the two sides measured the metric in different trainings of its feature extractor "
            "(other weights: another feature space); measure both with the same weights (the weights committed "
            "with the task for its default data, or one --cache-dir), and the check fails until then"
        )
    regressions = sum(c.regressed for c in comparisons) - apart
    lines.append(
        f"{regressions} regression(s) in {len(comparisons)} comparison(s)"
        + (f", {apart} {INCOMPARABLE}" if apart else "")
    )
    return "\n".join(lines)
