"""The cdp-twin task: the simulated channel's physics and cache, the Indigo loader, evaluation and reference rows."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.ndimage import gaussian_filter
from scipy.stats import wasserstein_distance
from torch import nn

from aebench.errors import AebenchError, NonFiniteLoss
from aebench.metrics import MeanSquaredError, StructuralSimilarity, sharpness_per_image
from aebench.model import DataSpec, Model, ModelConfig
from aebench.registry import extractors, tasks
from aebench.task import Budget, TaskData
from aebench.tasks.cdp_twin import CdpAutoencoder, CdpTwin, symbol_hamming
from aebench.tasks.cdp_twin import data as cdp_data
from aebench.tasks.cdp_twin.channel import (
    ChannelConfig,
    print_and_scan,
    print_coverage,
    random_templates,
    scan,
    simulate,
)
from aebench.tasks.cdp_twin.data import IndigoConfig, load_indigo, load_simulated
from aebench.tasks.cdp_twin.texture import LocalTextureW1, local_std
from aebench.trained_features import TrainedExtractorConfig

SMALL = ChannelConfig(n_train=160, n_test=80, image_size=32, symbol_size=4)
TINY = TrainedExtractorConfig(objective="autoencoder", channels=(4, 8), feature_dim=16, epochs=2, batch_size=32)
# A channel without randomness in the dots or the paper. Some sensor noise stays: Otsu (skimage's convention) splits
# a cluster of values narrower than one of its 256 bins, which a noiseless print of identical dots would be.
CLEAN = dict(
    radius_jitter=0.0, offset_jitter=0.0, ellipticity=0.0, ink_jitter=0.0, ink_spread=0.0,
    paper_texture=0.0, optical_blur=0.3, read_noise=0.02, shot_noise=0.0,
)  # fmt: skip


def codes_of(config: ChannelConfig, densities: tuple[float, ...], print_index: int = 0) -> np.ndarray:
    _, codes = simulate(dataclasses.replace(config, densities=densities), "test", print_index)
    return codes.astype(np.float64) / (2**config.bits - 1)


# --- the simulated channel ----------------------------------------------------------------------------------------
def test_channel_is_deterministic_per_seed():
    symbols, codes = simulate(SMALL, "test")
    again_symbols, again_codes = simulate(SMALL, "test")
    assert np.array_equal(symbols, again_symbols) and np.array_equal(codes, again_codes)
    assert codes.shape == (80, 32, 32) and symbols.shape == (80, 10, 10)  # 8 symbols + a margin of 1 per side
    reprint_symbols, reprint = simulate(SMALL, "test", print_index=1)
    assert np.array_equal(reprint_symbols, symbols) and not np.array_equal(reprint, codes)  # same templates
    other_symbols, _ = simulate(dataclasses.replace(SMALL, seed=1), "test")
    assert not np.array_equal(other_symbols, symbols)
    assert not np.array_equal(simulate(SMALL, "train")[0][:80], symbols)  # train and test templates differ


def test_dot_gain_darkens_with_density():
    rng = np.random.default_rng(0)
    coverage = {}
    for gain in (0.0, 0.35):
        config = ChannelConfig(dot_gain=gain, **CLEAN)
        for density in (0.2, 0.5, 0.8):
            symbols = random_templates(64, dataclasses.replace(config, densities=(density,)), rng)
            ink = 1 - symbols[:, 1:-1, 1:-1].mean()  # the realised density of the printed crop
            covered = print_coverage(symbols, config, np.random.default_rng(1))[:, 4:-4, 4:-4].mean()
            coverage[gain, density] = covered - ink  # the dot gain: ink beyond the template's share
    for density in (0.2, 0.5, 0.8):
        assert coverage[0.35, density] > coverage[0.0, density] + 0.05
        assert coverage[0.35, density] > 0.05
    # Printed codes get darker as the template density grows (the default channel, all its noise included).
    means = [codes_of(SMALL, (d,)).mean() for d in (0.2, 0.4, 0.6, 0.8)]
    assert all(a > b + 0.05 for a, b in zip(means, means[1:]))


def test_sensor_noise_and_blur_do_what_they_say():
    rng = np.random.default_rng(0)
    reflectance = gaussian_filter(rng.uniform(0.1, 0.9, (20, 64, 64)), (0, 2, 2)).astype(np.float32)
    for read, shot in ((0.01, 0.0), (0.05, 0.0), (0.01, 0.08)):
        config = dataclasses.replace(SMALL, read_noise=read, shot_noise=shot, optical_blur=0.0)
        residual = scan(reflectance, config, np.random.default_rng(1)) / 65535 - reflectance
        # Read noise plus shot noise whose variance grows with the signal, as stated (clipping is negligible here).
        assert residual.var() == pytest.approx(read**2 + shot**2 * reflectance.mean(), rel=0.03)

    def sharpness(**changes):
        config = dataclasses.replace(SMALL, n_test=40, read_noise=0.0, shot_noise=0.0, **changes)
        return float(sharpness_per_image(torch.from_numpy(codes_of(config, (0.5,)))).mean())

    assert sharpness(optical_blur=2.0) < 0.5 * sharpness(optical_blur=0.5)
    assert sharpness(ink_spread=2.0) < 0.5 * sharpness(ink_spread=0.3)


def test_quantisation():
    codes = codes_of(dataclasses.replace(SMALL, n_test=10, bits=4), (0.5,))
    assert len(np.unique(codes)) <= 16 and np.allclose(codes * 15, np.round(codes * 15))


def test_otsu_of_a_clean_print_recovers_the_template():
    config = dataclasses.replace(SMALL, dot_gain=0.0, **CLEAN)
    symbols, codes = simulate(config, "test")
    t = torch.from_numpy(np.kron(symbols[:, 1:-1, 1:-1], np.ones((4, 4)))).unsqueeze(1).float()
    clean = symbol_hamming(torch.from_numpy(codes.astype(np.float32)).unsqueeze(1), t, 4)
    _, noisy_codes = simulate(SMALL, "test")
    noisy = symbol_hamming(torch.from_numpy(noisy_codes.astype(np.float32)).unsqueeze(1), t, 4)
    assert clean < 0.02 and noisy > 2 * clean + 0.02  # same templates: the default channel's noise makes errors


def test_symbol_hamming_counts_symbols():
    t = torch.from_numpy(np.kron(np.random.default_rng(0).integers(0, 2, (3, 8, 8)), np.ones((4, 4)))).float()
    estimate = 0.2 + 0.6 * t.clone()
    estimate[0, 0:4, 0:4] = 1.0 - t[0, 0, 0]  # one flipped symbol of 64 in the first image
    estimate[1, 5, 5] = 1.0 - t[1, 5, 5]  # one flipped pixel: the symbol's mean still decodes right
    value = symbol_hamming(estimate.unsqueeze(1), t.unsqueeze(1), 4)
    assert value == pytest.approx(1 / 64 / 3, abs=1e-12)


def test_simulated_data_are_cached(tmp_path, monkeypatch):
    first = load_simulated(SMALL, tmp_path)
    (path,) = tmp_path.iterdir()
    assert first.train["x"].shape == (160, 1, 32, 32) and first.test["z"].shape == (80, 1, 32, 32)
    assert first.spec == DataSpec((1, 32, 32), "image", (0.0, 1.0), None, (1, 32, 32))
    assert set(first.train["z"].unique().tolist()) == {0.0, 1.0} and 0 <= first.train["x"].min() <= 1
    monkeypatch.setattr(cdp_data, "simulate", lambda *a: pytest.fail("the cached data were generated again"))
    again = load_simulated(SMALL, tmp_path)
    for split in ("train", "test"):
        for key in ("x", "z"):
            assert torch.equal(getattr(first, split)[key], getattr(again, split)[key])
    assert again.info == first.info and first.info["channel"]["symbol_size"] == 4
    path.write_bytes(b"broken")  # an unreadable cache is regenerated
    monkeypatch.undo()
    with pytest.warns(UserWarning, match="cdp-twin: unusable cache file .*not an .npz archive"):
        assert torch.equal(load_simulated(SMALL, tmp_path).test["x"], first.test["x"])


# --- the Indigo loader ----------------------------------------------------------------------------------------
def write_indigo(root: Path, n: int = 4, symbols: int = 24, s: int = 3, scan_grid: bool = False) -> dict:
    """A tiny Indigo-style dataset: templates/000i.png and two printers' 16-bit codes, code = 60000·t + 1000."""
    rng = np.random.default_rng(0)
    templates = {}
    for folder in ("templates", "originals/HPI55/dens50", "originals/HPI76/dens50", "fakes/HPI55_EHPI55"):
        (root / folder).mkdir(parents=True)
    for i in range(1, n + 1):
        t = rng.integers(0, 2, (symbols, symbols)).astype(np.uint8)
        up = np.kron(t, np.ones((s, s), dtype=np.uint8))
        templates[f"{i:04d}"] = up
        Image.fromarray((up if scan_grid else t) * 255).save(root / "templates" / f"{i:04d}.png")
        code = (up.astype(np.uint16) * 60000 + 1000).astype(np.uint16)
        Image.fromarray(code).save(root / "originals/HPI55/dens50" / f"{i:04d}.png")
        Image.fromarray(code).save(root / "originals/HPI76/dens50" / f"{i:04d}.tiff")
        Image.fromarray(np.zeros_like(code)).save(root / "fakes/HPI55_EHPI55" / f"{i:04d}.png")  # skipped
    return templates


