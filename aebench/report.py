"""A task's report: one self-contained HTML page (`TASK/report.html`) rebuilt from its records and the pictures the
runs saved beside them, like the leaderboards.

It shows the leaderboard with its reference rows and, beside our values, the numbers the paper prints (a task's
`published`, see `aebench.claims.Published`); the claims' verdicts; the task's diagnostic plots (declared as data in
its `report`, drawn here from the records); the sample pictures per model; loss curves per model and seed (the
records' `loss_history`); and provenance (budgets, devices, commits, library versions, data sources and hashes,
feature extractors with their quality). Every picture is an embedded PNG, downsampled and palette-compressed, so
the page opens anywhere without the results folder. Whatever the records lack for a plot is said on the page.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aebench import claims as claiming
from aebench import leaderboard, results
from aebench.errors import AebenchError

MAX_WIDTH = 960  # px: embedded pictures are downsampled to this width
PICTURES_BUDGET = 900_000  # bytes: the sample pictures of one report together; beyond it all are downsampled more
BOLD = ("\x02", "\x03")  # best-of-column markers in leaderboard cells, turned into <b> after escaping


@dataclass(frozen=True, kw_only=True)
class MetricBars:
    """Grouped bars of a few metrics per leaderboard row (reference rows included), e.g. per-class shares."""

    title: str
    metrics: tuple[str, ...]
    caption: str = ""


@dataclass(frozen=True, kw_only=True)
class DetailBars:
    """The `top` largest values of a `{name: value}` mapping that records keep in their details (at `path`, e.g.
    ("per_feature", "kl_x")), averaged over each row's seeds: the worst-modelled features."""

    title: str
    path: tuple[str, ...]
    top: int = 8
    caption: str = ""


Plot = MetricBars | DetailBars


@dataclass(frozen=True, kw_only=True)
class ReportSpec:
    """What a task's report shows beyond the common sections: what its sample pictures are, and its plots."""

    samples: str = "What each model produced (the runner's sample picture of its first seed)."
    plots: tuple[Plot, ...] = ()


@dataclass
class Figure:
    """A picture of the report (its bytes, a PNG unless `mime` says otherwise), or why it is missing."""

    title: str
    png: bytes | None = None  # the picture's bytes: a PNG, or what `mime` says
    missing: str = ""
    caption: str = ""
    mime: str = "image/png"


# ---------------------------------------------------------------- the leaderboard with the paper's numbers


def leaderboard_table(
    records: list[dict[str, Any]], published: tuple[claiming.Published, ...] = ()
) -> tuple[list[str], list[list[str]], list[str], list[str]]:
    """Header, rows (one per leaderboard row, reference rows first), footnotes and the published numbers that
    match no row. A metric the paper reports gets a `paper …` column right after ours, filled on the rows the
    paper names; best-of-column cells are wrapped in `BOLD`."""
    table, columns = leaderboard.summarise(records)
    header, body, footnotes = leaderboard._cells(table, columns, BOLD)
    prefix = len(header) - len(columns) - 2  # model, [task version], [budget], seeds
    by_metric: dict[str, dict[str, claiming.Published]] = {}
    for entry in published:
        by_metric.setdefault(entry.metric, {})[entry.row] = entry
    used: set[tuple[str, str]] = set()
    out_header, out_body = header[:prefix], [row[:prefix] for row in body]
    for i, column in enumerate(columns):
        out_header.append(header[prefix + i])
        for row, cells in zip(out_body, body):
            row.append(cells[prefix + i])
        papers = by_metric.get(column.metric)
        if not papers or any(c.metric == column.metric for c in columns[i + 1 :]):
            continue  # the paper column goes after the metric's last column (several extractors: several columns)
        out_header.append(f"paper {column.label}")
        for row, model in zip(out_body, table["model"]):
            entry = papers.get(model)
            row.append("" if entry is None else f"{entry.value:g}")
            if entry is not None:
                used.add((entry.row, entry.metric))
    out_header += header[-2:]
    for row, cells in zip(out_body, body):
        row += cells[-2:]
    unmatched = [f"{p.row}: {p.metric} {p.value:g}" for p in published if (p.row, p.metric) not in used]
    return out_header, out_body, footnotes, unmatched


