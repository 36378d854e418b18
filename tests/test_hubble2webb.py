"""The hubble2webb task: the GalSim sky (physics, alignment, cache), the pair loaders, stitching and evaluation."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from aebench.errors import AebenchError
from aebench.model import Model
from aebench.runner import metric_entries
from aebench.task import Budget, TaskData
from aebench.tasks.hubble2webb import Hubble2Webb, sky, translate_field
from aebench.tasks.hubble2webb import data as h2w_data
from aebench.trained_features import TrainedExtractorConfig

TINY_SKY = sky.SkyConfig(
    train_field=128, test_field=96, crop=32, n_train_crops=64, scene=sky.SceneConfig(galaxy_density=8000.0)
)
TINY_EXTRACTOR = TrainedExtractorConfig(objective="autoencoder", channels=(8, 16), feature_dim=16, epochs=1)
TINY_BUDGET = Budget(steps=2, batch_size=2, eval_samples=64)


@dataclass
class TinyConfig:
    lr: float = 1e-2


class TinyTranslator(Model):
    """A 1×1 convolution: the smallest model with the `translate` capability."""

    name = "tiny-translator"
    Config = TinyConfig
    capabilities = frozenset({"translate"})

    def __init__(self, config, data):
        super().__init__(config, data)
        self.conv = nn.Conv2d(1, 1, 1)

    def configure_optimizers(self):
        return {"all": torch.optim.Adam(self.parameters(), lr=self.config.lr)}

    def training_step(self, batch, optimizers):
        loss = (self.translate(batch["x"]) - batch["z"]).abs().mean()
        optimizers["all"].zero_grad()
        loss.backward()
        optimizers["all"].step()
        return {"l1": loss.item()}

    def translate(self, x):
        return self.conv(x)


def identity_model(data: TaskData) -> TinyTranslator:
    model = TinyTranslator(TinyConfig(), data.spec)
    with torch.no_grad():
        model.conv.weight.fill_(1.0)
        model.conv.bias.zero_()
    return model


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("h2w-cache")


@pytest.fixture(scope="module")
def task(cache) -> Hubble2Webb:
    return Hubble2Webb(cache, sky=TINY_SKY, extractor_config=TINY_EXTRACTOR)


@pytest.fixture(scope="module")
def data(task) -> TaskData:
    return task.load(None)


# --- physics of the embedded sky -----------------------------------------------------------------------------------
def star_images(position: tuple[float, float]) -> dict[str, np.ndarray]:
    """One noiseless point source seen by both telescopes, on the common grid (64² pixels of 0.03″)."""
    import galsim

    star = {"position": np.array(position), "extent": 1.5}
    star["webb"] = star["hubble"] = galsim.DeltaFunction(flux=1000.0)
    common = sky.WEBB.pixel_arcsec
    return {
        "webb": sky.render([star], sky.WEBB, 64, common).array,
        "hubble": sky.resample(sky.render([star], sky.HUBBLE, 64, common), 64, common),
    }


def fwhm_px(image: np.ndarray) -> float:
    """FWHM from the area above half maximum, as for a round profile: 2·sqrt(area/π)."""
    return 2 * math.sqrt((image >= image.max() / 2).sum() / math.pi)


def centroid(image: np.ndarray) -> np.ndarray:
    core = np.where(image > 0.05 * image.max(), image, 0.0)
    y, x = np.indices(image.shape)
    return np.array([(core * y).sum(), (core * x).sum()]) / core.sum()


def test_webb_psf_is_narrower_and_the_star_lands_on_the_same_pixel():
    images = star_images((0.97, 1.03))  # ″ from the corner: off the pixel centres of both grids
    webb, hubble = fwhm_px(images["webb"]), fwhm_px(images["hubble"])
    # λ/D: 0.048″ (Webb-like) vs 0.070″, the Hubble-like detector blur, then the pixels (0.03″ vs 0.06″).
    assert 1.3 < webb < 2.6 and hubble > 1.4 * webb
    assert np.abs(centroid(images["webb"]) - centroid(images["hubble"])).max() < 0.1  # registered to 0.1 pixel
    expected = np.array([1.03, 0.97]) / sky.WEBB.pixel_arcsec - 0.5  # (row, column) of the pixel centres
    assert np.abs(centroid(images["webb"]) - expected).max() < 0.1
    # Flux in nJy within the 1.9″ image: the Webb-like PSF encloses more of it (smaller wings, in λ/D units too).
    assert 1000.0 >= images["webb"].sum() > images["hubble"].sum() > 900.0


def test_the_psfs_have_their_instruments_published_fwhm():
    """ACS/WFC F814W: 0.09–0.10″; NIRCam F150W: ~0.050″ (with the pixel response, finely sampled)."""
    assert 0.09 <= sky.psf_fwhm_arcsec(sky.HUBBLE) <= 0.10
    assert 0.045 <= sky.psf_fwhm_arcsec(sky.WEBB) <= 0.055
    # Without the detector blur, diffraction and the 0.06″ pixel give 0.078″: sharper than the real camera.
    assert sky.psf_fwhm_arcsec(dataclasses.replace(sky.HUBBLE, blur_fwhm_arcsec=0.0)) < 0.08


def test_hubble_is_noisier_on_a_blank_sky():
    """Per 0.12″ block (where the Hubble noise, correlated by the resampling, is averaged), Hubble is noisier."""
    common = sky.WEBB.pixel_arcsec
    blank = {
        "webb": sky.observe(sky.render([], sky.WEBB, 256, common), sky.WEBB, 1).array,
        "hubble": sky.resample(sky.observe(sky.render([], sky.HUBBLE, 256, common), sky.HUBBLE, 2), 256, common),
    }
    block = {key: image.reshape(64, 4, 64, 4).mean(axis=(1, 3)).std() for key, image in blank.items()}
    assert block["hubble"] > 1.5 * block["webb"]
    assert blank["webb"].std() == pytest.approx(sky.WEBB.sky_sigma_njy, rel=0.05)


def test_generated_pair_is_aligned(data):
    """The cross-correlation of the Hubble and Webb test fields peaks within a pixel of zero shift. Its peak is
    broad (galaxies change shape and colour between the bands, the Hubble PSF is 3 pixels wide): the star test
    above checks the registration to 0.1 pixel."""
    x, z = (data.test[key][0, 0].double().numpy() for key in ("x", "z"))
    x, z = x - x.mean(), z - z.mean()
    correlation = np.fft.ifft2(np.fft.fft2(x) * np.conj(np.fft.fft2(z))).real
    peak = np.unravel_index(correlation.argmax(), correlation.shape)
    shift = [(p + n // 2) % n - n // 2 for p, n in zip(peak, correlation.shape)]  # wrapped to −n/2 … n/2
    assert max(abs(s) for s in shift) <= 1, shift


def test_noise_levels_and_bounds(data, task):
    """A second exposure doubles the noise variance of the noiseless image; Webb is the deeper image."""
    z, repeat, clean, x = (data.test[k] for k in ("z", "z_repeat", "z_clean", "x"))
    mse_clean, mse_repeat = ((clean - z) ** 2).mean(), ((repeat - z) ** 2).mean()
    assert 1.6 < float(mse_repeat / mse_clean) < 2.4
    assert ((x - z) ** 2).mean() > mse_repeat  # the Hubble image is farther from Webb than a second Webb exposure
    rows = task.references(data, TINY_BUDGET, torch.Generator().manual_seed(0))
    assert list(rows) == [
        "no translation (Hubble input)",
        "second Webb exposure (noise floor)",
        "noiseless Webb (pixel-metric bound)",
    ]
    none, floor, bound = rows.values()
    assert bound.metrics["mse"] < floor.metrics["mse"] < none.metrics["mse"]
    assert bound.metrics["psnr"] > none.metrics["psnr"] and floor.metrics["ssim"] > none.metrics["ssim"]
    assert floor.metrics["fid"] < none.metrics["fid"]
    assert bound.metrics["mse"] == pytest.approx(float(((clean - z) ** 2).mean() / 4), rel=1e-4)  # [0, 1] scale


# --- embedded data: shapes, determinism, cache ---------------------------------------------------------------------
def test_embedded_shapes(data):
    assert data.train["x"].shape == data.train["z"].shape == (64, 1, 32, 32)
    assert data.test["x"].shape == data.test["z"].shape == (1, 1, 96, 96)
    assert data.spec.shape == data.spec.pair_shape == (1, 32, 32) and data.spec.value_range == (-1.0, 1.0)
    for split in (data.train, data.test):
        for value in split.values():
            assert value.dtype == torch.float32 and -1.0 <= value.min() and value.max() <= 1.0
    assert data.info["generator"]["train_field"] == 128 and len(data.info["generator_hash"]) == 16


def test_cache_is_reused_and_generation_is_deterministic(data, cache, tmp_path, monkeypatch):
    def refuse(config):
        raise AssertionError("rendered again despite the cache")

    monkeypatch.setattr(h2w_data, "render_fields", refuse)
    again = Hubble2Webb(cache, sky=TINY_SKY).load(None)
    assert again.info["sha256"] == data.info["sha256"] and again.info["generator_hash"] == data.info["generator_hash"]
    assert torch.equal(again.train["z"], data.train["z"]) and torch.equal(again.test["x"], data.test["x"])
    monkeypatch.undo()
    fresh = Hubble2Webb(tmp_path, sky=TINY_SKY).load(None)  # another cache folder: rendered anew, the same bytes
    assert fresh.info["sha256"] == data.info["sha256"]
    other = dataclasses.replace(TINY_SKY, seed=1)
    assert h2w_data.config_hash(other) != h2w_data.config_hash(TINY_SKY)


def d4(image: np.ndarray) -> list[np.ndarray]:
    return [np.rot90(flipped, k) for flipped in (image, image[:, ::-1]) for k in range(4)]


def test_training_crops_are_aligned_copies_of_one_place(data, cache):
    """Each (x, z) training crop is the same flip/rotation of the same place in the Hubble and Webb fields."""
    fields, _ = h2w_data.cached_fields(TINY_SKY, cache)
    hubble, webb = fields["train_hubble"], fields["train_webb"]
    windows_x = np.lib.stride_tricks.sliding_window_view(hubble, (32, 32))  # (97, 97, 32, 32)
    windows_z = np.lib.stride_tricks.sliding_window_view(webb, (32, 32))
    transforms = set()
    for x, z in zip(data.train["x"][:12, 0].numpy(), data.train["z"][:12, 0].numpy()):
        found = [
            (k, place)
            for k, candidate in enumerate(d4(x))
            for place in zip(*np.nonzero((windows_x == candidate).all(axis=(2, 3))))
        ]
        assert len(found) == 1
        k, (top, left) = found[0]
        assert np.array_equal(d4(z)[k], windows_z[top, left])
        transforms.add(k)
    assert len(transforms) > 2  # the augmentation is really applied


# --- published pairs -----------------------------------------------------------------------------------------------
def write_png(path, array: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(array).save(path)


def write_fits(path, array: np.ndarray) -> None:
    from astropy.io import fits

    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(array)]).writeto(path)


def test_png_pairs_in_train_and_val(tmp_path):
    rng = np.random.default_rng(0)
    images = {}
    for split, names in (("train", ["_a", "_b"]), ("val", ["_c"])):
        (tmp_path / split).mkdir()
        for name in names:
            for telescope in ("hubble", "webb"):
                images[telescope + name] = rng.integers(0, 256, (40, 48), dtype=np.uint8)
                write_png(tmp_path / split / f"{telescope}{name}.png", images[telescope + name])
    data = h2w_data.load_pairs(tmp_path, crop=16, n_train_crops=10)
    assert data.train["x"].shape == data.train["z"].shape == (10, 1, 16, 16)
    assert data.test["x"].shape == (1, 1, 40, 48) and data.spec.shape == (1, 16, 16)
    assert np.allclose(data.test["x"][0, 0].numpy(), images["hubble_c"] / 255 * 2 - 1, atol=1e-6)
    assert np.allclose(data.test["z"][0, 0].numpy(), images["webb_c"] / 255 * 2 - 1, atol=1e-6)
    assert data.info["train_images"] == 2


def test_single_fits_pair_holds_out_the_right_quarter(tmp_path):
    rng = np.random.default_rng(1)
    sky_flux = rng.normal(0, 1, (64, 80)).astype(np.float32)
    sky_flux[10, 10] = np.nan  # blank pixels are common in mosaics
    write_fits(tmp_path / "hubble.fits", sky_flux)
    write_fits(tmp_path / "webb.fits", 2 * sky_flux)
    data = h2w_data.load_pairs(tmp_path, crop=16, n_train_crops=5)
    assert data.test["x"].shape == (1, 1, 64, 20) and data.train["x"].shape == (5, 1, 16, 16)
    assert torch.isfinite(data.test["x"]).all() and data.test["x"].min() >= -1 and data.test["x"].max() <= 1
    # Each FITS image is stretched by its own noise level: a pair differing by a factor reads the same.
    assert torch.allclose(data.test["x"], data.test["z"], atol=1e-5)


@pytest.mark.parametrize(
    "setup, message",
    [
        ("corrupt", "cannot read .*hubble_1.png"),
        ("unpaired", "no partner for .*webb_2.png"),
        ("shapes", "is 20×20 but webb_1.png is 20×24"),
        ("empty", "has no image pairs"),
        ("small", "smaller than 32²"),
    ],
)
def test_bad_pairs(tmp_path, setup, message):
    grey = np.zeros((20, 20), dtype=np.uint8)
    if setup != "empty":
        write_png(tmp_path / "hubble_1.png", grey)
        write_png(tmp_path / "webb_1.png", np.zeros((20, 24), np.uint8) if setup == "shapes" else grey)
    if setup == "corrupt":
        (tmp_path / "hubble_1.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    if setup == "unpaired":
        write_png(tmp_path / "webb_2.png", grey)
    with pytest.raises(AebenchError, match=message):
        h2w_data.load_pairs(tmp_path, crop=32 if setup == "small" else 8)


def test_missing_folder(tmp_path):
    with pytest.raises(AebenchError, match="does not exist"):
        h2w_data.load_pairs(tmp_path / "nowhere")


# --- protocol ------------------------------------------------------------------------------------------------------
def test_identity_model_stitches_back_the_input(data):
    model = identity_model(data)
    field = data.test["x"][0]  # (1, 96, 96): windows every 8 pixels, overlapping up to 16 times
    assert torch.equal(translate_field(model, field, 32, 8)[0], field)
    assert torch.equal(translate_field(model, field, 32, 24)[0], field)  # 96 − 32 is no multiple of 24: edge window


def test_stitching_averages_overlaps(data):
    class Ones(TinyTranslator):
        def translate(self, x):  # each window's output: how many windows have been translated so far
            self.calls = getattr(self, "calls", 0) + 1
            return torch.full_like(x, 0.0) + torch.arange(len(x)).view(-1, 1, 1, 1) % 2

    out = translate_field(Ones(TinyConfig(), data.spec), torch.zeros(1, 64, 64), 32, 32)
    # Windows at (0,0) (0,32) (32,0) (32,32), no overlap, outputs 0 1 0 1.
    assert out[0, 0, :32, :32].eq(0).all() and out[0, 0, :32, 32:].eq(1).all() and out[0, 0, 32:, 32:].eq(1).all()
    half = translate_field(Ones(TinyConfig(), data.spec), torch.zeros(1, 32, 48), 32, 16)
    assert half[0, 0, :, 16:32].eq(0.5).all() and half[0, 0, :, :16].eq(0).all()  # the overlap is averaged


def test_evaluate_tiny_model(task, data):
    model = identity_model(data)
    evaluation = task.evaluate(model, data, TINY_BUDGET, torch.Generator().manual_seed(0))
    reference = task.references(data, TINY_BUDGET, torch.Generator().manual_seed(0))["no translation (Hubble input)"]
    for name in ("mse", "ssim", "psnr", "fid", "kid"):  # the identity model is the "no translation" row
        assert math.isfinite(evaluation.metrics[name])
        assert evaluation.metrics[name] == pytest.approx(reference.metrics[name], rel=1e-6, abs=1e-9)
    assert evaluation.extractors["fid"]["name"] == "hubble2webb-ae"
    assert evaluation.extractors["fid"]["n_generated"] == 64 and "test_mse" in evaluation.extractors["fid"]["quality"]
    if evaluation.metrics["lpips"] is None:
        assert evaluation.unavailable["lpips"].startswith("unavailable: ")
    entries = metric_entries(task, evaluation)  # what the runner records
    assert set(entries) == {"mse", "ssim", "psnr", "lpips", "fid", "kid"}


def test_nan_model_fails_clearly(task, data):
    class Broken(TinyTranslator):
        def translate(self, x):
            return torch.full_like(x, float("nan"))

    with pytest.raises(Exception, match="NaN or infinite"):
        task.evaluate(Broken(TinyConfig(), data.spec), data, TINY_BUDGET, torch.Generator())


def test_save_samples(task, data, tmp_path):
    import matplotlib.image

    path = tmp_path / "samples" / "tiny.png"
    task.save_samples(identity_model(data), data, path, torch.Generator().manual_seed(0))
    image = matplotlib.image.imread(path)
    assert image.shape[:2] == (3 * 34, 8 * 34)  # input, output, target rows of 8 crops, 2-pixel margins
    assert np.array_equal(image[:34], image[34:68])  # the identity's output row equals its input row
    assert not np.array_equal(image[:34], image[68:])