def assert_aligned(data: TaskData) -> None:
    for split in (data.train, data.test):
        assert torch.equal(split["x"], (split["z"] * 60000 + 1000) / 65535)  # fakes (zeros) would break this


def test_indigo_template_folder(tmp_path):
    write_indigo(tmp_path)
    data = load_indigo(tmp_path, IndigoConfig(crop_size=32, crops_per_code=3))
    assert_aligned(data)
    assert data.info["symbol_size"] == 3 and data.info["layout"] == "template folder"
    assert data.info["templates"] == {"train": 3, "test": 1} and data.info["codes"] == 8
    assert data.info["split"] == {"train": 18, "test": 6}  # 3 crops × 2 printers per template
    assert data.spec.shape == (1, 32, 32) and data.spec.pair_shape == (1, 32, 32)
    assert data.source == f"indigo: {tmp_path}"


def test_indigo_template_on_the_scan_grid_infers_symbols(tmp_path):
    write_indigo(tmp_path, scan_grid=True, s=4, symbols=12)
    data = load_indigo(tmp_path, IndigoConfig(crop_size=16, crops_per_code=2))
    assert data.info["symbol_size"] == 4
    assert_aligned(data)


def test_indigo_per_template_folders(tmp_path):
    rng = np.random.default_rng(1)
    for i in range(3):
        folder = tmp_path / f"cdp{i}"
        folder.mkdir()
        t = rng.integers(0, 2, (16, 16)).astype(np.uint8)
        Image.fromarray(t * 255).save(folder / "template.png")
        code = (np.kron(t, np.ones((2, 2), dtype=np.uint16)) * 60000 + 1000).astype(np.uint16)
        Image.fromarray(code).save(folder / "scan_1.tif")
    data = load_indigo(tmp_path, IndigoConfig(crop_size=16, crops_per_code=4))
    assert data.info["layout"] == "per-template folders" and data.info["symbol_size"] == 2
    assert len(data.train["x"]) + len(data.test["x"]) == 12
    assert_aligned(data)


