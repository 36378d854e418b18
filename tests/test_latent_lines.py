"""latent-lines: the authors' line renderer, the Mean Distance and Smoothness scores against scipy and hand
computations, the reference rows, and a tiny real run of the ae baseline."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.spatial
import torch

from aebench.task import Budget
from aebench.tasks.latent_lines import STEPS, LatentLines, crossfade_paths, exact_paths, pairs, shorter_arc
from aebench.tasks.latent_lines.data import EmbeddedConfig, draw_line, draw_lines, generate, grid_angles, load_embedded
from aebench.tasks.latent_lines.metrics import InterpolationScores, closest_lines, score, smoothness
from toy import train_briefly

SMALL = EmbeddedConfig(n_train=512, n_test=128)
BUDGET = Budget(steps=30, batch_size=32, eval_samples=32)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return LatentLines(tmp_path_factory.mktemp("cache"), embedded=SMALL).load(None)


def test_generator_is_deterministic_and_seeded():
    first, again, other = generate(3, 50), generate(3, 50), generate(4, 50)
    for key in ("x", "angle", "y"):
        assert first[key].tobytes() == again[key].tobytes()
    assert not np.array_equal(first["angle"], other["angle"])
    assert first["x"].shape == (50, 1, 32, 32) and first["x"].dtype == np.float32
    assert ((first["angle"] >= 0) & (first["angle"] < 2 * np.pi)).all()
    assert (first["y"] == np.floor(10 * first["angle"] / (2 * np.pi - 1e-6))).all()


@pytest.mark.parametrize("angle", np.linspace(0, 2 * np.pi, 73)[:-1])
def test_a_line_is_15_pixels_long_2_wide_and_points_along_its_angle(angle):
    """The authors' renderer: from the centre 15 pixels (x0 − 1) out, counter-clockwise from +column with rows
    pointing down, lit by a band 2 pixels wide along the minor image axis (so its area is 2 · 15 · max(|cos θ|,
    |sin θ|), up to 2 · 15 where the ends round up). Their `x0 - w / 2` shifts the line sideways by up to 0.71 px
    (at odd multiples of π/4): the centre it starts from is near, not exact."""
    image = draw_line(angle)
    assert image.min() == -1.0 and image.max() == 1.0
    lit = (image + 1) / 2  # 0 background, 1 fully covered
    assert 30 * max(abs(np.cos(angle)), abs(np.sin(angle))) - 1e-9 <= lit.sum() <= 30 + 1e-9  # length × width
    rows, cols = np.nonzero(lit)
    weights = lit[rows, cols]
    x, y = cols + 0.5 - 16, 16 - (rows + 0.5)  # pixel centres against the image centre, y up
    mean = np.array([np.average(x, weights=weights), np.average(y, weights=weights)])
    axis = np.linalg.eigh(np.cov(np.stack([x, y]), aweights=weights))[1][:, 1]  # the line's direction
    axis = axis if axis @ mean > 0 else -axis  # the way it points out of the centre
    assert abs(np.angle(np.exp(1j * (np.arctan2(axis[1], axis[0]) - angle)))) < 0.02
    unit, normal = np.array([np.cos(angle), np.sin(angle)]), np.array([-np.sin(angle), np.cos(angle)])
    assert abs(mean @ normal) <= 0.71 + 1e-9  # the sideways shift
    along = np.stack([x, y], axis=1) @ unit
    # One way out of the centre, 15 px long: lit pixel centres from −0.71 to 14.2–16.9 px along it (the band's
    # corners at diagonals), its mass centred at 7.5 ± 0.75 px (measured on 3,600 angles: 6.88–8.22).
    assert along.min() >= -0.71 - 1e-9 and 14 <= along.max() <= 17
    assert mean @ unit == pytest.approx(7.5, abs=0.75)


def test_embedded_data_are_cached_and_the_same_bytes(tmp_path):
    first = load_embedded(tmp_path, SMALL)
    again = load_embedded(tmp_path, SMALL)
    assert not first.info["from_cache"] and again.info["from_cache"]
    assert first.content_hash() == again.content_hash() == load_embedded(tmp_path / "other", SMALL).content_hash()
    assert torch.equal(first.test["x"], torch.from_numpy(draw_lines(first.test["angle"].numpy())))
    other = load_embedded(tmp_path, dataclasses.replace(SMALL, test_seed=7))
    assert not other.info["from_cache"] and not torch.equal(other.test["angle"], first.test["angle"])


def test_closest_lines_match_scipy_cosine_cdist():
    rng = np.random.default_rng(0)
    angles = rng.random(6) * 2 * np.pi
    queries = np.concatenate([draw_lines(angles), rng.normal(size=(4, 1, 32, 32)).astype(np.float32)])
    queries[:6] += 0.3 * rng.normal(size=(6, 1, 32, 32)).astype(np.float32)
    grid = np.stack([draw_line(a).ravel() for a in grid_angles()])
    distances = scipy.spatial.distance.cdist(queries.reshape(len(queries), -1).astype(np.float64), grid, "cosine")
    distance, angle = closest_lines(torch.from_numpy(queries))
    np.testing.assert_allclose(distance.numpy(), distances.min(axis=1), rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(angle.numpy(), grid_angles()[distances.argmin(axis=1)])


def test_smoothness_on_hand_made_paths():
    even = np.linspace(1.0, 2.5, 16)
    assert smoothness(even)[0] == pytest.approx(0.0, abs=1e-12)
    jump = np.r_[np.full(8, 1.0), np.full(8, 2.0)]  # all of the change in one step
    assert smoothness(jump)[0] == pytest.approx(1 - 1 / 15)
    around = np.remainder(np.linspace(6.0, 6.0 + 1.2, 16), 2 * np.pi)  # through 2π: unwrapped, still even
    assert smoothness(around)[0] == pytest.approx(0.0, abs=1e-12)
    assert np.isnan(smoothness(np.r_[1.0, 2.0, 1.0])[0])  # ends at one angle: no score
    two = np.stack([even, jump])
    np.testing.assert_allclose(smoothness(two), [0.0, 1 - 1 / 15], atol=1e-12)


def test_exact_interpolation_is_ideal_and_broken_ones_are_not(data):
    exact_path = exact_paths(data, BUDGET)
    first, second = pairs(data, BUDGET)
    assert torch.equal(exact_path[:, 0], first) and torch.equal(exact_path[:, -1], second)
    arc = shorter_arc(data.test["angle"][:32].double(), data.test["angle"][32:64].double())
    assert (np.abs(np.diff(np.unwrap(arc.numpy()), axis=1)) <= np.pi / 15 + 1e-12).all()  # the shorter way
    exact = score(exact_path, why_no_mse="not a model").metrics
    fade = score(crossfade_paths(first, second), why_no_mse="not a model").metrics
    shuffled = exact_path[:, torch.randperm(STEPS, generator=torch.Generator().manual_seed(0))]
    broken = score(shuffled, why_no_mse="not a model").metrics
    # Ideal up to the 10,000-line grid (2π / 10,000 apart): distance ~1e-7, smoothness ~1e-3.
    assert exact["mean_distance"] < 1e-6 and exact["smoothness"] < 0.01
    assert fade["mean_distance"] > 1e-3 and fade["smoothness"] > 0.5  # two fading lines; the angle jumps
    assert broken["mean_distance"] < 1e-6 and broken["smoothness"] > 0.3  # true lines in the wrong order
    assert exact["mse"] is None


def test_a_collapsed_decoder_does_not_win_smoothness(data):
    """The authors' mean counts a path whose ends decode to one angle as 0 (perfect): a decoder that draws one line
    for every code would score 0 and win. Smoothness is not measured when more than 10 % of the paths are
    unscored, and is the authors' mean unchanged below that."""
    first, second = pairs(data, BUDGET)
    fade = crossfade_paths(first, second)  # 32 paths, every one scored
    collapsed = first[:1, None].expand_as(fade)  # one line decoded for every code
    result = score(collapsed, why_no_mse="not a model")
    assert result.metrics["smoothness"] is None and result.details["unscored_paths"] == 32
    assert "32 of 32 paths" in result.unavailable["smoothness"]
    assert result.details["smoothness_authors_mean"] == 0.0  # what the authors' mean would have shown

    def partly(n_collapsed: int):
        paths = fade.clone()
        paths[:n_collapsed] = first[:1]  # those paths: one image from end to end
        return score(paths, why_no_mse="not a model")

    few, many = partly(3), partly(4)  # 29 / 32 = 0.906 scored; 28 / 32 = 0.875
    _, angles = closest_lines(fade[3:].reshape(-1, *fade.shape[2:]))
    authors = smoothness(angles.reshape(29, STEPS).numpy()).sum() / 32  # the unscored 3 count as 0
    assert few.metrics["smoothness"] == pytest.approx(authors, rel=1e-12) and few.details["unscored_paths"] == 3
    assert many.metrics["smoothness"] is None and "4 of 32 paths" in many.unavailable["smoothness"]
    assert many.metrics["mean_distance"] is not None  # the other column is still measured


