"""How useful a representation (an encoder's latent codes) is downstream: a linear probe, k-means clustering and
retrieval by distance, each scored on labelled test items against labelled training items.

The ACAI paper (Berthelot et al. 2019, section 4) reports the first two for auto-encoders' latents; as the
authors' code (github.com/brain-research/acai):

- Linear probe: one dense layer with softmax (`lib/classifiers.py: single_layer_classifier`) on the flattened
  codes. The authors train it with Adam alongside the auto-encoder on stopped gradients; here it is fitted on the
  frozen codes of the training items to its optimum (L-BFGS, float64) with a small L2 penalty on standardised
  features, so that its value depends on the codes only (see `fit_linear_probe`).
- Clustering (`cluster.py`): codes centred on the training mean and whitened by the training SVD (divided by the
  singular values + 10⁻⁵; directions without any training variance dropped, see `whiten`), scikit-learn KMeans
  with k = the number of classes, `init="random"`, `max_iter` 1000, `random_state` 0 and `n_init` 1000, fitted
  on the training codes; the test codes' clusters are matched with the labels by the Hungarian algorithm (the
  authors' Munkres on the confusion matrix; here `scipy.optimize.linear_sum_assignment`) and the accuracy is the
  share of test items in their matched class.

Retrieval precision@k is not the paper's: each test item queries the training items, and the share of its k
nearest (Euclidean distance on the codes as they are; ties to the lower training index) that share its label is
its precision; the metric is the mean over queries.

Each metric accumulates `update(features, labels, ...)` calls for its two sides and returns an `ItemMean` over the
test items (per-item 0/1 correctness, or per-query precision), so that a record carries a bootstrap interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from aebench.errors import AebenchError
from aebench.metrics.base import ItemMean, Metric, check_finite

PROBE_L2 = 1e-4  # weight of ½‖W‖² beside the mean cross-entropy, on standardised features
# L-BFGS stops when no gradient entry exceeds PROBE_TOLERANCE. Measured on the 4,000 embedded digits' raw pixels
# (1,024 features, the slowest case): 300 iterations reach 2e-6 and 1,000 reach 9e-9, with the same test
# accuracy to 0.001 (0.878, 0.879); codes of 32 dimensions converge in well under 100.
PROBE_TOLERANCE = 1e-7
PROBE_MAX_ITER = 1000
KMEANS_INITS = 1000  # the authors' n_init
KMEANS_MAX_ITER = 1000  # the authors' max_iter
KMEANS_SEED = 0  # the authors' random_state
WHITENING_EPS = 1e-5  # the authors' s + 1e-5
RETRIEVAL_K = 10
RETRIEVAL_CHUNK = 256  # queries per distance matrix


# --- functional helpers -------------------------------------------------------------------------------------------
def _flat64(features: Tensor | np.ndarray, what: str) -> Tensor:
    x = torch.as_tensor(features).detach().cpu()
    x = check_finite(x.reshape(len(x), -1).double(), what)
    return x


def _labels(labels: Tensor | np.ndarray) -> Tensor:
    return torch.as_tensor(labels).detach().cpu().long().reshape(-1)


@dataclass(frozen=True)
class LinearProbe:
    """A fitted softmax layer on standardised features: logits = ((x − mean) / scale) W + b."""

    mean: Tensor  # (D,)
    scale: Tensor  # (D,)
    weight: Tensor  # (D, C)
    bias: Tensor  # (C,)

    def logits(self, features: Tensor) -> Tensor:
        return ((_flat64(features, "linear probe") - self.mean) / self.scale) @ self.weight + self.bias

    def predict(self, features: Tensor) -> Tensor:
        return self.logits(features).argmax(dim=1)


def fit_linear_probe(features: Tensor, labels: Tensor, n_classes: int, l2: float = PROBE_L2) -> LinearProbe:
    """The multinomial logistic regression that minimises mean cross-entropy + (l2 / 2) ‖W‖² (the bias is not
    penalised) on features standardised by their training mean and standard deviation (a constant feature keeps
    scale 1). The objective is strictly convex, so its minimum is unique: L-BFGS in float64 finds it (to
    `PROBE_TOLERANCE`), and it equals scikit-learn's `LogisticRegression(C=1 / (l2 · N))` on the same standardised
    features (tests).

    Standardising changes nothing for an unpenalised linear classifier (an affine change of its inputs); it makes
    the one penalty weight mean the same for every code scale."""
    x, y = _flat64(features, "linear probe"), _labels(labels)
    if len(x) != len(y) or len(x) == 0:
        raise AebenchError(f"linear probe: {len(x)} training features but {len(y)} labels")
    mean, scale = x.mean(dim=0), x.std(dim=0, unbiased=False)
    scale = torch.where(scale > 1e-12, scale, torch.ones_like(scale))
    x = (x - mean) / scale
    weight = torch.zeros(x.shape[1], n_classes, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(n_classes, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], lr=1, max_iter=PROBE_MAX_ITER, history_size=20,
                                  tolerance_grad=PROBE_TOLERANCE, tolerance_change=1e-14,
                                  line_search_fn="strong_wolfe")  # fmt: skip

    def objective() -> Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ weight + bias, y) + 0.5 * l2 * (weight**2).sum()
        loss.backward()
        return loss

    optimizer.step(objective)
    return LinearProbe(mean, scale, weight.detach(), bias.detach())


def whiten(train: Tensor, test: Tensor, eps: float = WHITENING_EPS) -> tuple[Tensor, Tensor]:
    """The authors' SVD whitening (cluster.py): both centred on the training mean, projected on the training
    codes' right singular vectors and divided by their singular values + eps.

    One difference: directions in which the training codes do not vary at all (singular values below numpy's
    rank tolerance, s_max · max(N, D) · float64 eps) are dropped. The authors' codes are never rank-deficient, so
    nothing changes for them; for raw pixels (background pixels that no training digit lights) the authors'
    formula would multiply a test digit's stray pixel by 10⁵."""
    mean = train.mean(dim=0)
    _, s, vt = torch.linalg.svd(train - mean, full_matrices=False)
    kept = s > s.max() * max(train.shape) * torch.finfo(torch.float64).eps
    s, vt = s[kept], vt[kept]
    return (train - mean) @ vt.T / (s + eps), (test - mean) @ vt.T / (s + eps)