# ---------------------------------------------------------------- plots


def _png(fig) -> bytes:
    """A matplotlib figure as a compact palette PNG."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    return compress_png(buffer.getvalue())


def _flattened(data: bytes, max_width: int):
    """An image file as RGB on white (plots and pictures sit on white), downsampled to `max_width`."""
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    image = image.convert("RGBA") if image.mode in ("RGBA", "LA", "P") else image.convert("RGB")
    if image.mode == "RGBA":
        background = Image.new("RGB", image.size, "white")
        background.paste(image, mask=image.getchannel("A"))
        image = background
    if image.width > max_width:
        image = image.resize((max_width, round(image.height * max_width / image.width)), Image.LANCZOS)
    return image


def compress_png(data: bytes, max_width: int = MAX_WIDTH, colors: int = 64) -> bytes:
    """`data` (an image file) downsampled to `max_width` and saved as an optimised 8-bit palette PNG."""
    from PIL import Image

    out = io.BytesIO()
    _flattened(data, max_width).quantize(colors=colors, method=Image.Quantize.MEDIANCUT).save(out, "PNG", optimize=True)
    return out.getvalue()


def compress_picture(data: bytes, max_width: int = MAX_WIDTH) -> tuple[bytes, str]:
    """A sample picture as the smaller of a 128-colour palette PNG (drawings, plots, few grey levels) and a
    quality-85 JPEG (photograph-like pictures such as galaxies, several times smaller there); with its MIME type."""
    png = compress_png(data, max_width, colors=128)
    out = io.BytesIO()
    _flattened(data, max_width).save(out, "JPEG", quality=85, optimize=True)
    return (png, "image/png") if len(png) <= len(out.getvalue()) else (out.getvalue(), "image/jpeg")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _row_label(row: pd.Series, several_budgets: bool) -> str:
    return f"{row['model']} ({row['budget']})" if several_budgets else str(row["model"])


def _grouped_bars(title: str, groups: list[str], series: dict[str, list[float]], xlabel: str) -> bytes:
    """Horizontal grouped bars: a group per entry of `groups`, a bar per series."""
    plt = _pyplot()
    n_series = max(len(series), 1)
    height = max(2.2, 0.17 * len(groups) * n_series + 0.25 * (n_series // 2) + 1.2)
    fig, ax = plt.subplots(figsize=(8, min(height, 14)), layout="constrained")
    width = 0.8 / n_series
    positions = np.arange(len(groups))
    for k, (name, values) in enumerate(series.items()):
        ax.barh(positions + (k - (n_series - 1) / 2) * width, values, height=width, label=name)
    ax.set_yticks(positions, groups, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel, fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    fig.legend(fontsize=8, loc="outside upper center", ncols=1 if n_series > 6 else 2 if n_series > 2 else n_series,
               frameon=False)  # fmt: skip
    return _png(fig)


def metric_bars(spec: MetricBars, records: list[dict[str, Any]]) -> Figure:
    table, columns = leaderboard.summarise(records)
    keys = {c.metric: c.key for c in columns}
    missing = [m for m in spec.metrics if m not in keys]
    if len(missing) == len(spec.metrics):
        return Figure(spec.title, missing=f"no record has {', '.join(spec.metrics)}", caption=spec.caption)
    present = [m for m in spec.metrics if m in keys]
    rows = table[table[[f"{keys[m]}:mean" for m in present]].notna().any(axis=1)]
    values = rows[[f"{keys[m]}:mean" for m in present]].round(12).astype(str).agg("|".join, axis=1)
    rows = rows[~((rows["kind"] == "reference") & (rows["model"] + values).duplicated())]  # one per budget: once
    several = table["budget"].nunique() > 1
    labels = {c.metric: c.label for c in columns}
    series = {labels[m]: [float(v) for v in rows[f"{keys[m]}:mean"].fillna(0.0)] for m in present}
    png = _grouped_bars(spec.title, [_row_label(r, several) for _, r in rows.iterrows()], series, "mean over seeds")
    note = f"; not recorded: {', '.join(missing)}" if missing else ""
    return Figure(spec.title, png=png, caption=spec.caption + note)


def _detail(record: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = record.get("details") or {}
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def worst_features(
    spec: DetailBars, records: list[dict[str, Any]]
) -> tuple[list[str], dict[str, list[float]], list[str]]:
    """The `spec.top` features with the largest mean value over any row, each row's means on them, and the model
    rows whose records lack the detail."""
    groups: dict[str, list[dict[str, float]]] = {}
    references: dict[str, str] = {}  # group name → its reference row's name
    lacking = set()
    budgets = {results.budget_label(r) for r in records}
    for record in records:
        if record["status"] != "ok":
            continue
        values = _detail(record, spec.path)
        name = results.row_name(record) + (f" ({results.budget_label(record)})" if len(budgets) > 1 else "")
        if isinstance(values, dict) and values:
            groups.setdefault(name, []).append({k: float(v) for k, v in values.items() if v is not None})
            if record["kind"] == "reference":
                references[name] = results.row_name(record)
        elif record["kind"] == "model":
            lacking.add(name)
    if not groups:
        return [], {}, sorted(lacking)
    means: dict[str, pd.Series] = {}
    for name, runs in groups.items():
        mean = pd.DataFrame(runs).mean()
        row = references.get(name)
        if row and any(references.get(other) == row and kept.equals(mean) for other, kept in means.items()):
            continue  # a reference row repeated for every budget with the same values: shown once
        means[name] = mean
    worst = list(pd.DataFrame(means).max(axis=1).sort_values(ascending=False, kind="stable").index[: spec.top])
    return worst, {name: [float(mean.get(f, np.nan)) for f in worst] for name, mean in means.items()}, sorted(lacking)


def detail_bars(spec: DetailBars, records: list[dict[str, Any]]) -> Figure:
    features, series, lacking = worst_features(spec, records)
    if not features:
        return Figure(spec.title, missing=f"no record keeps details.{'.'.join(spec.path)}", caption=spec.caption)
    png = _grouped_bars(spec.title, features, series, "mean over seeds")
    note = f" Not in the records of: {', '.join(lacking)}." if lacking else ""
    return Figure(spec.title, png=png, caption=spec.caption + note)


def draw(spec: Plot, records: list[dict[str, Any]]) -> Figure:
    return metric_bars(spec, records) if isinstance(spec, MetricBars) else detail_bars(spec, records)


def _groups(records: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Model records by (row, budget), in the order the leaderboard lists its rows."""
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for record in records:
        if record["kind"] == "model":
            out.setdefault((results.row_name(record), results.budget_label(record)), []).append(record)
    return {key: sorted(group, key=lambda r: r["seed"]) for key, group in sorted(out.items())}