def test_the_interpolation_scores_are_a_metric_that_accumulates_paths(data):
    """The two columns come from one metric object: fed the paths in two batches it gives the task's values."""
    first, second = pairs(data, BUDGET)
    paths = crossfade_paths(first, second)
    expected = score(paths, why_no_mse="not a model").metrics
    metric = InterpolationScores()
    metric.update(paths[:10])
    metric.update(paths[10:])
    values = metric.value()
    assert values["mean_distance"] == pytest.approx(expected["mean_distance"], rel=1e-13)
    assert values["smoothness"] == pytest.approx(expected["smoothness"], rel=1e-13)
    assert len(values["smoothness"].items) == len(paths)  # one item per path, for the interval
    assert float(metric.compute()["mean_distance"]) == values["mean_distance"]


def test_a_tiny_ae_run_gives_finite_metrics_and_a_picture(data, tmp_path):
    task = LatentLines(tmp_path, embedded=SMALL)
    model, losses = train_briefly("ae", data, BUDGET.steps, BUDGET.batch_size, latent_dim=16, hidden=8)
    assert losses[-1] < losses[0]
    result = task.evaluate(model, data, BUDGET, torch.Generator())
    assert all(np.isfinite(result.metrics[name]) for name in ("mean_distance", "mse"))
    assert result.metrics["smoothness"] is None or np.isfinite(result.metrics["smoothness"])
    assert result.details["paths"] == 32 and result.details["steps"] == STEPS
    task.save_samples(model, data, tmp_path / "samples.png", torch.Generator())
    assert (tmp_path / "samples.png").read_bytes()[:4] == b"\x89PNG"


def test_spec_and_data_agree_and_data_dir_is_refused(data, tmp_path):
    from aebench.errors import AebenchError

    task = LatentLines(tmp_path, embedded=SMALL)
    assert task.data_spec() == data.spec and task.requires == {"encode", "decode"}
    with pytest.raises(AebenchError, match="no published data"):
        task.load(tmp_path)
