"""Data copying (issue 21): C_T, authenticity and the near-duplicate share equal hand computations and the authors'
code; on the generative tasks a sampler that replays training images is flagged (also under pixel noise), one that
draws new images from a Gaussian fit is not, and held-out real data score C_T ≈ 0; the leaderboard marks copying."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import mannwhitneyu
from test_core import record as core_record
from torch import nn

from aebench import leaderboard
from aebench.errors import AebenchError
from aebench.metrics import COPYING_THRESHOLD, CT_METRIC, DataCopying, copying_scores, is_copying
from aebench.model import Model
from aebench.task import TaskData
from aebench.tasks.galaxy_generation import GalaxyGeneration
from aebench.tasks.galaxy_generation.render import RenderConfig
from aebench.tasks.mnist_sharpness import MnistSharpness
from aebench.trained_features import TrainedExtractorConfig


# --- the statistics on small fixed data ---------------------------------------------------------------------------
def brute_nearest(train: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = np.sqrt(((x[:, None, :] - train[None, :, :]) ** 2).sum(-1))
    return d.min(1), d.argmin(1)


def hand_z(generated: np.ndarray, test: np.ndarray) -> float:
    """U counted pair by pair (ties ½), Z-scored as the authors do (null mean nm/2 − ½)."""
    u = sum(float(q > p) + 0.5 * float(q == p) for q in generated for p in test)
    m, n = len(generated), len(test)
    return (u - (n * m / 2 - 0.5)) / math.sqrt(n * m * (n + m + 1) / 12)


def test_ct_authenticity_and_near_duplicates_equal_hand_computations():
    square = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    train = np.concatenate([square, 2 * square + 10])  # two cells that k-means cannot miss, of sides 1 and 2
    test = np.array([[0.5, 0.2], [0.3, 0.9], [1.4, 0.6], [10.5, 10.5], [11.2, 9.6]])
    generated = np.array([[0, 0], [1, 1.4], [0.45, 0.5], [-1.2, 0], [10, 10], [10.9, 11], [11, 10.1], [13, 13]])
    copying = DataCopying(train, test, cells=2, min_generated=1)
    copying.update(generated)
    scores, details = copying.compute_with_details()

    low = lambda x: x[:, 0] < 5  # noqa: E731 — the cell of the square at the origin
    zs, weights = [], []
    for side in (low, lambda x: ~low(x)):
        cell_train = train[side(train)]
        z = hand_z(
            brute_nearest(cell_train, generated[side(generated)])[0], brute_nearest(cell_train, test[side(test)])[0]
        )
        zs.append(z)
        weights.append(side(test).mean())
    expected_ct = float(np.dot(weights, zs) / np.sum(weights))
    assert scores[CT_METRIC] == pytest.approx(expected_ct, abs=1e-12)
    # The first cell by hand: generated distances 0, 0.4, 0.673, 1.2; test 0.539, 0.316, 0.566; U = 0 + 1 + 3 + 3.
    assert zs[0] == pytest.approx((7 - (12 / 2 - 0.5)) / math.sqrt(12 * 8 / 12), abs=1e-12)

    # Authenticity: generated sample farther from its nearest training sample than that one is from its own.
    distance, nearest = brute_nearest(train, generated)
    radius = np.array([np.sort(np.sqrt(((train - t) ** 2).sum(1)))[1] for t in train])  # 1, then 2 per corner
    assert scores["authenticity"] == pytest.approx(np.mean(distance > radius[nearest]))
    # Only (−1.2, 0) is authentic: 1.2 from (0, 0), whose neighbour is 1 away; (13, 13) is 1.41 from (12, 12), 2.
    assert scores["authenticity"] == pytest.approx(1 / 8)
    # Near-duplicates: closer than the closest test sample (0.316): the two exact copies, not (1, 1.4) at 0.4.
    assert scores["near_duplicates"] == pytest.approx(2 / 8)
    assert details["cells_in_ct"] == 2 and details["ct_null_std"] == pytest.approx(
        np.sqrt(np.sum(np.square(weights))) / np.sum(weights)
    )


# The authors' functions (github.com/casey-meehan/data-copying, data_copying_tests.py, MIT licence) as the reference
# implementation, unchanged but for the print and the (m, 1) distance arrays flattened for today's scipy and numpy.
def authors_zu(Pn, Qm, T):  # noqa: N803
    from sklearn.neighbors import NearestNeighbors as NN

    m, n = Qm.shape[0], Pn.shape[0]
    T_NN = NN(n_neighbors=1).fit(T)  # noqa: N806
    LQm, _ = T_NN.kneighbors(X=Qm, n_neighbors=1)  # noqa: N806
    LPn, _ = T_NN.kneighbors(X=Pn, n_neighbors=1)  # noqa: N806
    u, _ = mannwhitneyu(LQm[:, 0], LPn[:, 0], alternative="less")
    mean = (n * m / 2) - 0.5
    std = np.sqrt(n * m * (n + m + 1) / 12)
    return (u - mean) / std


def authors_ct(Pn, Pn_cells, Qm, Qm_cells, T, T_cells, tau):  # noqa: N803
    m, n = Qm.shape[0], Pn.shape[0]
    k = np.max(np.unique(T_cells)) + 1
    labels, cts = np.unique(Qm_cells, return_counts=True)
    Qm_cts = np.zeros(k)  # noqa: N806
    Qm_cts[labels.astype(int)] = cts
    Pi_tau = Qm_cts / m > tau  # noqa: N806
    labels, cts = np.unique(Pn_cells, return_counts=True)
    Pn_cts = np.zeros(k)  # noqa: N806
    Pn_cts[labels.astype(int)] = cts
    Pn_of_pi = Pn_cts / n  # noqa: N806
    zu = np.zeros(k)
    for i in range(k):
        if (Qm_cells == i).any():
            zu[i] = authors_zu(Pn[Pn_cells == i], Qm[Qm_cells == i], T[T_cells == i])
    return Pn_of_pi[Pi_tau].dot(zu[Pi_tau]) / np.sum(Pn_of_pi[Pi_tau])


@pytest.mark.parametrize("copies, shift", [(150, 0.0), (0, 1.0)])  # near-copies of training samples; an offset
def test_ct_equals_the_authors_code(copies, shift):
    rng = np.random.default_rng(0)
    train, test = rng.normal(size=(600, 5)), rng.normal(size=(300, 5))
    near_copies = train[:copies] + 0.05 * rng.normal(size=(copies, 5))
    generated = np.concatenate([near_copies, rng.normal(size=(400 - copies, 5)) + shift])
    copying = DataCopying(train, test, cells=5)
    copying.update(generated)
    cells = copying.kmeans.predict
    expected = authors_ct(test, cells(test), generated, cells(generated), train, copying.train_cells, 20 / 400)
    assert copying.compute()[CT_METRIC] == pytest.approx(expected, rel=1e-9)
    assert expected < COPYING_THRESHOLD if copies else expected > -COPYING_THRESHOLD  # copying; underfitting


def test_scores_are_deterministic_for_a_seed_and_refuse_bad_input():
    rng = np.random.default_rng(1)
    train, test, generated = rng.normal(size=(500, 8)), rng.normal(size=(200, 8)), rng.normal(size=(300, 8))
    runs = []
    for _ in range(2):  # two fits from scratch (copying_scores would reuse the first)
        copying = DataCopying(train, test, cells=5, seed=3)
        copying.update(generated)
        runs.append(copying.compute_with_details())
    assert runs[0] == runs[1] and runs[0][0][CT_METRIC] is not None
    assert abs(runs[0][0][CT_METRIC]) < 3  # three draws of one distribution: no copying
    with pytest.raises(AebenchError, match="NaN"):
        copying_scores(train, test, np.full((10, 8), np.nan))
    with pytest.raises(AebenchError, match="cells must be"):
        DataCopying(train, test, cells=0)
    # Too few generated samples for any cell: C_T is unavailable, with the reason.
    scores, unavailable, _ = copying_scores(train, test, generated[:5])
    assert scores[CT_METRIC] is None and "holds more than 20" in unavailable[CT_METRIC]


# --- on the generative tasks, smoke budget ------------------------------------------------------------------------
class Replay(Model):
    """Learns nothing: returns random training images, optionally with Gaussian pixel noise."""

    name = "replay"
    capabilities = {"sample"}

    def __init__(self, data: TaskData, noise: float = 0.0):
        super().__init__(Model.Config(), data.spec)
        self.x, self.noise = data.train["x"], noise
        self.anchor = nn.Parameter(torch.zeros(()))  # Model.device reads it

    def sample(self, n, generator=None):
        x = self.x[torch.randint(len(self.x), (n,), generator=generator)]
        return x + self.noise * torch.randn(x.shape, generator=generator)


class GaussianFit(Replay):
    """New images from a Gaussian fit (top 32 principal components) of the training pixels: blurry, not copies."""

    name = "gaussian-fit"

    def __init__(self, data: TaskData):
        super().__init__(data)
        pixels = self.x[:1000].flatten(1).double()
        self.mean = pixels.mean(0)
        _, s, vt = torch.linalg.svd(pixels - self.mean, full_matrices=False)
        self.axes = (s[:32, None] / math.sqrt(len(pixels) - 1)) * vt[:32]

    def sample(self, n, generator=None):
        z = torch.randn(n, len(self.axes), generator=generator, dtype=torch.float64)
        return (self.mean + z @ self.axes).float().reshape(n, *self.x.shape[1:])


TINY_DIGITS = TrainedExtractorConfig(channels=(8, 16), feature_dim=32, epochs=2)  # as test_mnist_sharpness
# Galaxies at 32 px, 200 / 100 per class (8 s to render) and small extractors: the smoke budget's 300 samples.
GALAXIES = RenderConfig(size=32, train_per_class=200, test_per_class=100)
TINY_GALAXY = TrainedExtractorConfig(channels=(8, 16), feature_dim=32, epochs=10, batch_size=32, lr=5e-3)
TINY_GALAXY_AE = TrainedExtractorConfig(objective="autoencoder", channels=(8, 16), feature_dim=32, epochs=1)
# Pixel noise of the noisy replay: MNIST's issue example, N(0, 0.1²) in [0, 1]; galaxies in [−1, 1] carry sky noise
# of σ ≈ 0.07, and galaxy-cnn features move as far as to another galaxy at σ ≈ 0.02: a seventh of the sky noise.
NOISE = {"mnist-sharpness": 0.1, "galaxy-generation": 0.01}


@pytest.fixture(scope="module")
def tasks(smoke_cache):
    mnist = MnistSharpness(smoke_cache, extractor_config=TINY_DIGITS)
    galaxies = GalaxyGeneration(
        smoke_cache, render_config=GALAXIES, extractor_config=TINY_GALAXY, ae_config=TINY_GALAXY_AE
    )
    return {task.name: (task, task.load(None)) for task in (mnist, galaxies)}


@pytest.mark.parametrize("name", ["mnist-sharpness", "galaxy-generation"])
def test_replaying_training_images_is_flagged_and_new_images_are_not(tasks, name):
    task, data = tasks[name]
    budget = task.budgets["smoke"]

    def scores(model):
        return task.evaluate(model, data, budget, torch.Generator().manual_seed(0)).metrics

    replay, noisy, gaussian = scores(Replay(data)), scores(Replay(data, NOISE[name])), scores(GaussianFit(data))
    (reference,) = task.references(data, budget, torch.Generator().manual_seed(0)).values()
    assert is_copying(replay[CT_METRIC]) and replay["near_duplicates"] == 1.0 and replay["authenticity"] == 0.0
    assert is_copying(noisy[CT_METRIC]), noisy
    assert not is_copying(gaussian[CT_METRIC]) and gaussian[CT_METRIC] > 0, gaussian  # farther than test data
    # The calibration: held-out real data generalise (C_T ≈ 0), and FID alone cannot tell them from the replay.
    held_out = reference.metrics
    assert abs(held_out[CT_METRIC]) < 1.5 and held_out["near_duplicates"] < 0.05, held_out
    assert 0.3 < held_out["authenticity"] < 0.8 and replay["fid"] < gaussian["fid"]  # FID prefers the replay
    assert reference.extractors[CT_METRIC]["name"] == reference.extractors["fid"]["name"]


def test_the_sample_picture_shows_the_nearest_training_images(tasks, tmp_path):
    import matplotlib.image

    task, data = tasks["mnist-sharpness"]
    task.save_samples(Replay(data), data, tmp_path / "replay.png", torch.Generator().manual_seed(0))
    image = matplotlib.image.imread(tmp_path / "replay.png")[..., 0]
    # 8 sample lines, a gap, then the 8 samples nearest a training digit over those digits: equal for a replay.
    top = 8 * 30 + 4
    copies, originals = image[top + 2 : top + 30], image[top + 32 : top + 60]
    assert copies.shape == originals.shape and np.allclose(copies, originals, atol=1 / 255)
    assert copies.std() > 0.1  # digits, not blank slots


# --- the leaderboard ----------------------------------------------------------------------------------------------
def record(model: str, fid: float, ct: float) -> dict:
    """test_core's record (sharpness and FID in the "digits" space), with a C_T in that space."""
    extended = core_record(model, value=fid / 10)
    extractor = extended["metrics"]["fid"]["extractor"]
    extended["metrics"][CT_METRIC] = {"value": ct, "higher_is_better": True, "label": "C_T", "extractor": extractor}
    return extended


def test_leaderboard_marks_copying_and_never_bolds_it():
    records = [record("copier", 3.0, -9.5), record("ae", 80.0, 2.0), record("vae", 120.0, COPYING_THRESHOLD + 0.1)]
    table = leaderboard.render(records, "md")
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines() if line.startswith("| ")}
    assert "copying (C_T -9.50 < -3)" in rows["copier"] and "**" not in rows["copier"]
    assert "**80.00**" in rows["ae"] and "copying" not in rows["vae"]  # the best FID of the non-copying models
    assert "**2.000**" not in rows["ae"]  # C_T has no best: ≈ 0 is ideal, far above 0 underfits
    assert "never bolded as best" in table
    assert "copying" not in leaderboard.render(records[1:], "md")
    assert "copying (C_T" in leaderboard.render(records, "csv")
