"""The representation metrics (aebench/metrics/representation.py) against references: the Hungarian clustering
accuracy against every permutation, the linear probe against scikit-learn's LogisticRegression, precision@k against
a plain loop; and each metric falls to chance when the codes stop carrying the labels."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from aebench.errors import AebenchError
from aebench.metrics.representation import (
    ClusteringAccuracy,
    LinearProbeAccuracy,
    RetrievalPrecisionAtK,
    clustering_accuracy,
    fit_linear_probe,
    precision_at_k,
    whiten,
)


@pytest.mark.parametrize("seed", range(20))
def test_hungarian_accuracy_is_the_best_permutation(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 6))
    n = int(rng.integers(1, 40))
    labels = rng.integers(0, k, n)
    clusters = np.where(rng.random(n) < 0.6, (labels + seed) % k, rng.integers(0, k, n))  # partly a relabelling
    best = max(np.mean(np.asarray(permutation)[clusters] == labels) for permutation in itertools.permutations(range(k)))
    assert clustering_accuracy(clusters, labels, k) == pytest.approx(best, abs=1e-12)


def test_hungarian_accuracy_of_a_relabelling_is_one_and_bad_labels_are_refused():
    labels = np.array([0, 0, 1, 1, 2, 2, 3])
    assert clustering_accuracy((labels + 2) % 4, labels, 4) == 1.0
    with pytest.raises(AebenchError, match="0 … 3"):
        clustering_accuracy(labels + 1, labels, 4)


def _blobs(seed: int, n: int = 300, d: int = 6, k: int = 4, spread: float = 1.5):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * 2
    y = rng.integers(0, k, n)
    x = centres[y] + spread * rng.normal(size=(n, d)) * rng.uniform(0.2, 5, d)  # unequal feature scales
    return torch.from_numpy(x), torch.from_numpy(y)


@pytest.mark.parametrize("seed", range(3))
def test_linear_probe_equals_scikit_learn_logistic_regression(seed):
    from sklearn.linear_model import LogisticRegression

    x, y = _blobs(seed)
    l2 = 1e-2
    probe = fit_linear_probe(x, y, 4, l2)
    standard = ((x - x.mean(0)) / x.std(0, unbiased=False)).numpy()
    reference = LogisticRegression(C=1 / (l2 * len(x)), tol=1e-12, max_iter=10_000).fit(standard, y.numpy())
    np.testing.assert_allclose(probe.weight.T.numpy(), reference.coef_, rtol=1e-5, atol=1e-6)
    ours = torch.softmax(probe.logits(x), dim=1).numpy()
    np.testing.assert_allclose(ours, reference.predict_proba(standard), atol=1e-6)
    np.testing.assert_array_equal(probe.predict(x).numpy(), reference.predict(standard))


def test_precision_at_k_equals_a_plain_loop_with_ties_to_the_lower_index():
    rng = np.random.default_rng(0)
    database = rng.integers(0, 4, size=(60, 3)).astype(np.float32)  # a small grid: many equal distances
    database_labels = rng.integers(0, 3, 60)
    queries = rng.integers(0, 4, size=(25, 3)).astype(np.float32)
    query_labels = rng.integers(0, 3, 25)
    for k in (1, 5, 17):
        expected = []
        for q, label in zip(queries, query_labels):
            distances = [float(((q.astype(np.float64) - d) ** 2).sum()) for d in database]
            nearest = sorted(range(len(database)), key=lambda i: (distances[i], i))[:k]
            expected.append(np.mean(database_labels[nearest] == label))
        ours = precision_at_k(*map(torch.from_numpy, (queries, query_labels, database, database_labels)), k=k)
        np.testing.assert_allclose(ours.double().numpy(), expected, atol=1e-12)
    with pytest.raises(AebenchError, match="k = 61"):
        precision_at_k(torch.zeros(1, 3), torch.zeros(1), torch.zeros(60, 3), torch.zeros(60), k=61)


def test_whitening_gives_unit_singular_values_on_the_training_side():
    x, _ = _blobs(1)
    train, test = whiten(x[:200], x[200:])
    assert train.mean(0).abs().max() < 1e-10
    np.testing.assert_allclose(torch.linalg.svdvals(train).numpy(), 1.0, atol=1e-6)
    assert test.shape == (100, 6)


def test_metric_objects_accumulate_updates_and_reset():
    x, y = _blobs(2, n=400)
    metrics = [LinearProbeAccuracy(4), ClusteringAccuracy(4, n_init=3), RetrievalPrecisionAtK(k=5)]
    values = []
    for metric in metrics:
        for a, b in ((slice(0, 150), slice(150, 300)), (slice(150, 300), slice(300, 400))):  # train/db then test
            metric.update(x[a], y[a], True)
            metric.update(x[b], y[b], False)
        values.append(metric.value())
        metric.reset()
        metric.update(x[:300], y[:300], True)
        metric.update(x[150:400], y[150:400], False)
        assert metric.value() == values[-1]  # the same items in one update each
        assert len(values[-1].items) == 250
    assert all(0.25 < v <= 1 for v in values)  # above chance (0.25) on overlapping blobs: 0.59, 0.42, 0.43


def test_no_test_side_and_mismatched_dimensions_are_clear_errors():
    x, y = _blobs(3)
    probe = LinearProbeAccuracy(4)
    probe.update(x, y, True)
    with pytest.raises(AebenchError, match="no test features"):
        probe.value()
    probe.update(x[:, :3], y, False)
    with pytest.raises(AebenchError, match="6 dimensions"):
        probe.value()


@pytest.fixture(scope="module")
def digits(smoke_cache):
    """PCA-16 codes of 1,300 embedded MNIST digits: a representation that carries the labels."""
    from aebench.mnist import load_embedded

    data = load_embedded(smoke_cache)  # parsed once per session into the shared cache (as test_latent_mnist)
    x = torch.cat([data.train["x"][:1000], data.test["x"][:300]]).reshape(1300, -1).double()
    y = torch.cat([data.train["y"][:1000], data.test["y"][:300]])
    _, _, vt = torch.linalg.svd(x[:1000] - x[:1000].mean(0), full_matrices=False)
    codes = (x - x[:1000].mean(0)) @ vt[:16].T
    return codes, y


def _scores(codes, y):
    train, test = slice(0, 1000), slice(1000, 1300)
    values = {}
    for metric in (LinearProbeAccuracy(10), ClusteringAccuracy(10, n_init=10), RetrievalPrecisionAtK()):
        metric.update(codes[train], y[train], True)
        metric.update(codes[test], y[test], False)
        values[metric.name] = metric.value()
    return values


def test_each_metric_falls_to_chance_when_the_codes_stop_carrying_the_labels(digits):
    codes, y = digits
    good = _scores(codes, y)
    shuffled = _scores(codes[torch.randperm(len(codes), generator=torch.Generator().manual_seed(0))], y)
    noise = _scores(torch.randn(codes.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64), y)
    # Measured: probe 0.86, k-means 0.53, precision@10 0.86 on the codes; 0.06–0.19 when shuffled or noise.
    assert good["linear_probe_accuracy"] > 0.75 and good["precision_at_k"] > 0.75
    assert good["clustering_accuracy"] > 0.4
    for broken in (shuffled, noise):
        assert all(value < 0.25 for value in broken.values()), broken


def test_whitening_drops_directions_without_training_variance():
    x, _ = _blobs(4)
    train = torch.cat([x[:200], torch.zeros(200, 2)], dim=1)  # two features no training item moves
    test = torch.cat([x[200:], torch.ones(100, 2)], dim=1)  # that a test item does
    white_train, white_test = whiten(train, test)
    assert white_train.shape == (200, 6) and white_test.abs().max() < 100  # not × 10⁵
    np.testing.assert_allclose(white_test.abs().numpy(), whiten(x[:200], x[200:])[1].abs().numpy(), atol=1e-9)
