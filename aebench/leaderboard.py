"""Leaderboards: views rebuilt from result records, as Markdown, CSV or LaTeX.

A cell is the mean over seeds ± the 95 % confidence interval of that mean (or ± the std), the best model of each
column is bold, and a model that Welch's test cannot tell from the best is marked tied (†). A single-seed cell
shows its run's bootstrap interval over test items instead, when its record has one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from aebench import results, stats
from aebench.errors import AebenchError
from aebench.metrics.copying import COPYING_THRESHOLD, CT_METRIC, is_copying

FORMATS = ("md", "csv", "latex")
INTERVALS = ("ci", "std")  # ± a 95 % confidence interval of the mean over seeds, or ± their standard deviation
TIED = "†"  # not significantly different from the best of its column
COPYING_NOTE = (
    f"A model marked copying has a data-copying statistic C_T below {COPYING_THRESHOLD:g} (Meehan et al. 2020; "
    "held-out real data score ≈ 0): its samples are closer to its training data than held-out real data are, "
    "which FID, precision and recall reward. It is never bolded as best."
)
SUFFIX = {"md": "md", "csv": "csv", "latex": "tex"}


@dataclass(frozen=True)
class Column:
    """One metric column; the extractor is part of its identity, so FIDs of different extractors never mix."""

    metric: str
    label: str
    higher_is_better: bool
    extractor: str | None

    @property
    def key(self) -> str:
        return self.metric if self.extractor is None else f"{self.metric}[{self.extractor}]"

    @property
    def title(self) -> str:
        arrow = "↑" if self.higher_is_better else "↓"
        return f"{self.label} [{self.extractor}] {arrow}" if self.extractor else f"{self.label} {arrow}"


def _fingerprint(extractor: dict[str, Any]) -> str:
    """What a training measured of itself (config hash, feature RMS, quality): two trainings in practice never share
    it, one training always does."""
    measured = json.dumps([extractor.get("hash"), extractor["feature_rms"], extractor.get("quality")], sort_keys=True)
    return hashlib.sha256(measured.encode()).hexdigest()[:6]


def trainings(records: list[dict[str, Any]]) -> Callable[[dict[str, Any]], str | None]:
    """extractor description → which training of a trained extractor made its feature space (six hex digits), None
    for other extractors: the digest of its weights. A record made before descriptions carried the digest gets the
    digest of another record whose description it equals in what the training measured of itself, or else that
    fingerprint."""
    known = {}
    for record in records:
        for metric in record["metrics"].values():
            extractor = metric.get("extractor") or {}
            if extractor.get("weights") and "feature_rms" in extractor:
                known[_fingerprint(extractor)] = str(extractor["weights"])[:6]

    def training(extractor: dict[str, Any]) -> str | None:
        if extractor.get("weights"):
            return str(extractor["weights"])[:6]
        if "feature_rms" not in extractor:
            return None
        return known.get(_fingerprint(extractor), _fingerprint(extractor))

    return training


Training = Callable[[dict[str, Any]], "str | None"]


def records_frame(
    records: list[dict[str, Any]], split_trainings: bool = True, training: Training | None = None
) -> tuple[pd.DataFrame, list[Column]]:
    """One row per record, one column per metric (value or NaN), and the metric columns in task order.

    Values of two trainings of one extractor (weights that differ, e.g. trained on two CPUs) are two feature
    spaces: with `split_trainings` they go to two columns (`fid[galaxy-cnn@6ca86b]`), never one; without, they
    share the column and `KEY:training` says which training measured each row's value (`training`: how trainings
    are told apart, `trainings(records)` by default)."""
    columns: dict[str, Column] = {}
    rows = []
    training = training or trainings(records)
    measured_by: dict[str, set[str]] = {}  # extractor name → the trainings that measured values
    for record in records:
        for metric in record["metrics"].values():
            if metric.get("extractor") and training(metric["extractor"]):
                measured_by.setdefault(metric["extractor"]["name"], set()).add(training(metric["extractor"]))
    split = {name for name, ids in measured_by.items() if len(ids) > 1} if split_trainings else set()

    def label(extractor: dict[str, Any]) -> str:
        name = extractor["name"]
        return f"{name}@{training(extractor)}" if name in split else name

    # A missing value (e.g. "unavailable") may name no extractor: it belongs in its metric's column when all the
    # values of that metric share one extractor, rather than in a column of its own.
    measured_in: dict[str, set[str]] = {}
    for record in records:
        for name, metric in record["metrics"].items():
            if metric.get("extractor"):
                measured_in.setdefault(name, set()).add(label(metric["extractor"]))
    for record in records:
        row = {
            "task": record["task"]["name"],
            "task_version": record["task"]["version"],
            "kind": record["kind"],
            "model": results.row_name(record),
            "seed": record["seed"],
            "budget": results.budget_label(record),  # a run on published data: `quick on mnist-idx-1a2b3c`
            "table": results.budget_label(record, record["budget"].get("table") or record["budget"]["name"]),
            "status": record["status"],
            "reason": record.get("reason"),
            "device": record.get("device"),
            "n_parameters": record.get("n_parameters"),
            "wall_time_s": record.get("wall_time_s"),
        }
        for name, metric in record["metrics"].items():
            extractor = metric.get("extractor")
            column_extractor = label(extractor) if extractor else None
            if column_extractor is None and metric["value"] is None and len(measured_in.get(name, ())) == 1:
                (column_extractor,) = measured_in[name]
            column = Column(name, metric.get("label") or name, bool(metric["higher_is_better"]), column_extractor)
            columns.setdefault(column.key, column)
            row[column.key] = np.nan if metric["value"] is None else float(metric["value"])
            if extractor and training(extractor):
                row[f"{column.key}:training"] = training(extractor)
            if metric.get("interval"):  # a bootstrap interval over the run's test items (an optional field)
                row[f"{column.key}:interval"] = (metric["interval"]["low"], metric["interval"]["high"])
            if metric["value"] is None:
                row[f"{column.key}:unavailable"] = metric.get("unavailable", "not computed")
        rows.append(row)
    return pd.DataFrame(rows), list(columns.values())


def summarise(
    records: list[dict[str, Any]], split_trainings: bool = True, training: Training | None = None
) -> tuple[pd.DataFrame, list[Column]]:
    """One row per (task, task version, model, budget): mean and std over the seeds that succeeded, and a status.

    Records of different task versions or budgets are never averaged together: each is its own row. Without
    `split_trainings` (see `records_frame`), `KEY:trainings` holds the extractor trainings of a row's values.
    """
    frame, columns = records_frame(records, split_trainings, training)
    rows = []
    keys = ["task", "task_version", "kind", "model", "budget", "table"]
    for (task, version, kind, model, budget, table_name), group in frame.groupby(keys, sort=False):
        ok = group[group["status"] == "ok"]
        row: dict[str, Any] = {
            "task": task,
            "task_version": version,
            "kind": kind,
            "model": model,
            "budget": budget,
            "table": table_name,
            "n_seeds": len(ok),
        }
        for column in columns:
            values = ok[column.key].dropna() if column.key in ok else pd.Series(dtype=float)
            row[f"{column.key}:mean"] = values.mean() if len(values) else np.nan
            row[f"{column.key}:std"] = values.std(ddof=1) if len(values) > 1 else np.nan
            ci = stats.mean_interval(values)
            row[f"{column.key}:ci"] = np.nan if ci is None else (ci[1] - ci[0]) / 2
            row[f"{column.key}:values"] = tuple(values)
            trained = ok.loc[values.index, f"{column.key}:training"] if f"{column.key}:training" in ok else ()
            row[f"{column.key}:trainings"] = tuple(sorted({t for t in trained if isinstance(t, str)}))
            items = ok[f"{column.key}:interval"].dropna() if f"{column.key}:interval" in ok else ()
            row[f"{column.key}:item"] = items.iloc[0] if len(values) == 1 and len(items) else None
            reasons = group.get(f"{column.key}:unavailable", pd.Series(dtype=object)).dropna()
            row[f"{column.key}:unavailable"] = reasons.iloc[0] if len(values) == 0 and len(reasons) else None
        row["n_parameters"] = ok["n_parameters"].dropna().iloc[0] if ok["n_parameters"].notna().any() else np.nan
        row["status"] = _status(kind, group)
        # A model whose samples sit closer to its training data than held-out data do is marked, and never best.
        ct = [row[f"{c.key}:mean"] for c in columns if c.metric == CT_METRIC]
        row["copying"] = kind == "model" and any(is_copying(value) for value in ct)
        if row["copying"]:
            row["status"] += f"; copying (C_T {min(ct):.2f} < {COPYING_THRESHOLD:g})"
        rows.append(row)
    table = pd.DataFrame(rows)
    order = table["kind"].map({"reference": 0, "model": 1})
    table = table.assign(_order=order).sort_values(["task", "task_version", "table", "_order", "budget", "model"])
    table = table.drop(columns="_order")
    return table.reset_index(drop=True), columns


def _status(kind: str, group: pd.DataFrame) -> str:
    if kind == "reference":
        return "reference"
    bad = group[group["status"] != "ok"]
    if bad.empty:
        return "ok"
    first = bad.iloc[0]
    label = "not applicable" if first["status"] == "not_applicable" else "failed"
    prefix = f"{len(group) - len(bad)}/{len(group)} seeds ok; " if len(bad) < len(group) else ""
    return f"{prefix}{label}: {first['reason']}"


def _format(value: float, spread: float, item: tuple[float, float] | None = None) -> str:
    """`value ± spread` (over seeds), else `value [low, high]` (one run's interval over its test items)."""
    if not np.isfinite(value):
        return "–"
    magnitude = abs(value)
    if 0 < magnitude < 1e-3:  # four decimals would print 0.0000 (e.g. FID in galaxy-ae: real vs real 4.3e-05)
        spec = ".3g"
    else:
        spec = f".{1 if magnitude >= 100 else 2 if magnitude >= 10 else 3 if magnitude >= 1 else 4}f"
    text = f"{value:{spec}}"
    if np.isfinite(spread):
        return f"{text} ± {spread:{spec}}"
    return text if item is None else f"{text} [{item[0]:{spec}}, {item[1]:{spec}}]"


def _best(table: pd.DataFrame, column: Column) -> dict[tuple[str, str], float]:
    """The best mean of each (task version, table): models are compared only with models run the same way, or
    with the budgets that a task ranks together (`Budget.table`)."""
    best = {}
    models = table[_rankable(table, column) & table[f"{column.key}:mean"].notna()]
    for key, group in models.groupby(["task_version", "table"]):
        if len(group) >= 2:
            values = group[f"{column.key}:mean"]
            best[key] = values.max() if column.higher_is_better else values.min()
    return best


def _rankable(table: pd.DataFrame, column: Column) -> pd.Series:
    """Rows that compete for best and tied: models, except those marked as copying their training data; none in
    the C_T column, whose ideal is the held-out value ≈ 0, not its highest (far above 0 is underfitting)."""
    return (table["kind"] == "model") & ~table["copying"].astype(bool) & (column.metric != CT_METRIC)


def _tied(table: pd.DataFrame, column: Column, alpha: float) -> set[int]:
    """Rows (index) that Welch's test over seeds cannot tell from the best of their (task version, table) group.
    A row or a best of a single seed is never tied: one seed cannot be separated from noise."""
    tied = set()
    models = table[_rankable(table, column) & table[f"{column.key}:mean"].notna()]
    for _, group in models.groupby(["task_version", "table"]):
        if len(group) < 2:
            continue
        means = group[f"{column.key}:mean"]
        best = group.loc[means.idxmax() if column.higher_is_better else means.idxmin()]
        for index, row in group.iterrows():
            values, best_values = row[f"{column.key}:values"], best[f"{column.key}:values"]
            if row[f"{column.key}:mean"] == best[f"{column.key}:mean"]:
                continue
            if stats.significantly_different(values, best_values, alpha) is False:
                tied.add(index)
    return tied


SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def _cells(
    table: pd.DataFrame,
    columns: list[Column],
    bold: tuple[str, str],
    interval: str = "ci",
    alpha: float = stats.ALPHA,
) -> tuple[list[str], list[list[str]], list[str]]:
    """Header, body and footnotes: a "–" that stands for an unavailable metric carries the number of its reason."""
    versions, budgets = table["task_version"].unique(), table["budget"].unique()
    show_version, show_budget = len(versions) > 1, len(budgets) > 1
    header = ["model"] + (["task version"] if show_version else []) + (["budget"] if show_budget else []) + ["seeds"]
    header += [c.title for c in columns] + ["params", "status"]
    best = {c.key: _best(table, c) for c in columns}
    tied = {c.key: _tied(table, c, alpha) for c in columns}
    body, reasons = [], {}
    for index, row in table.iterrows():
        reference = row["kind"] == "reference"
        cells = [row["model"]] + ([f"v{row['task_version']}"] if show_version else [])
        cells += ([row["budget"]] if show_budget else []) + ["–" if reference else str(row["n_seeds"])]
        for column in columns:
            mean = row[f"{column.key}:mean"]
            text = _format(mean, row[f"{column.key}:{interval}"], row[f"{column.key}:item"])
            n = len(row[f"{column.key}:values"])
            if not reference and 0 < n < row["n_seeds"]:
                text += f" ({n} seeds)"  # the seeds that measured this metric, when not all did
            group_best = best[column.key].get((row["task_version"], row["table"]))
            if not reference and group_best is not None and mean == group_best:
                text = f"{bold[0]}{text}{bold[1]}"
            elif index in tied[column.key]:
                text += TIED
            reason = row.get(f"{column.key}:unavailable")
            if not np.isfinite(mean) and isinstance(reason, str):
                number = reasons.setdefault(reason, len(reasons) + 1)
                text += str(number).translate(SUPERSCRIPT)
            cells.append(text)
        cells.append("–" if not np.isfinite(row["n_parameters"]) else f"{int(row['n_parameters']):,}")
        cells.append(row["status"])
        body.append(cells)
    footnotes = [f"{str(n).translate(SUPERSCRIPT)} {reason}" for reason, n in reasons.items()]
    return header, body, footnotes


def _budget_overrides(records: list[dict[str, Any]]) -> list[str]:
    """'hidden_channels=16 for gan, wgan-gp', 'nothing for vae': which of a budget's model overrides reached which
    model (from the record's own account, or for older records from its config's fields)."""
    by_values: dict[str, set[str]] = {}
    declared = False
    for record in records:
        budget_overrides = record["budget"].get("model_overrides") or {}
        declared = declared or bool(budget_overrides)
        applied = (record["model"].get("overrides") or {}).get("budget")
        if applied is None:
            config = record["model"].get("config") or {}
            applied = {k: v for k, v in budget_overrides.items() if k in config and not isinstance(v, dict)}
            applied.update(budget_overrides.get(record["model"]["name"]) or {})
        text = ", ".join(f"{k}={v}" for k, v in sorted(applied.items())) or "nothing"
        by_values.setdefault(text, set()).add(record["model"]["name"])
    if not declared:
        return []
    return [f"{text} for {', '.join(sorted(names))}" for text, names in sorted(by_values.items())]


def _data_dir(data: dict[str, Any]) -> str | None:
    """The --data-dir of a run on published data: the folder its source names (a file's folder), else None."""
    published = results.published_source(data)
    if published is None:
        return None
    named = Path(published[1])
    return str(named.parent if named.suffix else named)


def regenerating_commands(records: list[dict[str, Any]], out: str = "results") -> list[str]:
    """The `aebench run` commands that made these model records: one per budget for the models run as configured,
    one per variant (--model-args, --label) for the others."""
    groups: dict[tuple, tuple[list[str], set[int]]] = {}
    for record in records:
        model = record["model"]
        if record["kind"] != "model" or not model.get("spec"):
            continue
        user = tuple(sorted(((model.get("overrides") or {}).get("user") or {}).items()))
        auto = f"{model['name']} [{', '.join(f'{k}={v}' for k, v in user)}]" if user else model["name"]
        label = model.get("label") if model.get("label") not in (None, auto) else None
        budget = (record["budget"]["name"], _data_dir(record.get("data") or {}))
        key = budget if not (user or label) else (*budget, model["spec"], user, label)
        specs, seeds = groups.setdefault(key, ([], set()))
        if model["spec"] not in specs:
            specs.append(model["spec"])
        seeds.add(record["seed"])
    commands = []
    for key, (specs, seeds) in groups.items():
        command = f"aebench run --task {records[0]['task']['name']} --models {','.join(sorted(specs))}"
        command += f" --budget {key[0]} --seeds {','.join(map(str, sorted(seeds)))}"
        command += f" --data-dir {key[1]}" if key[1] else ""
        if len(key) > 2:
            command += "".join(f" --model-args {specs[0]}.{k}={v}" for k, v in key[3])
            command += f" --label {key[4]}" if key[4] else ""
        commands.append(f"{command} --out {out}")
    return sorted(commands)


def describe_protocol(records: list[dict[str, Any]], interval: str = "ci", alpha: float = stats.ALPHA) -> list[str]:
    """Header lines: task version, budgets, devices, data source and feature extractors of the records, and how
    to read the cells (the interval shown, the best and the tied)."""
    name = records[0]["task"]["name"]
    versions = sorted({r["task"]["version"] for r in records})
    if len(versions) == 1:
        lines = [f"Task `{name}` v{versions[0]}."]
    else:
        lines = [
            f"Task `{name}`, versions {', '.join('v' + v for v in versions)}: rows of different versions are "
            "separate and never ranked against each other."
        ]
    budgets = {}
    for record in records:
        budgets.setdefault(record["budget"]["name"], record["budget"])
    for name, budget in budgets.items():
        lines.append(
            f"Budget `{name}`: {budget.get('steps', '?')} steps, batch {budget.get('batch_size', '?')}, "
            f"{budget.get('eval_samples', '?')} evaluation samples."
        )
        overrides = _budget_overrides([r for r in records if r["budget"]["name"] == name and r["kind"] == "model"])
        if overrides:
            lines.append(f"Budget `{name}` sets " + "; ".join(overrides) + ".")
    tables: dict[str, list[str]] = {}
    for name, budget in budgets.items():
        tables.setdefault(budget.get("table") or name, []).append(name)
    for table_name, names in tables.items():
        if len(names) > 1:
            lines.append(f"Budgets {', '.join(f'`{n}`' for n in names)} are ranked together (table `{table_name}`).")
    lines += [f"Command: `{command}`." for command in regenerating_commands(records)]
    devices = sorted({r["device"] for r in records if r.get("device")})
    seeds = sorted({r["seed"] for r in records if r["kind"] == "model"})
    if devices:
        lines.append(f"Device: {', '.join(devices)}; seeds: {', '.join(map(str, seeds))}.")
    sources: dict[tuple[str, str], set[str]] = {}  # (source, tag) → budgets
    for record in records:
        data = record.get("data", {})
        sources.setdefault((data.get("source", "?"), results.data_tag(data)), set()).add(record["budget"]["name"])
    if len(sources) == 1:
        lines.append(f"Data: {next(iter(sources))[0]}.")
    else:
        lines.append(
            "Data (rows on published data name it after their budget; never ranked with other data): "
            + "; ".join(
                f"{source}{f' (`{tag}`)' if tag else ''}, budget{'s' * (len(b) > 1)} {', '.join(sorted(b))}"
                for (source, tag), b in sorted(sources.items())
            )
            + "."
        )
    extractors: dict[tuple[str, str | None], tuple[dict, set[str]]] = {}  # (name, training) → (info, budgets)
    training = trainings(records)
    for record in records:
        for metric in record["metrics"].values():
            if metric.get("extractor"):
                info = metric["extractor"]
                key = (info["name"], training(info))
                described, used_by = extractors.setdefault(key, (info, set()))
                used_by.add(record["budget"]["name"])
                if "weights" in info and "weights" not in described:  # describe it by a record that has the digest
                    extractors[key] = (info, used_by)
    names = [name for name, _ in extractors]
    for (name, trained), (info, used_by) in extractors.items():
        details = ", ".join(f"{k} {v}" for k, v in info.items() if k != "name")
        if trained and "weights" not in info:
            details += f"; weights digest not recorded (training {trained}: its config hash, feature RMS and quality)"
        if names.count(name) > 1:
            budgets_used = ", ".join(f"`{b}`" for b in sorted(used_by))
            lines.append(f"Feature extractor `{name}@{trained}` (budgets {budgets_used}): {details}.")
        else:
            lines.append(f"Feature extractor `{name}`: {details}.")
    for name in sorted({n for n in names if names.count(n) > 1}):
        lines.append(
            f"`{name}` was trained {names.count(name)} times with different weights (e.g. on different CPUs): "
            "each training is its own feature space, so its values are in separate columns and never compared."
        )
    several = len(versions) > 1 or len(budgets) > 1
    spread = (
        "Mean ± 95 % confidence interval of the mean over seeds (Student t, n − 1 degrees of freedom)"
        if interval == "ci"
        else "Mean ± standard deviation over seeds"
    )
    lines.append(
        f"{spread}; best model per column in bold"
        + (" (within each task version and table of budgets)" if several else "")
        + f"; {TIED}: tied with the best, not significantly different from it (Welch's t-test over seeds, "
        f"α = {alpha:g})."
    )
    model_seeds = {}
    for record in records:
        if record["kind"] == "model" and record["status"] == "ok":
            task, kind, row, version, budget, seed, data = results.run_key(record)
            model_seeds.setdefault((task, kind, row, version, budget, data), set()).add(seed)
    if any(len(seeds) < 2 for seeds in model_seeds.values()):
        lines.append(
            "Rows of a single seed cannot be separated from noise: they are never marked tied, and a bold one "
            "may not be better (run more seeds, `--seeds 0,1,2`)."
        )
    if any(metric.get("interval") for record in records for metric in record["metrics"].values()):
        lines.append("[low, high]: a single run's bootstrap 95 % interval over its test items (item noise only).")
    return lines


def render(records: list[dict[str, Any]], fmt: str, interval: str = "ci", alpha: float = stats.ALPHA) -> str:
    if fmt not in FORMATS:
        raise AebenchError(f"--format: unknown format '{fmt}' (choose {', '.join(FORMATS)})")
    if interval not in INTERVALS:
        raise AebenchError(f"--interval: unknown interval '{interval}' (choose {', '.join(INTERVALS)})")
    if not 0 < alpha < 1:
        raise AebenchError(f"--alpha: {alpha} is not between 0 and 1")
    if not records:
        raise AebenchError("no records to build a leaderboard from")
    tasks = {r["task"]["name"] for r in records}
    if len(tasks) > 1:
        raise AebenchError(f"records of several tasks ({', '.join(sorted(tasks))}): build one leaderboard per task")
    table, columns = summarise(records)
    if fmt == "csv":
        return _csv(table, columns, alpha)
    bold = ("**", "**") if fmt == "md" else ("\\textbf{", "}")
    header, body, footnotes = _cells(table, columns, bold, interval, alpha)
    notes = describe_protocol(records, interval, alpha)
    if table["copying"].any():
        notes.append(COPYING_NOTE)
    render_table = _markdown if fmt == "md" else _latex
    return render_table(header, body, notes, footnotes)


def _markdown(header: list[str], body: list[list[str]], notes: list[str], footnotes: list[str]) -> str:
    lines = [f"- {note}" for note in notes] + ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in body]
    if footnotes:
        lines += ["", "Not measured (–):", *[f"- {note}" for note in footnotes]]
    return "\n".join(lines) + "\n"