@pytest.mark.filterwarnings("ignore:Corrupt EXIF")  # Pillow, reading the broken TIFF
def test_indigo_errors(tmp_path):
    with pytest.raises(AebenchError, match="does not exist"):
        load_indigo(tmp_path / "nowhere")
    write_indigo(tmp_path)
    config = IndigoConfig(crop_size=32)
    orphan = tmp_path / "originals/HPI55/dens50/0009.png"
    Image.fromarray(np.zeros((72, 72), np.uint16)).save(orphan)
    with pytest.raises(AebenchError, match="0009.png has no template"):
        load_indigo(tmp_path, config)
    orphan.unlink()
    broken = tmp_path / "originals/HPI76/dens50/0002.tiff"
    broken.write_bytes(b"II*\x00 not really a tiff")
    with pytest.raises(AebenchError, match="cannot read image .*0002.tiff"):
        load_indigo(tmp_path, config)
    Image.fromarray(np.zeros((70, 72), np.uint16)).save(broken)
    with pytest.raises(AebenchError, match="70×72 .* integer factor"):
        load_indigo(tmp_path, config)
    Image.fromarray(np.zeros((72, 72, 3), np.uint8)).save(broken)
    with pytest.raises(AebenchError, match="not a grayscale image"):
        load_indigo(tmp_path, config)
    Image.fromarray(np.zeros((72, 72), np.uint16)).save(broken)
    Image.fromarray(np.arange(576, dtype=np.uint8).reshape(24, 24)).save(tmp_path / "templates/0003.png")
    with pytest.raises(AebenchError, match="0003.png is not binary"):
        load_indigo(tmp_path, config)