def kmeans_clusters(train: Tensor, test: Tensor, k: int, n_init: int = KMEANS_INITS, seed: int = KMEANS_SEED,
                    max_iter: int = KMEANS_MAX_ITER) -> np.ndarray:  # fmt: skip
    """The test codes' clusters (N_test,) of a k-means fitted on the training codes, as the authors' KMeans."""
    from sklearn.cluster import KMeans

    kmeans = KMeans(n_clusters=k, init="random", n_init=n_init, max_iter=max_iter, random_state=seed)
    kmeans.fit(train.numpy())
    return kmeans.predict(test.numpy())


def matched_correct(clusters: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Per item, 1.0 where its cluster is matched with its label by the one-to-one matching of clusters and classes
    that maximises the number of such items (the Hungarian algorithm on the k × k confusion matrix)."""
    from scipy.optimize import linear_sum_assignment

    clusters, labels = np.asarray(clusters, dtype=np.int64), np.asarray(labels, dtype=np.int64)
    if clusters.min(initial=0) < 0 or labels.min(initial=0) < 0 or max(clusters.max(initial=0),
                                                                       labels.max(initial=0)) >= k:  # fmt: skip
        raise AebenchError(f"clustering accuracy: clusters and labels must lie in 0 … {k - 1}")
    counts = np.zeros((k, k), dtype=np.int64)
    np.add.at(counts, (clusters, labels), 1)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    matched = np.full(k, -1, dtype=np.int64)
    matched[rows] = cols
    return (matched[clusters] == labels).astype(np.float64)


def clustering_accuracy(clusters: np.ndarray, labels: np.ndarray, k: int) -> float:
    return float(matched_correct(clusters, labels, k).mean())


def nearest_neighbours(queries: Tensor, database: Tensor, k: int) -> Tensor:
    """Indices (Q, k) of each query's k nearest database rows by Euclidean distance, nearest first, ties to the
    lower index. Squared distances as ‖q‖² + ‖d‖² − 2 q·d in float64 (float32 codes: exact to ~1e-12 relative)."""
    if k > len(database):
        raise AebenchError(f"retrieval: k = {k} but the database holds {len(database)} items")
    database_norms = (database**2).sum(dim=1)
    found = []
    for chunk in queries.split(RETRIEVAL_CHUNK):
        distances = (chunk**2).sum(dim=1, keepdim=True) + database_norms - 2 * chunk @ database.T
        found.append(torch.sort(distances, dim=1, stable=True).indices[:, :k])
    return torch.cat(found)


def precision_at_k(queries: Tensor, query_labels: Tensor, database: Tensor, database_labels: Tensor,
                   k: int = RETRIEVAL_K) -> Tensor:  # fmt: skip
    """Per query (Q,): the share of its k nearest database items whose label is its own."""
    neighbours = nearest_neighbours(queries, database, k)
    return (database_labels[neighbours] == query_labels[:, None]).double().mean(dim=1)


# --- metric objects -----------------------------------------------------------------------------------------------
class _TrainTestMetric(Metric):
    """Features and labels of a fitting side (`train=True`) and a scored side, concatenated over updates."""

    side_names = ("train", "test")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for side in self.side_names:
            self.add_state(f"{side}_features", [], dist_reduce_fx="cat")
            self.add_state(f"{side}_labels", [], dist_reduce_fx="cat")

    def _add(self, side: str, features: Tensor, labels: Tensor) -> None:
        x, y = _flat64(features, self.name), _labels(labels)
        if len(x) != len(y):
            raise AebenchError(f"{self.name}: {len(x)} features but {len(y)} labels")
        getattr(self, f"{side}_features").append(x)
        getattr(self, f"{side}_labels").append(y)

    def _sides(self) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
        out = []
        for side in self.side_names:
            if isinstance(getattr(self, f"{side}_features"), list) and not getattr(self, f"{side}_features"):
                raise AebenchError(f"{self.name}: no {side} features were given")
            out.append((self.gathered(f"{side}_features"), self.gathered(f"{side}_labels")))
        (a, a_labels), (b, b_labels) = out
        if a.shape[1] != b.shape[1]:
            raise AebenchError(f"{self.name}: {self.side_names[0]} features have {a.shape[1]} dimensions, "
                               f"{self.side_names[1]} features {b.shape[1]}")  # fmt: skip
        return (a, a_labels), (b, b_labels)

    def per_item(self) -> Tensor:
        """(N,) float64: the score of each scored item (1/0 for a right/wrong class, a share for retrieval)."""
        raise NotImplementedError

    def compute(self) -> Tensor:
        return self.per_item().mean()

    def value(self) -> ItemMean:
        with self.sync_context(should_sync=self._to_sync, should_unsync=self._should_unsync):
            items = self.per_item()
        return ItemMean(float(items.mean()), items)


class LinearProbeAccuracy(_TrainTestMetric):
    """Test accuracy of a softmax layer fitted on the training features (`fit_linear_probe`)."""

    name = "linear_probe_accuracy"
    higher_is_better = True
    description = "accuracy of a multinomial logistic regression fitted on frozen training codes"

    def __init__(self, n_classes: int, l2: float = PROBE_L2) -> None:
        super().__init__()
        self.n_classes, self.l2 = n_classes, l2

    def update(self, features: Tensor, labels: Tensor, train: bool) -> None:
        self._add("train" if train else "test", features, labels)

    def per_item(self) -> Tensor:
        (train, train_labels), (test, test_labels) = self._sides()
        probe = fit_linear_probe(train, train_labels, self.n_classes, self.l2)
        return (probe.predict(test) == test_labels).double()


class ClusteringAccuracy(_TrainTestMetric):
    """Hungarian-matched test accuracy of k-means fitted on the (whitened) training features, as the ACAI code."""

    name = "clustering_accuracy"
    higher_is_better = True
    description = "k-means on whitened codes, clusters matched with classes (Hungarian), test accuracy"

    def __init__(self, n_clusters: int, n_init: int = KMEANS_INITS, seed: int = KMEANS_SEED,
                 max_iter: int = KMEANS_MAX_ITER, whitened: bool = True) -> None:  # fmt: skip
        super().__init__()
        self.n_clusters, self.n_init, self.seed, self.max_iter = n_clusters, n_init, seed, max_iter
        self.whitened = whitened

    def update(self, features: Tensor, labels: Tensor, train: bool) -> None:
        self._add("train" if train else "test", features, labels)

    def per_item(self) -> Tensor:
        (train, _), (test, test_labels) = self._sides()
        if self.whitened:
            train, test = whiten(train, test)
        clusters = kmeans_clusters(train, test, self.n_clusters, self.n_init, self.seed, self.max_iter)
        return torch.from_numpy(matched_correct(clusters, test_labels.numpy(), self.n_clusters)).double()


class RetrievalPrecisionAtK(_TrainTestMetric):
    """Mean over queries of the share of the k nearest database items (Euclidean) with the query's label."""

    name = "precision_at_k"
    higher_is_better = True
    description = "share of a test item's k nearest training codes (Euclidean) with its label, mean over items"
    side_names = ("database", "query")

    def __init__(self, k: int = RETRIEVAL_K) -> None:
        super().__init__()
        self.k = k

    def update(self, features: Tensor, labels: Tensor, database: bool) -> None:
        self._add("database" if database else "query", features, labels)

    def per_item(self) -> Tensor:
        (database, database_labels), (queries, query_labels) = self._sides()
        return precision_at_k(queries, query_labels, database, database_labels, self.k)