def _latex_escape(text: str) -> str:
    if text.startswith("\\textbf{"):
        return "\\textbf{" + _latex_escape(text[len("\\textbf{") : -1]) + "}"
    for char, escaped in (
        ("\\", r"\textbackslash{}"),
        ("&", r"\&"),
        ("%", r"\%"),
        ("_", r"\_"),
        ("#", r"\#"),
        ("$", r"\$"),
        ("{", r"\{"),
        ("}", r"\}"),
    ):
        text = text.replace(char, escaped)
    for digit, plain in zip("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789"):
        text = text.replace(digit, f"$^{{{plain}}}$")
    text = text.replace(TIED, r"$^\dagger$")
    return text.replace("±", r"$\pm$").replace("↑", r"$\uparrow$").replace("↓", r"$\downarrow$").replace("–", "--")


def _latex(header: list[str], body: list[list[str]], notes: list[str], footnotes: list[str]) -> str:
    lines = ["% " + note for note in notes]
    lines += ["\\begin{tabular}{l" + "r" * (len(header) - 2) + "l}", "\\toprule"]
    lines.append(" & ".join(_latex_escape(cell) for cell in header) + " \\\\")
    lines.append("\\midrule")
    lines += [" & ".join(_latex_escape(cell) for cell in row) + " \\\\" for row in body]
    lines += ["\\bottomrule", "\\end{tabular}"]
    plain = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789")
    lines += [f"% not measured (--) {note.translate(plain)}" for note in footnotes]
    return "\n".join(lines) + "\n"


