"""Data copying: does a generative model make new samples, or replay its training data?

FID, KID, precision/recall and density/coverage compare generated samples with real ones, so a model that returns
its training images scores as well as real data, or better. Three scores on features of the training split T, a
held-out real sample P (test data the model never saw) and the generated sample Q, all in float64:

- **C_T**, the data-copying test of Meehan, Chaudhuri & Dasgupta (AISTATS 2020), as their code computes it
  (github.com/casey-meehan/data-copying, `data_copying_tests.py`): k-means cells on T; in each cell the
  Mann–Whitney U of the distances of Q and of P to their nearest training sample of that cell, Z-scored under the
  null with the authors' continuity correction, Z = (U − (nm/2 − ½)) / √(nm(n+m+1)/12); C_T is the mean of the
  cells' Z weighted by P's share of each cell, over the cells that hold more than τ·m = 20 generated samples (the
  τ of every experiment of theirs). C_T ≪ 0: Q is closer to T than held-out data are (copying); ≈ 0: it
  generalises; ≫ 0: it is farther (underfitting).
- **authenticity** (Alaa et al., ICML 2022): the share of Q farther from its nearest training sample t than t is
  from its own nearest training neighbour.
- **near-duplicate share**: the share of Q closer to T than the closest of P is.

A cell's Z is ≈ N(0, 1) when Q and P come from one distribution; C_T, a weighted mean of them, then has a standard
deviation √Σw² ≤ 1 whatever the number of cells. `COPYING_THRESHOLD` = −3 is therefore a one-sided test at
p ≤ 0.0013 for any partition (conservative when there are many cells), and a model below it is marked as copying.
"""

from __future__ import annotations

import hashlib
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from scipy.stats import mannwhitneyu
from torch import Tensor

from aebench.errors import AebenchError
from aebench.features import FeatureExtractor
from aebench.metrics.base import Metric
from aebench.registry import metrics
from aebench.task import Evaluation

if TYPE_CHECKING:
    from sklearn.neighbors import NearestNeighbors

COPYING_THRESHOLD = -3.0  # C_T below it: significantly closer to the training data than held-out data (see above)
CT_METRIC = "copying_ct"  # the metric name tasks give C_T, read by the leaderboard to mark copying rows
MIN_GENERATED = 20  # τ·m: a cell enters C_T when it holds more generated samples than this (the authors' τ = 20/m)
MAX_CELLS = 50  # the authors' MNIST experiment
SAMPLES_PER_CELL = 40  # on average, of test and of generated samples: most cells then pass τ even when unevenly hit


# The three leaderboard columns, as MetricSpec(name, higher_is_better, label, description) arguments for a task.
COPYING_COLUMNS = (
    (CT_METRIC, True, "Copying C_T", f"data-copying test (Meehan et al.): ≈ 0 real, < {COPYING_THRESHOLD:g} copies"),
    ("authenticity", True, "Authenticity", "share of samples farther from training than its own NN (Alaa et al.)"),
    ("near_duplicates", False, "Near-duplicates", "share of samples closer to training than any test sample is"),
)