def loss_curves(records: list[dict[str, Any]]) -> tuple[list[Figure], list[str]]:
    """A figure per model row (a panel per loss, a line per seed), and the rows whose records keep no history."""
    figures, lacking = [], []
    for (row, budget), group in _groups(records).items():
        kept = [r for r in group if (r.get("loss_history") or {}).get("losses")]
        if not kept:
            lacking.append(f"{row} ({budget})")
            continue
        names = list(dict.fromkeys(name for r in kept for name in r["loss_history"]["losses"]))
        plt = _pyplot()
        n_cols = min(4, len(names))
        n_rows = -(-len(names) // n_cols)
        fig, axes = plt.subplots(n_rows, n_cols, figsize=(2.6 * n_cols, 1.9 * n_rows), squeeze=False)
        for ax, name in zip(axes.flat, names):
            for record in kept:
                history = record["loss_history"]
                values = history["losses"].get(name)
                if values:
                    steps = history["steps"][: len(values)]
                    ax.plot(steps, [np.nan if v is None else v for v in values], lw=0.9, label=f"seed {record['seed']}")
            ax.set_title(name, fontsize=8)
            ax.tick_params(labelsize=6)
            ax.grid(alpha=0.3)
        for ax in list(axes.flat)[len(names) :]:
            ax.axis("off")
        axes[0][0].legend(fontsize=6)
        fig.suptitle(f"{row}, budget {budget}: losses against step", fontsize=9)
        fig.tight_layout()
        seeds = ", ".join(str(r["seed"]) for r in kept)
        figures.append(Figure(f"{row} ({budget})", png=_png(fig), caption=f"seed{'s' * (len(kept) > 1)} {seeds}"))
    return figures, lacking


def sample_pictures(folder: Path, stems: dict[int, str], records: list[dict[str, Any]]) -> list[Figure]:
    """The first seed's sample picture of each model row, or that it is missing. `stems`: id(record) → the
    record file's stem, which the runner also gives the sample picture (`samples/STEM.png`). Pictures beyond
    `PICTURES_BUDGET` bytes together are all downsampled further, by one factor."""
    figures: list[Figure] = []
    sources: list[tuple[int, bytes]] = []  # (index in figures, the picture file's bytes)
    for (row, budget), group in _groups(records).items():
        ok = [r for r in group if r["status"] == "ok"]
        title = f"{row} ({budget})"
        if not ok:
            figures.append(Figure(title, missing=f"no finished run ({group[0]['status']}: {group[0].get('reason')})"))
            continue
        pictures = [(r, Path(folder) / "samples" / f"{stems[id(r)]}.png") for r in ok]
        found = [(r, p) for r, p in pictures if p.is_file()]
        if not found:
            figures.append(Figure(title, missing=f"no sample picture (looked for samples/{pictures[0][1].name})"))
            continue
        record, path = found[0]
        others = len(found) - 1
        caption = f"seed {record['seed']}" + (f" (pictures of {others} more seeds in samples/)" if others else "")
        try:
            data = path.read_bytes()
            picture, mime = compress_picture(data)
        except OSError as error:  # PIL's UnidentifiedImageError too: a damaged file is said, not fatal to the run
            figures.append(Figure(title, missing=f"samples/{path.name} is not a readable picture ({error})"))
            continue
        figures.append(Figure(title, png=picture, caption=caption, mime=mime))
        sources.append((len(figures) - 1, data))
    _narrow_to_budget(figures, sources)
    return figures


def _narrow_to_budget(figures: list[Figure], sources: list[tuple[int, bytes]]) -> None:
    """Many rows: every picture narrower, by one factor, until together they fit PICTURES_BUDGET (a smaller
    picture need not compress smaller, hence the loop). Reports within the budget are left as they are."""
    from PIL import Image

    def total() -> int:
        return sum(len(figures[i].png or b"") for i, _ in sources)

    if total() <= PICTURES_BUDGET:
        return
    widths = {i: Image.open(io.BytesIO(figures[i].png)).width for i, _ in sources}  # reads the header only
    factor = 1.0
    while total() > PICTURES_BUDGET and factor > 0.2:
        factor *= 0.8
        for i, data in sources:
            picture, mime = compress_picture(data, max(64, round(widths[i] * factor)))
            figures[i] = Figure(figures[i].title, png=picture, caption=figures[i].caption, mime=mime)


# ---------------------------------------------------------------- provenance


def _data_hash(data: dict[str, Any]) -> str:
    """The data's content hash as the task records it: one hash, or one per split."""
    digest = data.get("hash") or data.get("sha256")
    if isinstance(digest, dict):
        return ", ".join(f"{split} {value}" for split, value in digest.items())
    return str(digest or "not recorded")


def provenance_rows(records: list[dict[str, Any]], stems: dict[int, str]) -> tuple[list[str], list[list[str]]]:
    header = ["record", "status", "device", "CPU · kernels", "steps", "wall time", "commit", "aebench", "torch",
              "numpy", "python", "data hash", "created"]  # fmt: skip
    rows = []
    for record in records:
        env = record.get("environment") or {}
        data = record.get("data") or {}
        digest = _data_hash(data)
        rows.append([
            stems.get(id(record), results.row_name(record)), record["status"], record.get("device") or "–",
            _cpu(record), str(record.get("steps_done", "–")), _wall_time(record),
            _commits(record), env.get("aebench", "–"), env.get("torch", "–"),
            env.get("numpy", "–"), env.get("python", "–"), digest, record.get("created", "–"),
        ])  # fmt: skip
    return header, rows


def _cpu(record: dict[str, Any]) -> str:
    """The CPU and its kernels' fingerprint (`AMD EPYC 25/17 · 673cac305937`), as far as the record says: records
    of one seed with different fingerprints were computed by kernels that round differently (aebench.kernels). A
    run resumed on other kernels names those of its processes in turn (`a → b`), the CPU being the last one's."""
    cpu = (record.get("environment") or {}).get("cpu") or {}
    name = cpu.get("model") or record.get("device_name") or "–"
    if cpu.get("family"):
        name += f" {cpu['family']}/{cpu.get('model_number')}"
    fingerprints = record.get("kernel_fingerprints") or [(record.get("determinism") or {}).get("kernel_fingerprint")]
    if not any(fingerprints):
        return name
    return f"{name} · " + " → ".join(fingerprint or "–" for fingerprint in fingerprints)


def _wall_time(record: dict[str, Any]) -> str:
    """A record's wall time: `1234 s`, `≥ 1234 s (resumed; earlier processes not timed)` (results.wall_time_partial)
    or `–`; with its CPU time when the record has it (`1234 s · CPU 1200 s`)."""
    wall, cpu = record.get("wall_time_s"), record.get("cpu_time_s")
    if wall is None:
        return "–"
    if results.wall_time_partial(record):
        return f"≥ {wall:.0f} s (resumed; earlier processes not timed)"
    return f"{wall:.0f} s" if cpu is None else f"{wall:.0f} s · CPU {cpu:.0f} s"


def _commits(record: dict[str, Any]) -> str:
    """The code that trained a record: its commit, or those of a resumed run's processes in turn (`a → b`)."""
    commits = record.get("git_commits") or [(record.get("environment") or {}).get("git_commit")]
    return " → ".join((commit or "–")[:12] for commit in commits)


def budget_rows(records: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    budgets: dict[str, dict[str, Any]] = {}
    for record in records:
        budgets.setdefault(record["budget"]["name"], record["budget"])
    header = ["budget", "steps", "batch", "evaluation samples", "note"]
    rows = [[name, str(b.get("steps", "–")), str(b.get("batch_size", "–")), str(b.get("eval_samples", "–")),
             b.get("note", "")] for name, b in budgets.items()]  # fmt: skip
    return header, rows


def extractor_rows(records: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """One row per feature extractor (per training of a trained one): its weights, the metrics measured in its
    space and its own quality as the record describes it."""
    training = leaderboard.trainings(records)
    found: dict[tuple[str, str | None], tuple[dict[str, Any], set[str]]] = {}
    for record in records:
        for name, metric in record["metrics"].items():
            if metric.get("extractor"):
                info = metric["extractor"]
                found.setdefault((info["name"], training(info)), (info, set()))[1].add(metric.get("label") or name)
    header = ["extractor", "weights", "metrics", "quality", "description"]
    rows = []
    for (name, trained), (info, metrics) in found.items():
        quality = info.get("quality")
        quality_text = (
            ", ".join(f"{k} {v}" for k, v in quality.items()) if isinstance(quality, dict) else str(quality or "–")
        )
        rest = ", ".join(f"{k} {v}" for k, v in info.items() if k not in ("name", "weights", "quality"))
        rows.append([name, str(info.get("weights") or trained or "–"), ", ".join(sorted(metrics)), quality_text, rest])
    return header, rows


# ---------------------------------------------------------------- the page

CSS = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d232a;margin:0;background:#f6f7f9}
main{max-width:1180px;margin:0 auto;padding:24px 28px 60px;background:#fff;box-shadow:0 0 12px #0001}
h1{font-size:1.7em;margin:.2em 0}h2{margin-top:2em;border-bottom:2px solid #e4e7eb;padding-bottom:.2em}
h3{font-size:1.02em;margin:1.2em 0 .3em}nav a{margin-right:1em}p.lead{color:#4a5562}
.scroll{overflow-x:auto;border:1px solid #e4e7eb;border-radius:6px}
table{border-collapse:collapse;font-size:13px;white-space:nowrap}
th,td{padding:4px 9px;border-bottom:1px solid #eceff2;text-align:right}
th{background:#f0f3f6;position:sticky;top:0}th:first-child,td:first-child{text-align:left;position:sticky;left:0;
background:inherit}tr{background:#fff}tr.reference{background:#f4f8ff;color:#3b4a5c;font-style:italic}
td.paper,th.paper{background:#fff8e6;color:#7a5b00}td.status{text-align:left;white-space:normal;min-width:14em}
.missing{color:#9a3412;background:#fff4ed;border-left:3px solid #f97316;padding:6px 10px;margin:6px 0}
figure{margin:10px 0 22px}figure img{max-width:100%;border:1px solid #e4e7eb;border-radius:4px}
figcaption{color:#5b6673;font-size:13px}.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));
gap:8px 22px}ul.notes{color:#4a5562;font-size:13.5px}code{background:#f0f3f6;padding:0 3px;border-radius:3px}
td.verdict-holds{color:#166534;font-weight:600}td.verdict-fails{color:#b91c1c;font-weight:600}
td.left,th.left{text-align:left;white-space:normal}td.claim{min-width:16em}.grid.wide{grid-template-columns:repeat(auto-fill,minmax(540px,1fr))}
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _cell(text: str) -> str:
    return _e(text).replace(BOLD[0], "<b>").replace(BOLD[1], "</b>")


def _figure(figure: Figure) -> str:
    if figure.png is None:
        return f'<figure><h3>{_e(figure.title)}</h3><p class="missing">Missing: {_e(figure.missing)}</p></figure>'
    data = base64.b64encode(figure.png).decode("ascii")
    caption = f"<figcaption>{_e(figure.caption)}</figcaption>" if figure.caption else ""
    return (
        f'<figure><h3>{_e(figure.title)}</h3><img alt="{_e(figure.title)}" src="data:{figure.mime};base64,{data}">'
        f"{caption}</figure>"
    )


def _table(header: list[str], rows: list[list[str]], row_classes: list[str] | None = None,
           column_classes: list[str] | None = None) -> str:  # fmt: skip
    column_classes = column_classes or [""] * len(header)
    head = "".join(f'<th class="{c}">{_e(h)}</th>' for h, c in zip(header, column_classes))
    body = []
    for i, row in enumerate(rows):
        css = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        body.append(f"<tr{css}>" + "".join(f'<td class="{c}">{_cell(x)}</td>' for x, c in zip(row, column_classes))
                    + "</tr>")  # fmt: skip
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _claims_table(checks: list[claiming.Check]) -> str:
    head = "".join(f'<th class="left">{h}</th>' for h in ("budgets", "claim", "verdict", "evidence"))
    rows = "".join(
        f'<tr><td class="left">{_e(c.budgets)}</td><td class="left claim">{_e(c.claim)}</td>'
        f'<td class="left verdict-{_e(c.verdict)}">{_e(c.verdict)}</td><td class="left">{_e(c.evidence)}</td></tr>'
        for c in checks
    )
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>'


def build(task_name: str, folder: Path, task: Any = None) -> str:
    """The report's HTML for the records in `folder` (a task's results folder); `task` (its class, when
    registered) brings the paper's numbers, claims and diagnostic plots."""
    folder = Path(folder)
    paths = sorted((folder / "records").glob("*.json"))
    if not paths:
        raise AebenchError(f"{folder}: no result records found (expected records/*.json)")
    records = [results.load_record(path) for path in paths]
    results.load_records(folder)  # the same checks as the leaderboard's (two records of one run)
    stems = {id(r): p.stem for r, p in zip(records, paths)}
    published = tuple(getattr(task, "published", ()) or ())
    spec = getattr(task, "report", None) or ReportSpec()
    title = getattr(task, "description", "") or ""

    parts = [f"<h1>{_e(task_name)}</h1>"]
    if title:
        parts.append(f'<p class="lead">{_e(title)}</p>')
    sections = [("leaderboard", "Leaderboard")]
    if getattr(task, "claims", ()):
        sections.append(("claims", "The paper's claims"))
    sections += [("diagnostics", "Diagnostics"), ("samples", "Samples"), ("losses", "Loss curves"),
                 ("provenance", "Provenance")]  # fmt: skip
    parts.append("<nav>" + "".join(f'<a href="#{a}">{_e(t)}</a>' for a, t in sections) + "</nav>")

    header, body, footnotes, unmatched = leaderboard_table(records, published)
    table, _ = leaderboard.summarise(records)
    classes = ["reference" if kind == "reference" else "" for kind in table["kind"]]
    column_classes = ["paper" if h.startswith("paper ") else "status" if h == "status" else "" for h in header]
    parts.append('<h2 id="leaderboard">Leaderboard</h2>')
    parts.append(_table(header, body, classes, column_classes))
    notes = leaderboard.describe_protocol(records)
    if published:
        sources = sorted({p.source for p in published if p.source})
        notes.insert(0, "paper columns: the numbers the paper prints (" + "; ".join(sources) + "), on its own "
                     "data and training length: compare orderings, not absolute values.")  # fmt: skip
    if unmatched:
        notes.append("Published numbers of rows not in these records: " + "; ".join(unmatched) + ".")
    notes += [f"Not measured {note}" for note in footnotes]
    parts.append('<ul class="notes">' + "".join(f"<li>{_e(n).replace('`', '')}</li>" for n in notes) + "</ul>")

    if getattr(task, "claims", ()):
        checks = claiming.check(task.claims, records)
        parts.append('<h2 id="claims">The paper\'s claims</h2>')
        parts.append(_claims_table(checks))

    parts.append('<h2 id="diagnostics">Diagnostics</h2>')
    if spec.plots:
        parts += [_figure(draw(plot, records)) for plot in spec.plots]
    else:
        parts.append("<p>This task declares no diagnostic plots beyond its sample pictures.</p>")

    parts.append(f'<h2 id="samples">Samples</h2><p>{_e(spec.samples)}</p><div class="grid">')
    parts += [_figure(f) for f in sample_pictures(folder, stems, records)]
    parts.append("</div>")

    figures, lacking = loss_curves(records)
    parts.append('<h2 id="losses">Loss curves</h2><div class="grid wide">')
    parts += [_figure(f) for f in figures]
    parts.append("</div>")
    if lacking:
        parts.append(
            f'<p class="missing">Missing: no loss history in the records of {_e(", ".join(lacking))} (records '
            "made before runs kept one; a rerun keeps it).</p>"
        )

    parts.append('<h2 id="provenance">Provenance</h2>')
    header, rows = provenance_rows(records, stems)
    parts.append(_table(header, rows))
    sources = {}
    for record in records:
        data = record.get("data") or {}
        sources.setdefault(data.get("source", "?"), set()).add(_data_hash(data))
    items = [f"<li>Data: {_e(s)}; content hash {_e(', '.join(sorted(h)))}</li>" for s, h in sources.items()]
    parts.append('<ul class="notes">' + "".join(items) + "</ul>")
    parts.append("<h3>Budgets</h3>" + _table(*budget_rows(records), column_classes=[""] * 4 + ["left"]))
    header, rows = extractor_rows(records)
    if rows:
        parts.append("<h3>Feature extractors</h3>" + _table(header, rows, column_classes=[""] * 4 + ["left"]))

    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>aebench report: {_e(task_name)}</title><style>{CSS}</style></head><body><main>"
        + "\n".join(parts)
        + "</main></body></html>\n"
    )


def write_report(out_dir: Path, task_name: str) -> Path:
    """Rebuild `OUT/TASK/report.html` from the task's records; returns its path."""
    from aebench.registry import tasks

    folder = results.task_dir(Path(out_dir), task_name)
    try:
        task = tasks.get(task_name)  # imports only the task's own module, where it has one
    except AebenchError:
        task = None  # records of a task not installed here: the common sections only
    path = folder / "report.html"
    results.write_atomic(path, build(task_name, folder, task))
    return path
