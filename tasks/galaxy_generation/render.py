"""The embedded galaxies: labelled RGB images of barred spirals, ellipticals and spirals rendered with GalSim.

Lengths are in units of the image width (so a config renders the same sky at any pixel size); images are surface
brightness (flux per unit area) in three bands g, r, z, stored as RGB = (z, r, g) like the DECaLS colour images.

- Elliptical: one de Vaucouleurs-like Sérsic profile (n 3–5), axis ratio 0.55–1, red.
- Spiral: a red Sérsic bulge (n 1.5–3) + a smooth exponential disk + blue spiral arms. The arms are a
  `galsim.InterpolatedImage` of a numpy face-on profile: the exponential disk times a logarithmic spiral pattern
  max(0, cos(m (θ − φ0 − ln(r / r_in) / tan(pitch))))^k, faded out inside r_in.
- Barred spiral: a spiral whose arms start at the ends of a bar, an elongated red Sérsic (n 0.5–1, axis ratio
  0.2–0.35) aligned with the arms' starting angle.

Disk, arms and bar are built face-on, then inclined (the minor axis squeezed by cos i ∈ [0.35, 1], edge-on
excluded as Galaxy10 drops edge-on disks from these classes) and rotated to a random position angle. Each component
is drawn point-sampled on a 2× finer grid (GalSim `method="no_pixel"`), the bands are summed with per-component
colours (g, r, z flux fractions), convolved with a GalSim Moffat PSF (β 3, FWHM 0.025–0.04 widths) on that grid by
FFT, binned 2×2 (the pixel response), and Gaussian sky noise is added. Finally an arcsinh stretch with fixed
constants maps surface brightness to [0, 1] (clipped), stored as uint8; the task maps it to [-1, 1].
Rendering by component and convolving once per band is ~5× faster than GalSim's per-object FFT convolution.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy.signal import fftconvolve

from aebench import cache
from aebench.errors import AebenchError

if TYPE_CHECKING:
    import galsim

# Bump when the rendering changes: cached images of an older version are then not reused.
RENDER_VERSION = "1"
CLASSES = ("barred_spiral", "elliptical", "spiral")  # label 0, 1, 2
OVERSAMPLE = 2

# Flux fractions in (g, r, z): bulges, bars and ellipticals are old and red, star-forming arms blue.
COLOURS = {
    "elliptical": (0.17, 0.34, 0.49),
    "bulge": (0.18, 0.34, 0.48),
    "bar": (0.21, 0.35, 0.44),
    "disk": (0.29, 0.35, 0.36),
    "arms": (0.46, 0.33, 0.21),
}


@dataclass(frozen=True)
class RenderConfig:
    size: int = 64  # pixels per side
    train_per_class: int = 1000
    test_per_class: int = 300
    seed: int = 0
    sky_noise: float = 1.0  # Gaussian σ per band and pixel, in surface-brightness units
    stretch_soft: float = 3.0  # arcsinh softening: linear below, logarithmic above
    stretch_max: float = 300.0  # surface brightness that maps to 1

    def __post_init__(self) -> None:
        if self.size < 16 or self.train_per_class < 1 or self.test_per_class < 1:
            raise AebenchError(f"galaxy render config: need size ≥ 16 and ≥ 1 galaxy per class and split, got {self}")

    def key(self) -> str:
        """sha256 of the config and the render version: equal keys mean equal images."""
        return cache.key_of({"version": RENDER_VERSION, "config": dataclasses.asdict(self)})


def render_split(config: RenderConfig, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3, H, W) uint8 images and (N,) int64 labels; galaxy i depends only on (seed, split, i)."""
    per_class = config.train_per_class if split == "train" else config.test_per_class
    split_code = {"train": 0, "test": 1}[split]
    labels = np.repeat(np.arange(len(CLASSES)), per_class)
    labels = np.random.default_rng([config.seed, split_code, 10**6]).permutation(labels)
    images = np.empty((len(labels), 3, config.size, config.size), dtype=np.uint8)
    for i, label in enumerate(labels):
        rng = np.random.default_rng([config.seed, split_code, i])
        images[i] = to_uint8(stretch(render_galaxy(int(label), rng, config), config))
    return images, labels.astype(np.int64)


def render_galaxy(label: int, rng: np.random.Generator, config: RenderConfig, noise: bool = True) -> np.ndarray:
    """One galaxy of class `label` as (3, H, W) surface brightness in RGB = (z, r, g)."""
    fine = config.size * OVERSAMPLE
    bands = np.zeros((3, fine, fine))  # (g, r, z)
    for profile, flux, colour in components(CLASSES[label], rng):
        image = profile.withFlux(flux).drawImage(nx=fine, ny=fine, scale=1.0 / fine, method="no_pixel").array
        bands += np.multiply.outer(np.asarray(colour), image)
    bands *= fine**2  # flux per fine pixel → surface brightness
    psf = _psf_kernel(rng.uniform(0.025, 0.04), fine)
    bands = np.stack([fftconvolve(band, psf, mode="same") for band in bands])
    bands = bands.reshape(3, config.size, OVERSAMPLE, config.size, OVERSAMPLE).mean(axis=(2, 4))  # pixel response
    if noise:
        bands += rng.normal(0.0, config.sky_noise, bands.shape)
    return bands[::-1].copy()  # (g, r, z) → RGB = (z, r, g)


