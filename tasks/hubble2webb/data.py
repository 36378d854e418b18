"""Hubble/Webb image pairs: the embedded GalSim sky (cached by a hash of its config) or registered published pairs.

Both give `TaskData` with single-channel float32 images in [-1, 1]:
- train: {"x": Hubble crops, "z": Webb crops}, (N, 1, c, c), random aligned crops with a random flip/90° rotation;
- test: {"x": Hubble field(s), "z": Webb field(s)}, (T, 1, H, W), translated whole by a sliding window; the
  embedded sky adds "z_repeat" (a second Webb exposure: same scene, independent noise) and "z_clean" (noiseless).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import torch

from aebench import cache
from aebench.errors import AebenchError
from aebench.hashing import content_hash
from aebench.model import DataSpec
from aebench.task import TaskData

from . import sky
from .sky import SkyConfig

# Bump when the rendering changes: cached fields of an older version are not reused. 2: the Hubble-like detector
# blur (PSF FWHM 0.078″ → 0.095″).
GENERATOR_VERSION = "2"
# asinh stretch of the embedded fields, fluxes in nJy per 0.03″ pixel: v = 2·asinh((I − FLOOR)/SOFT)/asinh((CEIL −
# FLOOR)/SOFT) − 1, clipped to [-1, 1]. FLOOR ≈ −3σ of the Webb-like sky, SOFT ≈ 1.7σ, CEIL saturates star cores.
STRETCH_FLOOR, STRETCH_SOFT, STRETCH_CEIL = -1.0, 0.5, 300.0
FIELDS = ("hubble", "webb", "webb_repeat", "webb_clean")

REAL_CROP = 256  # the paper's crops
REAL_TRAIN_CROPS = 1024  # fixed crops kept in memory (1 GiB at 256²); the paper draws 20,000 fresh ones per epoch
REAL_HOLDOUT = 0.25  # with a single pair and no val/ folder: the right-most quarter of its columns is the test field
SUFFIXES = (".png", ".fits", ".fit", ".fits.gz", ".fit.gz")


def asinh_stretch(flux: np.ndarray, floor: float, soft: float, ceil: float) -> np.ndarray:
    """Flux → [-1, 1]: an asinh stretch, linear within ~`soft` of `floor`, logarithmic above; float32."""
    scaled = np.arcsinh((np.asarray(flux, dtype=np.float64) - floor) / soft) / np.arcsinh((ceil - floor) / soft)
    return (2 * np.clip(scaled, 0.0, 1.0) - 1).astype(np.float32)


def config_hash(config: SkyConfig) -> str:
    return cache.key_of({"version": GENERATOR_VERSION, "config": dataclasses.asdict(config)})


def render_fields(config: SkyConfig) -> dict[str, np.ndarray]:
    """Render the training field (seed) and the held-out test field (seed + 1000), stretched to [-1, 1]."""
    arrays = {}
    fields_of = (("train", config.train_field, config.seed), ("test", config.test_field, config.seed + 1000))
    for split, size, seed in fields_of:
        fields = sky.field_pair(config, size, seed)
        for key in FIELDS if split == "test" else FIELDS[:2]:
            arrays[f"{split}_{key}"] = asinh_stretch(fields[key], STRETCH_FLOOR, STRETCH_SOFT, STRETCH_CEIL)
    return arrays


def cached_fields(config: SkyConfig, cache_dir: Path) -> tuple[dict[str, np.ndarray], dict]:
    """The rendered fields from `cache_dir/data`, rendering (and caching) them only when absent."""
    key = config_hash(config)

    def render() -> tuple[dict[str, np.ndarray], dict]:
        started = time.perf_counter()
        arrays = render_fields(config)
        return arrays, {"hash": key, "render_seconds": round(time.perf_counter() - started, 1),
                        "galsim": _galsim_version()}  # fmt: skip

    found = cache.cached(cache.cache_path(cache_dir, "hubble2webb", key), key, render, what="hubble2webb")
    return found.arrays, found.meta


def _galsim_version() -> str:
    import galsim

    return galsim.__version__


def random_crops(fields: list[tuple[np.ndarray, np.ndarray]], crop: int, n: int, seed: int) -> tuple[np.ndarray, ...]:
    """n aligned (x, z) crops from random fields (chosen by area) at random places, each with one of the eight
    flips/90° rotations applied to both; (n, 1, crop, crop) float32 each."""
    rng = np.random.default_rng(seed)
    areas = np.array([(x.shape[0] - crop + 1) * (x.shape[1] - crop + 1) for x, _ in fields], dtype=np.float64)
    which = rng.choice(len(fields), size=n, p=areas / areas.sum())
    out_x, out_z = np.empty((n, 1, crop, crop), np.float32), np.empty((n, 1, crop, crop), np.float32)
    for i, f in enumerate(which):
        x, z = fields[f]
        top, left = rng.integers(0, x.shape[0] - crop + 1), rng.integers(0, x.shape[1] - crop + 1)
        turns, flip = int(rng.integers(4)), bool(rng.integers(2))
        for out, image in ((out_x, x), (out_z, z)):
            patch = np.rot90(image[top : top + crop, left : left + crop], turns)
            out[i, 0] = patch[:, ::-1] if flip else patch
    return out_x, out_z


def load_embedded(config: SkyConfig, cache_dir: Path) -> TaskData:
    """The GalSim sky: training crops of one field, a separate held-out field for the sliding-window evaluation."""
    arrays, meta = cached_fields(config, cache_dir)
    train_x, train_z = random_crops(
        [(arrays["train_hubble"], arrays["train_webb"])], config.crop, config.n_train_crops, config.seed + 1
    )
    test = {
        name: torch.from_numpy(arrays[f"test_{key}"]).reshape(1, 1, config.test_field, config.test_field)
        for name, key in (("x", "hubble"), ("z", "webb"), ("z_repeat", "webb_repeat"), ("z_clean", "webb_clean"))
    }
    side = config.test_field * config.webb.pixel_arcsec
    return _task_data(
        {"x": torch.from_numpy(train_x), "z": torch.from_numpy(train_z)},
        test,
        config.crop,
        source=f"embedded: GalSim sky, {config.train_field}² training field, {config.test_field}² test field",
        info={
            "generator": {**dataclasses.asdict(config), "version": GENERATOR_VERSION},
            "generator_hash": meta["hash"][:16],
            "render_seconds": meta["render_seconds"],
            "galsim": meta["galsim"],
            "scaling": f"asinh stretch of nJy/pixel: floor {STRETCH_FLOOR}, softening {STRETCH_SOFT}, "
            f"ceiling {STRETCH_CEIL}, to [-1, 1]",
            "test_field_arcsec": round(side, 2),
        },
    )


# --- published pairs -----------------------------------------------------------------------------------------------
def load_pairs(data_dir: Path, crop: int = REAL_CROP, n_train_crops: int = REAL_TRAIN_CROPS, seed: int = 0) -> TaskData:
    """Registered pairs `hubble*.{png,fits}` / `webb*.{png,fits}` (matched by the rest of the name).

    With `train/` and `val/` (or `test/`) folders, those are the splits; with pairs directly in `data_dir`, the last
    pair by name is the test image, or, if there is one pair, its right-most quarter of columns.
    """
    data_dir = Path(data_dir).expanduser()
    if not data_dir.is_dir():
        raise AebenchError(f"hubble2webb: data directory {data_dir} does not exist")
    held_out = next((data_dir / name for name in ("val", "test") if (data_dir / name).is_dir()), None)
    if (data_dir / "train").is_dir():
        if held_out is None:
            raise AebenchError(f"hubble2webb: {data_dir} has train/ but no val/ or test/ folder")
        train, test = _read_pairs(data_dir / "train"), _read_pairs(held_out)
        split = f"train/ folder; test images from {held_out.name}/"
    else:
        pairs = _read_pairs(data_dir)
        if len(pairs) > 1:
            train, test = pairs[:-1], pairs[-1:]
            split = "all pairs but the last by name; the last is the test image"
        else:
            x, z = pairs[0]
            cut = round(x.shape[1] * (1 - REAL_HOLDOUT))
            train, test = [(x[:, :cut], z[:, :cut])], [(x[:, cut:], z[:, cut:])]
            split = f"one pair: columns [0, {cut}) train, [{cut}, {x.shape[1]}) test"
    for x, _ in train + test:
        if min(x.shape) < crop:
            raise AebenchError(f"hubble2webb: an image region of {x.shape[0]}×{x.shape[1]} is smaller than {crop}²")
    train_x, train_z = random_crops(train, crop, n_train_crops, seed)
    height, width = min(x.shape[0] for x, _ in test), min(x.shape[1] for x, _ in test)  # centre-cropped to match
    test_x = np.stack([_centre(x, height, width) for x, _ in test])[:, None]
    test_z = np.stack([_centre(z, height, width) for _, z in test])[:, None]
    return _task_data(
        {"x": torch.from_numpy(train_x), "z": torch.from_numpy(train_z)},
        {"x": torch.from_numpy(test_x), "z": torch.from_numpy(test_z)},
        crop,
        source=f"hubble-webb pairs: {data_dir}",
        info={
            "split_method": split,
            "train_images": len(train),
            "crop_seed": seed,
            "scaling": "PNG: pixel/max·2 − 1 (RGB averaged to grey); FITS: per image asinh stretch, floor median − 3σ, "
            "softening 2σ (σ from the MAD), ceiling the 99.9th percentile",
        },
    )


def _centre(image: np.ndarray, height: int, width: int) -> np.ndarray:
    top, left = (image.shape[0] - height) // 2, (image.shape[1] - width) // 2
    return image[top : top + height, left : left + width]


def _read_pairs(folder: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (Hubble, Webb) arrays of a folder, in [-1, 1], paired by the name after the prefix."""
    found: dict[str, dict[str, Path]] = {"hubble": {}, "webb": {}}
    for path in sorted(folder.iterdir()):
        name = path.name.lower()
        suffix = next((s for s in SUFFIXES if name.endswith(s)), None)
        prefix = next((p for p in found if name.startswith(p)), None)
        if path.is_file() and suffix and prefix:
            found[prefix][name[len(prefix) : -len(suffix)]] = path
    if not found["hubble"] and not found["webb"]:
        raise AebenchError(f"hubble2webb: {folder} has no image pairs; expected hubble*.png/webb*.png (or .fits) files")
    unpaired = sorted(set(found["hubble"]) ^ set(found["webb"]))
    if unpaired:
        lonely = [str(found["hubble"].get(k) or found["webb"].get(k)) for k in unpaired]
        raise AebenchError(f"hubble2webb: no partner for {', '.join(lonely)} (pairs share the name after hubble/webb)")
    pairs = []
    for key in sorted(found["hubble"]):
        x, z = read_image(found["hubble"][key]), read_image(found["webb"][key])
        if x.shape != z.shape:
            raise AebenchError(
                f"hubble2webb: {found['hubble'][key].name} is {x.shape[0]}×{x.shape[1]} but "
                f"{found['webb'][key].name} is {z.shape[0]}×{z.shape[1]}: the pair must be registered pixel to pixel"
            )
        pairs.append((x, z))
    return pairs


