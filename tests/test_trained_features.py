"""The offline trained feature spaces: deterministic, cached by content, honest about their quality."""

from __future__ import annotations

import dataclasses
import importlib.util
import shutil
from pathlib import Path

import pytest
import torch

from aebench.errors import AebenchError
from aebench.trained_features import FeatureCNN, TrainedExtractorConfig, TrainedImageExtractor, weights_digest

AE = TrainedExtractorConfig(objective="autoencoder", channels=(8, 16), feature_dim=16, epochs=3, batch_size=32)
CLASSIFIER = TrainedExtractorConfig(channels=(8, 16), feature_dim=16, epochs=3, batch_size=32)


class Space(TrainedImageExtractor):
    name = "test-space"


def blobs(n: int, seed: int, size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """RGB images of one Gaussian blob, left half (class 0) or right half (class 1) of the image."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=generator)
    centre_x = size * (0.25 + 0.5 * labels.float()) + torch.randn(n, generator=generator)
    centre_y = size * 0.5 + torch.randn(n, generator=generator)
    grid = torch.arange(size).float()
    images = torch.exp(
        -((grid[None, None, :] - centre_x[:, None, None]) ** 2 + (grid[None, :, None] - centre_y[:, None, None]) ** 2)
        / 8.0
    )  # (N, H, W)
    return images[:, None].expand(-1, 3, -1, -1).contiguous(), labels


def test_classifier_learns_and_reports_its_accuracy(tmp_path):
    (x, y), (x_test, y_test) = blobs(400, 0), blobs(200, 1)
    extractor = Space.for_images(x, x_test, tmp_path, CLASSIFIER, y, y_test)
    accuracy = float((extractor.predict(x_test) == y_test).float().mean())
    assert accuracy > 0.95 and extractor.describe()["quality"] == {"test_accuracy": round(accuracy, 4)}
    assert extractor.features(x_test).shape == (200, 16) and (extractor.features(x_test) >= 0).all()  # after ReLU


def test_autoencoder_features_are_cached_and_deterministic(tmp_path):
    (x, _), (x_test, _) = blobs(300, 0), blobs(100, 1)
    first = Space.for_images(x, x_test, tmp_path, AE)
    second = Space.for_images(x, x_test, tmp_path, AE)
    assert not first.from_cache and second.from_cache
    assert torch.equal(first.features(x_test), second.features(x_test))
    assert second.describe() == first.describe() and first.describe()["objective"] == "autoencoder"
    scaled = first.features(x) / first.feature_rms  # the scale KID divides by: order-one features on training data
    assert float(scaled.pow(2).mean().sqrt()) == pytest.approx(1.0, rel=1e-5)
    # The auto-encoder learned something: it reconstructs better than the mean image does.
    baseline = float(((x_test - x.mean(0)) ** 2).mean())
    assert first.quality["test_mse"] < 0.8 * baseline
    with pytest.raises(AebenchError, match="does not predict"):
        first.predict(x_test)

    (path,) = (tmp_path / "extractors").iterdir()  # a retrain from scratch gives the very same weights
    path.unlink()
    again = Space.for_images(x, x_test, tmp_path, AE)
    assert not again.from_cache and torch.equal(first.features(x_test), again.features(x_test))


def test_a_new_test_split_is_measured_again(tmp_path):
    (x, _), (x_test, _), (other, _) = blobs(200, 0), blobs(100, 1), blobs(100, 2)
    first = Space.for_images(x, x_test, tmp_path, AE)
    cached = Space.for_images(x, other, tmp_path, AE)
    assert cached.from_cache and cached.quality != first.quality


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 25, 25), (1, 64, 32)])
def test_the_autoencoder_gives_back_images_of_any_size(shape):
    network = FeatureCNN(shape, AE, None)
    assert network(torch.zeros(2, *shape)).shape == (2, *shape)


def test_bad_input_is_a_clear_error(tmp_path):
    x, y = blobs(20, 0)
    with pytest.raises(AebenchError, match="objective must be one of"):
        TrainedExtractorConfig(objective="vae")
    with pytest.raises(AebenchError, match="needs train and test labels"):
        Space.for_images(x, x, tmp_path, CLASSIFIER)
    with pytest.raises(AebenchError, match=r"must be \(N, C, H, W\)"):
        Space.for_images(x[:, 0], x[:, 0], tmp_path, AE)
    with pytest.raises(AebenchError, match="too small"):
        Space.for_images(x[:, :, :2, :2], x[:, :, :2, :2], tmp_path, TrainedExtractorConfig("autoencoder", (4, 4, 4)))


def test_the_weights_digest_tells_two_trainings_apart(tmp_path):
    (x, _), (x_test, _) = blobs(200, 0), blobs(100, 1)
    first = Space.for_images(x, x_test, tmp_path / "a", AE)
    same = Space.for_images(x, x_test, tmp_path / "b", AE)  # trained again from scratch, same config and data
    assert not same.from_cache and same.describe()["weights"] == first.describe()["weights"] == first.weights[:12]
    # A single ulp in a single weight is another feature space, though config and data (`hash`) are the same.
    with torch.no_grad():
        weight = same.network.embed[-1].weight
        weight[0, 0] = torch.nextafter(weight[0, 0], torch.tensor(float("inf")))
    assert weights_digest(same.network) != first.weights
    other = Space.for_images(x, x_test, tmp_path / "c", dataclasses.replace(AE, seed=1))
    assert other.describe()["weights"] != first.describe()["weights"]


def test_shipped_weights_are_read_before_the_cache_and_a_damaged_file_is_retrained(tmp_path):
    (x, _), (x_test, _) = blobs(200, 0), blobs(100, 1)
    trained = Space.for_images(x, x_test, tmp_path / "here", AE)
    (path,) = (tmp_path / "here" / "extractors").iterdir()

    class Shipped(Space):
        shipped_dir = tmp_path / "shipped"

    Shipped.shipped_dir.mkdir()
    shutil.copy(path, Shipped.shipped_dir / path.name)
    torch.save({**torch.load(path), "feature_rms": 9.0}, path)  # the machine's own cache: the shipped file wins
    shipped = Shipped.for_images(x, x_test, tmp_path / "here", AE)
    assert shipped.shipped and shipped.from_cache and shipped.weights == trained.weights
    assert shipped.feature_rms == trained.feature_rms
    fresh = Shipped.for_images(x, x_test, tmp_path / "elsewhere", AE)  # a new machine: nothing trains
    assert fresh.shipped and not (tmp_path / "elsewhere" / "extractors").exists()

    (Shipped.shipped_dir / path.name).write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning, match="ignoring unusable cache file"):
        fallback = Shipped.for_images(x, x_test, tmp_path / "elsewhere", AE)
    assert not fallback.shipped and not fallback.from_cache and fallback.weights == trained.weights


def test_shipping_keeps_one_file_per_test_split(tmp_path):
    """scripts/ship_extractors.py: weights for other data (a real-data table beside the embedded default) stay;
    another config on the same data replaces its file; the same weights again change nothing."""
    spec = importlib.util.spec_from_file_location("ship", Path(__file__).parents[1] / "scripts" / "ship_extractors.py")
    ship = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ship)
    default, real = (blobs(200, 0), blobs(100, 1)), (blobs(300, 2), blobs(100, 3))
    files = {}
    for label, ((x, _), (x_test, _)), config in [
        ("default", default, AE),
        ("real", real, AE),
        ("default, other config", default, dataclasses.replace(AE, feature_dim=8)),
    ]:
        Space.for_images(x, x_test, tmp_path / label, config)
        (files[label],) = (tmp_path / label / "extractors").iterdir()
    shipped = tmp_path / "shipped"

    assert ship.install(files["default"], shipped, Space.name) and ship.install(files["real"], shipped, Space.name)
    assert not ship.install(files["default"], shipped, Space.name)  # the same weights: no rewrite
    assert sorted(p.name for p in shipped.iterdir()) == sorted([files["default"].name, files["real"].name])
    (shipped / files["real"].name).write_bytes(b"damaged")  # replaced, not an error
    assert ship.install(files["real"], shipped, Space.name)
    assert ship.install(files["default, other config"], shipped, Space.name)
    assert sorted(p.name for p in shipped.iterdir()) == sorted(
        [files["default, other config"].name, files["real"].name]
    )

    class Shipped(Space):
        shipped_dir = shipped

    (x, _), (x_test, _) = real
    assert Shipped.for_images(x, x_test, tmp_path / "new machine", AE).shipped