# --- evaluation ---------------------------------------------------------------------------------------------------
class OneByOne(Model):
    """Two 1×1 convolutions: translate = a·x + b, translate_back = c·t + d; the identity when untrained."""

    name = "one-by-one"
    capabilities = {"translate", "translate_back"}

    def __init__(self, config: ModelConfig | None = None, data: DataSpec | None = None, nan: bool = False):
        super().__init__(config or ModelConfig(), data)
        self.to_template, self.to_print = nn.Conv2d(1, 1, 1), nn.Conv2d(1, 1, 1)
        for conv in (self.to_template, self.to_print):
            nn.init.ones_(conv.weight), nn.init.zeros_(conv.bias)
        self.nan = nan

    def configure_optimizers(self):
        return {"model": torch.optim.Adam(self.parameters(), lr=0.05)}

    def training_step(self, batch, optimizers):
        loss = (self.to_template(batch["x"]) - batch["z"]).pow(2).mean()
        loss = loss + (self.to_print(batch["z"]) - batch["x"]).pow(2).mean()
        optimizers["model"].zero_grad()
        loss.backward()
        optimizers["model"].step()
        return {"loss": loss.item()}

    def translate(self, x):
        return self.to_template(x) * (math.nan if self.nan else 1.0)

    def translate_back(self, z):
        return self.to_print(z)


@pytest.fixture(scope="module")
def small_task(tmp_path_factory) -> tuple[CdpTwin, TaskData]:
    task = CdpTwin(tmp_path_factory.mktemp("cache"), channel=SMALL, extractor_config=TINY)
    return task, task.load(None)


BUDGET = Budget(steps=1, batch_size=1, eval_samples=60)


def test_registered():
    assert tasks.get("cdp-twin") is CdpTwin and extractors.get("cdp-ae") is CdpAutoencoder
    assert CdpTwin.requires == {"translate", "translate_back"}
    assert [m.name for m in CdpTwin.metrics] == ["fid_twin", "fid_template", "hamming", "mse", "ssim", "texture_w1"]


def test_identity_model_equals_the_without_processing_row(small_task):
    task, data = small_task
    rows = task.references(data, BUDGET, torch.Generator().manual_seed(0))
    without, floor = rows["without processing (x vs t)"], rows["channel noise floor (second print)"]
    identity = task.evaluate(OneByOne(data=data.spec), data, BUDGET, torch.Generator().manual_seed(0))
    for name, value in identity.metrics.items():
        assert math.isfinite(value) and value == pytest.approx(without.metrics[name], rel=1e-6), name
    assert identity.extractors["fid_template"]["name"] == "cdp-ae"
    assert identity.extractors["fid_twin"]["n_generated"] == 60 == identity.extractors["fid_twin"]["n_real"]
    # A second print is closer to the prints than the templates are (the calibrated channel is noisy: MSE 0.086
    # against 0.176 on the full test split), and it has the prints' texture.
    assert floor.metrics["mse"] < without.metrics["mse"] / 1.5 and floor.metrics["ssim"] > without.metrics["ssim"]
    assert floor.metrics["fid_twin"] < without.metrics["fid_twin"]
    assert floor.metrics["texture_w1"] < without.metrics["texture_w1"] / 20
    assert floor.metrics["hamming"] is None and "no template estimate" in floor.unavailable["hamming"]
    assert floor.extractors["fid_template"]["hash"] == identity.extractors["fid_template"]["hash"]
    x, reprint = data.test["x"][:60], task.reprint(60)
    assert floor.metrics["mse"] == pytest.approx(float(((x.double() - reprint.double()) ** 2).mean()), rel=1e-9)