def read_image(path: Path) -> np.ndarray:
    """One grey image in [-1, 1], (H, W) float32, from a PNG (8 or 16 bit, grey/RGB/RGBA) or a FITS file."""
    name = path.name.lower()
    try:
        if name.endswith(".png"):
            image = _read_png(path)
        else:
            image = _read_fits(path)
    except AebenchError:
        raise
    except Exception as error:  # PIL and astropy raise many kinds on corrupt files
        raise AebenchError(f"hubble2webb: cannot read {path}: {type(error).__name__}: {error}") from None
    if image.ndim != 2 or min(image.shape) < 2:
        raise AebenchError(f"hubble2webb: {path} holds an array of shape {image.shape}, expected a 2-D image")
    return image


def _read_png(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as opened:
        opened.load()
        array = np.asarray(opened)
        bits = 16 if opened.mode.startswith("I") else 8
    if array.ndim == 3:
        array = array[..., :3].mean(axis=2)  # RGB(A) → grey; alpha dropped
    return (2 * array.astype(np.float64) / (2**bits - 1) - 1).astype(np.float32)


def _read_fits(path: Path) -> np.ndarray:
    from astropy.io import fits

    with fits.open(path, memmap=False) as hdus:
        data = next((hdu.data for hdu in hdus if hdu.data is not None and np.squeeze(hdu.data).ndim == 2), None)
        if data is None:
            raise AebenchError(f"hubble2webb: {path} has no 2-D image HDU")
        flux = np.squeeze(np.asarray(data, dtype=np.float64))
    finite = np.isfinite(flux)
    if finite.sum() < 2:
        raise AebenchError(f"hubble2webb: {path} has no finite pixels")
    values = flux[finite]
    median = np.median(values)
    sigma = 1.4826 * np.median(np.abs(values - median)) or np.std(values) or 1.0
    floor, ceil = median - 3 * sigma, np.percentile(values, 99.9)
    flux = np.where(finite, flux, floor)  # blank (NaN) pixels read as the floor
    return asinh_stretch(flux, floor, 2 * sigma, max(ceil, floor + 10 * sigma))


# --- both ----------------------------------------------------------------------------------------------------------
def _task_data(train: dict, test: dict, crop: int, *, source: str, info: dict) -> TaskData:
    shape = (1, crop, crop)
    spec = DataSpec(shape=shape, kind="image", value_range=(-1.0, 1.0), pair_shape=shape)
    return TaskData(
        train=train,
        test=test,
        spec=spec,
        source=source,
        info={
            "split": {"train_crops": len(train["x"]), "test_fields": len(test["x"])},
            "crop": crop,
            "test_field_shape": list(test["x"].shape[2:]),
            **info,
            "sha256": {"train": content_hash(train)[:12], "test": content_hash(test)[:12]},
        },
    )
