"""Histograms of generated against true distributions, on the metrics' fixed 20-bin ranges (matplotlib, Agg)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class Panel:
    title: str
    true: np.ndarray  # (N,) GeV
    generated: np.ndarray  # (M,) GeV
    value_range: tuple[float, float]
    bins: int = 20


def histogram_grid(rows: list[list[Panel]], path: Path, title: str = "") -> None:
    """One PNG: a row of panels per space; true filled grey, generated as a line; values outside are clipped in."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_cols = max(len(row) for row in rows)
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(3.2 * n_cols, 2.6 * len(rows)), squeeze=False)
    for r, row in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r][c]
            if c >= len(row):
                ax.axis("off")
                continue
            panel = row[c]
            edges = np.linspace(*panel.value_range, panel.bins + 1)
            for values, style in (
                (panel.true, {"histtype": "stepfilled", "color": "0.75", "label": "true"}),
                (panel.generated, {"histtype": "step", "color": "C3", "linewidth": 1.5, "label": "generated"}),
            ):
                ax.hist(np.clip(values, edges[0], edges[-1]), bins=edges, density=True, **style)
            ax.set_title(panel.title, fontsize=9)
            ax.set_xlabel("GeV", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.set_yticks([])
    axes[0][0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