def test_trained_affine_model_beats_no_processing(small_task, tmp_path):
    task, data = small_task
    model = OneByOne(data=data.spec)
    optimizers = model.configure_optimizers()
    generator = torch.Generator().manual_seed(0)
    for _ in range(150):
        index = torch.randint(len(data.train["x"]), (32,), generator=generator)
        model.training_step({k: v[index] for k, v in data.train.items()}, optimizers)
    model.eval()
    trained = task.evaluate(model, data, BUDGET, torch.Generator().manual_seed(0)).metrics
    (without, _) = task.references(data, BUDGET, torch.Generator().manual_seed(0)).values()
    assert trained["mse"] < 0.8 * without.metrics["mse"]  # the best affine map of t beats t itself
    assert 0 <= trained["hamming"] < 0.5 and trained["ssim"] > without.metrics["ssim"]

    task.save_samples(model, data, tmp_path / "samples.png", torch.Generator().manual_seed(0))
    image = Image.open(tmp_path / "samples.png")
    assert image.size == (8 * 34 + 2, 4 * 34 + 2)  # 8 pairs; rows t, x, x̃, t̃; 2-pixel gaps
    grey = np.asarray(image.convert("L"), dtype=np.float64) / 255
    assert np.abs(grey[2:34, 2:34] - data.test["z"][0, 0].numpy()).max() < 0.01  # top left: the first template