def _csv(table: pd.DataFrame, columns: list[Column], alpha: float = stats.ALPHA) -> str:
    out = {name: table[name] for name in ("task", "task_version", "kind", "model", "budget", "n_seeds")}
    for column in columns:
        out[f"{column.key}_mean"] = table[f"{column.key}:mean"]
        out[f"{column.key}_std"] = table[f"{column.key}:std"]
        out[f"{column.key}_ci95"] = table[f"{column.key}:ci"]  # half-width of the Student-t interval
        tied = _tied(table, column, alpha)
        out[f"{column.key}_tied"] = [index in tied for index in table.index]
        items = table[f"{column.key}:item"]
        if items.notna().any():
            out[f"{column.key}_items_low"] = [np.nan if i is None else i[0] for i in items]
            out[f"{column.key}_items_high"] = [np.nan if i is None else i[1] for i in items]
        if table[f"{column.key}:unavailable"].notna().any():
            out[f"{column.key}_unavailable"] = table[f"{column.key}:unavailable"]
    out["n_parameters"] = table["n_parameters"].astype("Int64")
    out["status"] = table["status"]
    return pd.DataFrame(out, index=table.index).to_csv(index=False)  # built at once: no fragmented frame


def write_leaderboards(out_dir: Path, task: str, interval: str = "ci", alpha: float = stats.ALPHA) -> dict[str, Path]:
    """Rebuild TASK's leaderboard files in every format from its records; returns their paths."""
    folder = results.task_dir(Path(out_dir), task)
    records = results.load_records(folder)
    paths = {}
    for fmt in FORMATS:
        path = folder / f"leaderboard.{SUFFIX[fmt]}"
        results.write_atomic(path, render(records, fmt, interval, alpha))
        paths[fmt] = path
    return paths