def default_cells(n_test: int, n_generated: int) -> int:
    """Number of k-means cells: about SAMPLES_PER_CELL test and generated samples per cell, at most MAX_CELLS."""
    return max(1, min(MAX_CELLS, min(n_test, n_generated) // SAMPLES_PER_CELL))


def _as_array(x: Tensor | np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(x.detach().cpu().double() if isinstance(x, Tensor) else x, dtype=np.float64)
    if a.ndim != 2 or len(a) == 0:
        raise AebenchError(f"data-copying: expected (N ≥ 1, D) {what} features, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise AebenchError(f"data-copying: {what} features contain NaN or infinite values")
    return a


def nearest_training(train: np.ndarray, x: np.ndarray, index: NearestNeighbors | None = None):
    """Distance of each row of x to its nearest row of `train`, and that row's index. The neighbour is found by
    scikit-learn's brute-force search; its distance is then recomputed exactly (0 for an exact copy)."""
    if index is None:
        from sklearn.neighbors import NearestNeighbors

        index = NearestNeighbors(n_neighbors=1, algorithm="brute").fit(train)
    _, nearest = index.kneighbors(x, n_neighbors=1)
    nearest = nearest[:, 0]
    return np.linalg.norm(x - train[nearest], axis=1), nearest


def mann_whitney_z(generated: np.ndarray, test: np.ndarray) -> float:
    """The authors' Z-scored U of generated against test distances: < 0 when generated samples are closer."""
    m, n = len(generated), len(test)
    u = mannwhitneyu(generated, test, alternative="less", method="asymptotic").statistic  # U of `generated`
    return float((u - (n * m / 2 - 0.5)) / math.sqrt(n * m * (n + m + 1) / 12))


@metrics.register("data-copying")
class DataCopying(Metric):
    """C_T, authenticity and near-duplicate share of generated features against one training and one held-out
    set. Fitted once on (train, test) — k-means cells, nearest-neighbour distances — then scores any number of
    generated sets: `update` gathers one set's features, `compute` gives {"copying_ct", "authenticity",
    "near_duplicates"}, and `details` says which cells entered C_T."""

    name = "data-copying"
    higher_is_better = True  # for all three: higher means less copying (C_T well above 0 means underfitting)
    description = "data-copying test C_T (Meehan et al.), authenticity (Alaa et al.), share of near-duplicates"

    def __init__(
        self,
        train: Tensor | np.ndarray,
        test: Tensor | np.ndarray,
        cells: int,
        seed: int = 0,
        min_generated: int = MIN_GENERATED,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        # (`train`/`test` would shadow torch.nn.Module.train, which `eval()` calls)
        self.train_features, self.test_features = _as_array(train, "training"), _as_array(test, "test")
        if self.train_features.shape[1] != self.test_features.shape[1]:
            raise AebenchError(
                f"data-copying: feature sizes differ: {self.train_features.shape[1]} and {self.test_features.shape[1]}"
            )
        if not 1 <= cells <= len(self.train_features):
            raise AebenchError(
                f"data-copying: cells must be in 1 … {len(self.train_features)} (training samples), got {cells}"
            )
        self.cells, self.seed, self.min_generated = cells, seed, min_generated
        from sklearn.cluster import KMeans  # here, not at import: the leaderboard reads this module's threshold
        from sklearn.neighbors import NearestNeighbors
        from threadpoolctl import threadpool_limits

        # One k-means++ start (scikit-learn's default; C_T is a valid test for any partition fixed by the training
        # data), on one thread: k-means sums its centres per thread, so a thread count would change its bits.
        with threadpool_limits(limits=1, user_api="openmp"):
            self.kmeans = KMeans(n_clusters=cells, n_init=1, random_state=seed).fit(self.train_features)
        self.train_cells = self.kmeans.labels_
        self.test_cells = self.kmeans.predict(self.test_features)
        self.cell_index = {
            c: NearestNeighbors(n_neighbors=1, algorithm="brute").fit(self.train_features[self.train_cells == c])
            for c in range(cells)
            if (self.train_cells == c).any()
        }
        self.test_in_cell = {c: self._cell_distances(self.test_features, self.test_cells, c) for c in self.cell_index}
        self.index = NearestNeighbors(n_neighbors=1, algorithm="brute").fit(self.train_features)
        # Each training sample's distance to its nearest other training sample (Alaa et al.'s radius).
        _, neighbour = self.index.kneighbors(n_neighbors=1)  # no query: a point is not its own neighbour
        self.train_radius = np.linalg.norm(self.train_features - self.train_features[neighbour[:, 0]], axis=1)
        self.test_distance, _ = nearest_training(self.train_features, self.test_features, self.index)
        self.add_state("generated", [], dist_reduce_fx="cat")  # (N, D) float64, gathered across processes

    def _cell_distances(self, x: np.ndarray, labels: np.ndarray, cell: int) -> np.ndarray:
        members = x[labels == cell]
        if not len(members):
            return np.empty(0)
        return nearest_training(self.train_features[self.train_cells == cell], members, self.cell_index[cell])[0]

    def update(self, generated: Tensor | np.ndarray) -> None:
        features = _as_array(generated, "generated")
        if features.shape[1] != self.train_features.shape[1]:
            trained = self.train_features.shape[1]
            raise AebenchError(f"data-copying: {features.shape[1]} generated features, {trained} trained")
        self.generated.append(torch.from_numpy(features))

    def compute(self) -> dict[str, float | None]:
        scores, _ = self._scores_and_details()
        return scores

    def compute_with_details(self) -> tuple[dict[str, float | None], dict[str, Any]]:
        """The three scores, and per cell: its test share, generated count and Z (JSON-ready)."""
        with self.sync_context(should_sync=self._to_sync, should_unsync=self._should_unsync):
            return self._scores_and_details()

    def _scores_and_details(self) -> tuple[dict[str, float | None], dict[str, Any]]:
        if not len(self.generated):
            raise AebenchError("data-copying: no generated features were given")
        q = self.gathered("generated").numpy()
        m, n = len(q), len(self.test_features)
        distance, nearest = nearest_training(self.train_features, q, self.index)
        labels = self.kmeans.predict(q)
        weights, zs, per_cell = [], [], []
        for cell in sorted(self.cell_index):
            generated, test = self._cell_distances(q, labels, cell), self.test_in_cell[cell]
            entry = {"cell": cell, "test_share": len(test) / n, "n_generated": len(generated), "z": None}
            # Cells without test samples weigh nothing (the authors' code requires that there are none).
            if len(generated) > self.min_generated and len(test):
                entry["z"] = mann_whitney_z(generated, test)
                weights.append(len(test) / n)
                zs.append(entry["z"])
            per_cell.append(entry)
        ct, null_std = None, None
        if weights:
            w = np.asarray(weights) / np.sum(weights)
            ct, null_std = float(w @ np.asarray(zs)), float(np.sqrt((w**2).sum()))
        scores = {
            CT_METRIC: ct,
            "authenticity": float((distance > self.train_radius[nearest]).mean()),
            "near_duplicates": float((distance < self.test_distance.min()).mean()),
        }
        details = {
            "cells": self.cells,
            "cells_in_ct": len(weights),
            "min_generated_per_cell": self.min_generated,
            "ct_null_std": null_std,
            "threshold": COPYING_THRESHOLD,
            "n_train": len(self.train_features),
            "n_test": n,
            "n_generated": m,
            "per_cell": per_cell,
        }
        return scores, details

    def no_cell_reason(self, details: dict[str, Any]) -> str:
        return (
            f"no k-means cell of {details['cells']} holds more than {self.min_generated} of the "
            f"{details['n_generated']} generated samples and a test sample"
        )


_FITTED: dict[tuple, DataCopying] = {}  # fitted tests by content: a run's rows share one fit per process


def _fitted(train: Tensor | np.ndarray, test: Tensor | np.ndarray, cells: int, seed: int) -> DataCopying:
    """A DataCopying fitted on (train, test), reused for equal features: the fit (k-means, the training set's
    nearest-neighbour radii) is most of the cost, and every row of a run is scored against the same splits."""
    train, test = _as_array(train, "training"), _as_array(test, "test")
    key = (hashlib.sha256(train.tobytes()).hexdigest(), train.shape, hashlib.sha256(test.tobytes()).hexdigest())
    key += (test.shape, cells, seed)
    if key not in _FITTED:
        while len(_FITTED) >= 4:
            _FITTED.pop(next(iter(_FITTED)))
        _FITTED[key] = DataCopying(train, test, cells, seed)
    return _FITTED[key]


def copying_scores(
    train: Tensor | np.ndarray, test: Tensor | np.ndarray, generated: Tensor | np.ndarray, seed: int = 0
) -> tuple[dict[str, float | None], dict[str, str], dict[str, Any]]:
    """A task's copying columns: (metrics, unavailable reasons, details) of generated features against the
    training and test features of the same extractor, with `default_cells` cells."""
    copying = _fitted(train, test, default_cells(len(test), len(generated)), seed)
    copying.reset()
    copying.update(generated)
    scores, details = copying.compute_with_details()
    unavailable = {CT_METRIC: copying.no_cell_reason(details)} if scores[CT_METRIC] is None else {}
    return scores, unavailable, details


def held_out_copying_scores(
    train: Tensor | np.ndarray, test: Tensor | np.ndarray, seed: int = 0
) -> tuple[dict[str, float | None], dict[str, str], dict[str, Any]]:
    """The calibration of a reference row: the odd test samples scored as if generated, against the even ones as
    the held-out set (training samples themselves would be copies by definition)."""
    return copying_scores(train, test[0::2], test[1::2], seed)


_FEATURES: dict[tuple, Tensor] = {}  # features of a data split per extractor, computed once per process
_FEATURES_KEPT = 8


def split_features(extractor: FeatureExtractor, images: Tensor) -> Tensor:
    """`extractor`'s CPU features of a data split (the training or test images), computed once per process: a run
    scores its reference row and every model against the same splits (3,000 galaxies take ~2 s on one thread).
    The key is the extractor's content hash with the images' shape and a digest of every 64th of them."""
    key = getattr(extractor, "key", None)
    if key is None:  # an extractor without a content hash: nothing to key a memo by
        with torch.no_grad():
            return extractor.features(images).cpu()
    step = max(1, len(images) // 64)
    digest = hashlib.sha256(images[::step].detach().cpu().contiguous().numpy().tobytes()).hexdigest()
    memo_key = (key, tuple(images.shape), str(images.dtype), digest)
    if memo_key not in _FEATURES:
        with torch.no_grad():
            features = extractor.features(images).cpu()
        while len(_FEATURES) >= _FEATURES_KEPT:
            _FEATURES.pop(next(iter(_FEATURES)))
        _FEATURES[memo_key] = features
    return _FEATURES[memo_key]


def copying_evaluation(
    extractor: FeatureExtractor,
    train_images: Tensor,
    test_features: Tensor,
    generated_features: Tensor | None = None,
) -> Evaluation:
    """The copying columns of a task's row in `extractor`'s space (the one of its FID): generated features against
    the training images' and the test features; without generated features, the held-out calibration of a
    reference row. `details["copying"]` holds the per-cell account."""
    train = split_features(extractor, train_images)
    if generated_features is None:
        scores, unavailable, details = held_out_copying_scores(train, test_features)
    else:
        scores, unavailable, details = copying_scores(train, test_features, generated_features)
    described = {**extractor.describe(), "n_generated": details["n_generated"], "n_real": details["n_test"]}
    described["cells"] = details["cells"]
    return Evaluation(scores, unavailable, dict.fromkeys(scores, described), {"copying": details})


def worst_copies(train: Tensor | np.ndarray, generated: Tensor | np.ndarray, k: int = 8) -> tuple[Tensor, Tensor]:
    """Indices of the k generated samples nearest a training sample (nearest first), and of those training samples:
    for a sample picture that shows them side by side."""
    train_f, generated_f = _as_array(train, "training"), _as_array(generated, "generated")
    distance, nearest = nearest_training(train_f, generated_f)
    order = np.argsort(distance, kind="stable")[:k]
    return torch.from_numpy(order), torch.from_numpy(nearest[order])


def is_copying(ct: float | None) -> bool:
    """Whether a C_T value marks its model as copying its training data."""
    return ct is not None and np.isfinite(ct) and ct < COPYING_THRESHOLD