def components(kind: str, rng: np.random.Generator) -> list[tuple[galsim.GSObject, float, tuple]]:
    """(profile, flux, colour) of each part of one galaxy, already inclined, rotated and shifted."""
    import galsim  # here, not at the top: a run on cached renders never pays its import (2 s)

    flux = np.exp(rng.uniform(np.log(2.0), np.log(5.0)))
    shift = rng.uniform(-0.008, 0.008, 2)  # up to half a pixel off centre at 64 px
    position_angle = rng.uniform(0, np.pi) * galsim.radians
    if kind == "elliptical":
        profile = galsim.Sersic(n=round(rng.uniform(3.0, 5.0), 1), half_light_radius=rng.uniform(0.06, 0.12))
        profile = profile.shear(q=rng.uniform(0.55, 1.0), beta=position_angle)
        return [(profile.shift(*shift), flux, _jitter(COLOURS["elliptical"], rng))]

    barred = kind == "barred_spiral"
    disk_radius = rng.uniform(0.11, 0.17)  # half-light radius of the disk
    bulge_fraction = rng.uniform(0.05, 0.15) if barred else rng.uniform(0.08, 0.25)
    bar_fraction = rng.uniform(0.25, 0.35) if barred else 0.0
    arm_fraction = rng.uniform(0.3, 0.45) * (1 - bulge_fraction - bar_fraction)
    disk_fraction = 1 - bulge_fraction - bar_fraction - arm_fraction
    bar_angle = rng.uniform(0, 2 * np.pi)
    bar_length = rng.uniform(0.8, 1.2) * disk_radius  # half-length of the bar, where the arms start
    inner = bar_length if barred else rng.uniform(0.3, 0.6) * disk_radius
    cos_i = rng.uniform(0.35, 1.0)

    face_on = [
        (galsim.Exponential(half_light_radius=disk_radius), disk_fraction, COLOURS["disk"]),
        (_arms(disk_radius, inner, bar_angle, rng), arm_fraction, COLOURS["arms"]),
    ]
    if barred:
        bar = galsim.Sersic(n=rng.choice([0.5, 0.75, 1.0]), half_light_radius=0.55 * bar_length)
        bar = bar.shear(q=rng.uniform(0.2, 0.3), beta=bar_angle * galsim.radians)
        face_on.append((bar, bar_fraction, COLOURS["bar"]))
    parts = []
    for profile, fraction, colour in face_on:
        # Inclination squeezes the minor axis by cos i (shear then dilate keeps the major axis length).
        inclined = profile.shear(q=cos_i, beta=0 * galsim.radians).dilate(np.sqrt(cos_i)).rotate(position_angle)
        parts.append((inclined.shift(*shift), flux * fraction, _jitter(colour, rng)))
    bulge = galsim.Sersic(n=round(rng.uniform(1.5, 3.0), 1), half_light_radius=rng.uniform(0.015, 0.03))
    bulge = bulge.shear(q=rng.uniform(0.75, 1.0), beta=position_angle)
    parts.append((bulge.shift(*shift), flux * bulge_fraction, _jitter(COLOURS["bulge"], rng)))
    return parts


def _arms(disk_radius: float, inner: float, phase: float, rng: np.random.Generator) -> galsim.InterpolatedImage:
    """Face-on spiral arms: an exponential disk modulated by a logarithmic spiral, faded out inside `inner`."""
    import galsim

    n, scale = 128, 1.0 / 96  # the grid spans 1.33 image widths, so inclined disks are not cut at the edge
    coords = (np.arange(n) - n / 2 + 0.5) * scale
    x, y = np.meshgrid(coords, coords)
    r, theta = np.hypot(x, y), np.arctan2(y, x)
    arms = rng.choice([2, 2, 3])  # two arms most often
    pitch = np.radians(rng.uniform(12, 30))
    sharpness = rng.uniform(2.0, 5.0)
    wave = np.cos(arms * (theta - phase - np.log(np.maximum(r, 1e-4) / inner) / np.tan(pitch)))
    profile = np.exp(-1.678 * r / disk_radius) * np.maximum(wave, 0) ** sharpness * (1 - np.exp(-((r / inner) ** 4)))
    return galsim.InterpolatedImage(galsim.Image(profile, scale=scale), flux=1.0)


def _psf_kernel(fwhm: float, fine: int) -> np.ndarray:
    """A Moffat (β 3) PSF point-sampled on the fine grid, out to 2.5 FWHM, normalised to unit sum."""
    import galsim

    radius = int(np.ceil(2.5 * fwhm * fine))
    kernel = galsim.Moffat(beta=3.0, fwhm=fwhm).drawImage(
        nx=2 * radius + 1, ny=2 * radius + 1, scale=1.0 / fine, method="no_pixel"
    )
    return kernel.array / kernel.array.sum()


def _jitter(colour: tuple[float, float, float], rng: np.random.Generator) -> tuple[float, float, float]:
    """Colour fractions scattered by ±8% each and renormalised: galaxies of one class differ a little in colour."""
    c = np.asarray(colour) * rng.uniform(0.92, 1.08, 3)
    return tuple(c / c.sum())


def stretch(image: np.ndarray, config: RenderConfig) -> np.ndarray:
    """Surface brightness → [0, 1]: asinh(I / soft) / asinh(max / soft), clipped."""
    scaled = np.arcsinh(image / config.stretch_soft) / np.arcsinh(config.stretch_max / config.stretch_soft)
    return np.clip(scaled, 0.0, 1.0)


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.round(image * 255).astype(np.uint8)