def test_hand_constructed_without_processing_row(tmp_path):
    """t: random symbols; x = 0.2 + 0.6·t with 4 symbols flipped to 0.2 → known Hamming and MSE."""
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(0)
    t = np.kron(rng.integers(0, 2, (40, 8, 8)), np.ones((4, 4))).astype(np.float32)  # 40 images of 32 × 32
    x = 0.2 + 0.6 * t
    flips = [(i, r, c) for i in range(4) for r in range(8) for c in range(8) if t[i, 4 * r, 4 * c] == 1][::7][:4]
    for i, r, c in flips:
        x[i, 4 * r : 4 * r + 4, 4 * c : 4 * c + 4] = 0.2
    spec = DataSpec((1, 32, 32), "image", (0.0, 1.0), None, (1, 32, 32))

    def split(images: slice) -> dict:
        return {"x": torch.from_numpy(x[images]).unsqueeze(1), "z": torch.from_numpy(t[images]).unsqueeze(1)}

    data = TaskData(split(slice(20, 40)), split(slice(0, 20)), spec, "hand-made", {"symbol_size": 4})  # flips: test
    test_x, test_t = data.test["x"].numpy()[:, 0].astype(np.float64), data.test["z"].numpy()[:, 0].astype(np.float64)
    task = CdpTwin(tmp_path, extractor_config=TINY)
    (row,) = task.references(data, Budget(1, 1, 1000), torch.Generator()).values()
    assert row.metrics["hamming"] == pytest.approx(4 / (20 * 64), abs=1e-12)
    assert row.metrics["mse"] == pytest.approx(((test_x - test_t) ** 2).mean(), rel=1e-9)
    assert row.metrics["mse"] == pytest.approx((0.04 * (20 * 1024 - 64) + 0.64 * 64) / (20 * 1024), rel=1e-6)
    reference = np.mean([
        structural_similarity(a, b, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
        for a, b in zip(test_t, test_x)
    ])  # fmt: skip
    assert row.metrics["ssim"] == pytest.approx(reference, abs=1e-6)
    assert (
        row.metrics["fid_twin"] == pytest.approx(row.metrics["fid_template"], rel=1e-6) and row.metrics["fid_twin"] > 0
    )
    assert "channel noise floor (second print)" not in task.references(data, Budget(1, 1, 1000), torch.Generator())


def test_bad_model_outputs_fail_clearly(small_task):
    task, data = small_task
    with pytest.raises(NonFiniteLoss, match="one-by-one: translate\\(\\) returned NaN"):
        task.evaluate(OneByOne(data=data.spec, nan=True), data, BUDGET, torch.Generator())

    class Shrinking(OneByOne):
        def translate_back(self, z):
            return z[..., :-1]

    with pytest.raises(AebenchError, match="translate_back\\(\\) returned shape \\(60, 1, 32, 31\\)"):
        task.evaluate(Shrinking(data=data.spec), data, BUDGET, torch.Generator())


def test_embedded_default_is_what_the_readme_says():
    config = ChannelConfig()
    assert (config.n_train, config.n_test, config.image_size, config.symbol_size) == (4000, 1000, 64, 3)
    assert print_and_scan(
        random_templates(2, config, np.random.default_rng(0)), config, np.random.default_rng(1)
    ).shape == (2, 64, 64)  # noqa: E501


# --- the calibration and the texture score ---------------------------------------------------------------------------
def test_default_channel_matches_its_calibration():
    """The default channel's "without processing" row, as README.md states it (full test split: MSE 0.176,
    SSIM 0.362, Hamming 0.226 per symbol, fitted to the paper's 0.18, 0.48, 0.24), on 200 of its test crops."""
    config = dataclasses.replace(ChannelConfig(), n_test=200)
    symbols, codes = simulate(config, "test")
    x = torch.from_numpy(codes.astype(np.float32) / 65535).unsqueeze(1)
    t = torch.from_numpy(np.kron(symbols[:, 1:-1, 1:-1], np.ones((3, 3)))[:, :64, :64]).float().unsqueeze(1)
    assert symbol_hamming(x, t, 3) == pytest.approx(0.226, abs=0.012)
    assert MeanSquaredError().value_of(t, x) == pytest.approx(0.176, abs=0.01)
    assert StructuralSimilarity(data_range=1.0).value_of(t, x) == pytest.approx(0.362, abs=0.015)


def test_texture_w1_is_scipy_wasserstein_of_local_stds():
    rng = np.random.default_rng(0)
    real, fake = rng.random((3, 1, 16, 16)), gaussian_filter(rng.random((4, 1, 16, 16)), (0, 0, 1, 1))
    metric = LocalTextureW1()
    metric.update(torch.from_numpy(real), real=True)
    metric.update(torch.from_numpy(fake), real=False)
    stds = [local_std(torch.from_numpy(a)).flatten().numpy() for a in (real, fake)]
    assert metric.compute() == pytest.approx(wasserstein_distance(*stds), abs=2 * 0.5 / 2000)  # two bin widths
    window = real[0, 0, 2:5, 7:10]
    assert local_std(torch.from_numpy(real))[0, 0, 2, 7] == pytest.approx(window.std(), rel=1e-9)


def test_texture_w1_ranks_a_second_print_before_blurred_and_average_prints(small_task):
    """A second print has the prints' texture; a 3×3 box blur of it and the mean of four prints do not, although
    both are closer to the prints in MSE (they predict the average print)."""
    from aebench.tasks.cdp_twin.corruptions import prints

    task, data = small_task
    x, second = data.test["x"], prints(data, 80, 1)
    blurred = torch.nn.functional.avg_pool2d(torch.nn.functional.pad(second, (1,) * 4, mode="replicate"), 3, 1)
    average = torch.stack([prints(data, 80, i) for i in range(1, 5)]).mean(dim=0)

    def texture(twin):
        metric = LocalTextureW1()
        metric.update(x, real=True)
        metric.update(twin, real=False)
        return metric.compute()

    scores = {name: texture(twin) for name, twin in [("second", second), ("blurred", blurred), ("average", average)]}
    assert 5 * scores["second"] < scores["average"] < scores["blurred"]
    assert MeanSquaredError()(average, x) < MeanSquaredError()(second, x)  # MSE prefers the average print
