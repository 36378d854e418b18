"""The embedded sky: one scene of galaxies and stars seen through a Hubble-like and a Webb-like telescope (GalSim).

A scene is drawn once (positions, morphologies, sizes, shears, fluxes) and rendered twice. The Webb-like image is
drawn on the common grid (0.03″ pixels); the Hubble-like image is drawn on its own 2× coarser grid, gets its noise
there, and is then resampled (GalSim's cubic interpolant) onto the common grid, so the pair is aligned pixel to pixel
with the Hubble noise correlated as in a drizzled, registered mosaic. Fluxes are in nJy per pixel of the common grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

AB_ZERO_POINT_NJY = 31.4  # m_AB = 31.4 − 2.5 log10(f / nJy)


@dataclass(frozen=True)
class Telescope:
    """Diffraction-limited optics (circular pupil, central obscuration, struts), a Gaussian detector and mosaic blur,
    square pixels, sky and shot noise."""

    name: str
    diameter_m: float
    obscuration: float  # linear fraction of the pupil diameter
    struts: int
    strut_thickness: float  # fraction of the pupil diameter
    wavelength_nm: float
    pixel_arcsec: float
    sky_sigma_njy: float  # background noise per (own) pixel
    electrons_per_njy: float  # sets the shot noise of the sources
    # What widens a real PSF beyond diffraction and the pixel: the detector's charge diffusion, the drizzle kernel
    # of the mosaic, pointing jitter. A Gaussian of this FWHM, calibrated to the instrument's published PSF FWHM.
    blur_fwhm_arcsec: float = 0.0


# ACS/WFC F814W on CANDELS 0.06″ mosaics. Diffraction and the pixel alone give a PSF FWHM of 0.078″; the 0.055″
# blur brings it to 0.095″, the middle of the 0.09–0.10″ published for F814W (psf_fwhm_arcsec; the task README).
HUBBLE = Telescope("hubble-like", 2.4, 0.33, 4, 0.03, 814.0, 0.06, 2.0, 20.0, blur_fwhm_arcsec=0.055)
# NIRCam F150W on 0.03″ mosaics: diffraction and the pixel give 0.052″, the published ~0.050″: no blur added.
WEBB = Telescope("webb-like", 6.5, 0.11, 3, 0.02, 1500.0, 0.03, 0.3, 50.0)


@dataclass(frozen=True)
class SceneConfig:
    """What is in the sky; densities are per square arcminute."""

    galaxy_density: float = 2500.0  # ~3× a blank deep field: a cluster-like field, so most crops hold galaxies
    galaxy_mag: tuple[float, float] = (19.5, 28.0)  # Webb-band AB magnitudes, dN/dm ∝ 10^(0.15 m)
    star_density: float = 40.0
    star_mag: tuple[float, float] = (18.0, 27.0)
    hdf_fraction: float = 0.25  # galaxies drawn from real Hubble Deep Field stamps
    elliptical_fraction: float = 0.2  # single Sérsic n ∈ [2.5, 5]; the rest are bulge + disk + star-forming knots
    dropout_fraction: float = 0.05  # high-redshift galaxies, nearly invisible in the optical band
    colour_mean: float = 0.5  # m_Hubble − m_Webb of a disk (galaxies are brighter in the near-IR)
    colour_sigma: float = 0.3


@dataclass(frozen=True)
class SkyConfig:
    """Everything the embedded data depend on; its hash names the cache file."""

    seed: int = 0
    train_field: int = 768  # pixels of the common grid, square
    test_field: int = 256
    crop: int = 64
    n_train_crops: int = 2048
    scene: SceneConfig = field(default_factory=SceneConfig)
    hubble: Telescope = HUBBLE
    webb: Telescope = WEBB


def magnitude_to_njy(mag: np.ndarray | float) -> np.ndarray | float:
    return 10 ** ((AB_ZERO_POINT_NJY - np.asarray(mag)) / 2.5)


def _power_law_magnitudes(rng: np.random.Generator, n: int, lo: float, hi: float, slope: float = 0.15) -> np.ndarray:
    """n magnitudes with dN/dm ∝ 10^(slope·m) on [lo, hi] (faint objects outnumber bright ones)."""
    a, b = 10 ** (slope * lo), 10 ** (slope * hi)
    return np.log10(a + rng.random(n) * (b - a)) / slope


def psf(telescope: Telescope):
    """The telescope's PSF before its pixel (GalSim draws the pixel response): optics, then the detector blur."""
    import galsim

    optics = galsim.OpticalPSF(
        lam=telescope.wavelength_nm,
        diam=telescope.diameter_m,
        obscuration=telescope.obscuration,
        nstruts=telescope.struts,
        strut_thick=telescope.strut_thickness,
        strut_angle=15 * galsim.degrees,
        scale_unit=galsim.arcsec,
        suppress_warning=True,
    )
    if telescope.blur_fwhm_arcsec <= 0:
        return optics
    return galsim.Convolve(optics, galsim.Gaussian(fwhm=telescope.blur_fwhm_arcsec))


def psf_fwhm_arcsec(telescope: Telescope, fine: float = 0.002) -> float:
    """FWHM of the PSF with its pixel response, as an instrument handbook quotes it: measured on a grid `fine`″
    fine, from the area above half maximum (2·sqrt(area/π)). On the telescope's own, undersampled grid the same
    measure depends on where the star falls within a pixel (0.068–0.135″ for diffraction and pixel alone)."""
    import galsim

    profile = galsim.Convolve(psf(telescope), galsim.Pixel(telescope.pixel_arcsec))
    image = profile.drawImage(nx=400, ny=400, scale=fine, method="no_pixel").array
    return 2 * math.sqrt((image >= image.max() / 2).sum() / math.pi) * fine


@lru_cache(maxsize=1)
def hdf_stamps() -> tuple[np.ndarray, ...]:
    """Isolated galaxies cut from scikit-image's Hubble Deep Field (WFPC2) image: background-subtracted, masked."""
    from scipy import ndimage
    from skimage.data import hubble_deep_field

    grey = hubble_deep_field().astype(np.float64).mean(axis=2)  # (872, 1000)
    background = np.median(grey)
    sigma = 1.4826 * np.median(np.abs(grey - background))
    signal = grey - background
    detected = ndimage.gaussian_filter(signal, 1.5) > 4 * sigma
    labels, _ = ndimage.label(detected)
    stamps = []
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        height, width = box[0].stop - box[0].start, box[1].stop - box[1].start
        area = int((labels[box] == index).sum())
        if not (80 <= area <= 4000 and max(height, width) <= 90):
            continue
        margin = 6
        rows = slice(box[0].start - margin, box[0].stop + margin)
        cols = slice(box[1].start - margin, box[1].stop + margin)
        if rows.start < 0 or cols.start < 0 or rows.stop > grey.shape[0] or cols.stop > grey.shape[1]:
            continue
        own = ndimage.binary_dilation(labels[rows, cols] == index, iterations=3)
        inside = labels[rows, cols][own]
        if ((inside > 0) & (inside != index)).any():
            continue  # a neighbour inside the mask: not isolated
        stamp = np.clip(signal[rows, cols] * own, 0, None)
        stamps.append(stamp / stamp.sum())
    return tuple(stamps)


def _half_light_radius_px(stamp: np.ndarray) -> float:
    """Radius around the flux centroid that encloses half the flux, in stamp pixels."""
    y, x = np.indices(stamp.shape)
    cy, cx = (stamp * y).sum(), (stamp * x).sum()
    r = np.hypot(y - cy, x - cx).ravel()
    order = np.argsort(r)
    cumulative = np.cumsum(stamp.ravel()[order])
    return float(max(r[order][np.searchsorted(cumulative, 0.5)], 0.5))


def scene(config: SkyConfig, field_px: int, seed: int) -> list[dict]:
    """The objects of one field: their position (″ from the field's corner), size, and per-telescope model."""
    import galsim

    s = config.scene
    rng = np.random.default_rng(seed)
    side = field_px * config.webb.pixel_arcsec
    area_arcmin2 = (side / 60) ** 2
    stamps = hdf_stamps()
    objects = []
    for mag in _power_law_magnitudes(rng, rng.poisson(s.galaxy_density * area_arcmin2), *s.galaxy_mag):
        flux = float(magnitude_to_njy(mag))
        # Size–magnitude relation with 0.2 dex scatter: r½ ≈ 0.3″ at m = 24, shrinking for fainter galaxies.
        r_half = float(np.clip(0.3 * 10 ** (-0.08 * (mag - 24) + rng.normal(0, 0.2)), 0.04, 2.0))
        colour = s.colour_mean + rng.normal(0, s.colour_sigma)
        if rng.random() < s.dropout_fraction:
            colour += 4.0
        kind = rng.choice(
            ["hdf", "elliptical", "spiral"],
            p=[s.hdf_fraction, s.elliptical_fraction, 1 - s.hdf_fraction - s.elliptical_fraction],
        )
        # Per component: (profile of unit flux, Webb flux, Hubble flux); bulges are redder, knots bluer.
        if kind == "hdf":
            stamp = stamps[rng.integers(len(stamps))]
            scale = r_half / _half_light_radius_px(stamp)
            profile = galsim.InterpolatedImage(galsim.Image(stamp, scale=scale), x_interpolant="lanczos3")
            parts = [(profile, 1.0, colour)]
        elif kind == "elliptical":
            parts = [(galsim.Sersic(n=rng.uniform(2.5, 5.0), half_light_radius=r_half), 1.0, colour + 0.4)]
        else:
            bulge = rng.uniform(0.0, 0.5)
            knots = rng.uniform(0.0, 0.3) * (1 - bulge)
            disk = 1 - bulge - knots
            knot_rng = galsim.BaseDeviate(int(rng.integers(2**31)))
            parts = [(galsim.Exponential(half_light_radius=r_half), disk, colour)]
            if bulge > 0.02:
                parts.append((galsim.DeVaucouleurs(half_light_radius=0.25 * r_half), bulge, colour + 0.5))
            if knots > 0.02:
                n_knots = int(rng.integers(5, 30))
                knot_profile = galsim.RandomKnots(n_knots, half_light_radius=0.7 * r_half, rng=knot_rng)
                parts.append((knot_profile, knots, colour - 0.6))
        # Intrinsic ellipticity and orientation (shape noise ~0.25), then a weak-lensing shear of a few per cent.
        e = min(abs(rng.normal(0, 0.3)), 0.7)
        angle = rng.uniform(0, math.pi)
        g1, g2 = rng.normal(0, 0.03, 2)
        webb = galsim.Sum([p * (f * flux) for p, f, _ in parts])
        hubble = galsim.Sum([p * (f * flux * 10 ** (-0.4 * c)) for p, f, c in parts])
        shape = dict(e1=e * math.cos(2 * angle), e2=e * math.sin(2 * angle))
        webb, hubble = (o.shear(**shape).shear(g1=g1, g2=g2) for o in (webb, hubble))
        position = rng.uniform(-0.5, side + 0.5, 2)  # objects may straddle the edge
        objects.append(
            dict(position=position, extent=float(np.clip(10 * r_half + 0.8, 1.2, 8.0)), webb=webb, hubble=hubble)
        )
    for mag in _power_law_magnitudes(rng, rng.poisson(s.star_density * area_arcmin2), *s.star_mag, slope=0.1):
        flux = float(magnitude_to_njy(mag))
        colour = rng.normal(0.3, 0.5)
        point = galsim.DeltaFunction()
        objects.append(
            dict(
                position=rng.uniform(0, side, 2),
                extent=float(np.clip(1.2 + 0.4 * (26 - mag), 1.2, 5.0)),
                webb=point * flux,
                hubble=point * (flux * 10 ** (-0.4 * colour)),
            )
        )
    return objects


def render(objects: list[dict], telescope: Telescope, field_px: int, common_arcsec: float):
    """The noiseless image of `objects` through `telescope` on its own pixel grid (GalSim ImageF), in nJy/pixel."""
    import galsim

    scale = telescope.pixel_arcsec
    n = round(field_px * common_arcsec / scale)
    image = galsim.ImageF(n, n, scale=scale)
    optics = psf(telescope)
    key = "webb" if telescope.name.startswith("webb") else "hubble"
    for obj in objects:
        x, y = obj["position"] / scale + 0.5  # pixel i (1-based) covers [(i − 1)·scale, i·scale) in ″
        size = 2 * math.ceil(obj["extent"] / scale / 2)
        stamp = galsim.Convolve(obj[key], optics).drawImage(
            nx=size, ny=size, scale=scale, center=galsim.PositionD(x, y)
        )
        overlap = stamp.bounds & image.bounds
        if overlap.isDefined():
            image[overlap] += stamp[overlap]
    return image


def observe(noiseless, telescope: Telescope, seed: int):
    """A copy with sky noise and the sources' shot noise (GalSim CCDNoise in nJy; electrons_per_njy is the gain)."""
    import galsim

    image = noiseless.copy()
    sky = telescope.sky_sigma_njy**2 * telescope.electrons_per_njy  # sky level whose Poisson σ is sky_sigma_njy
    image.addNoise(galsim.CCDNoise(galsim.BaseDeviate(seed), sky_level=sky, gain=telescope.electrons_per_njy))
    return image


def resample(image, field_px: int, common_arcsec: float) -> np.ndarray:
    """An image on another pixel grid, cubic-interpolated onto the common grid (same sky area, same centre)."""
    import galsim

    if image.scale == common_arcsec:
        return image.array.copy()
    profile = galsim.InterpolatedImage(
        image, x_interpolant="cubic", calculate_stepk=False, calculate_maxk=False, use_true_center=True
    )
    target = galsim.ImageF(field_px, field_px, scale=common_arcsec)
    return profile.drawImage(target, method="no_pixel").array.copy()  # flux per common pixel


def field_pair(config: SkyConfig, field_px: int, seed: int) -> dict[str, np.ndarray]:
    """One field in nJy per common pixel: the Hubble-like observation, the Webb-like one, a second Webb exposure
    (same scene, independent noise) and the noiseless Webb image; each (field_px, field_px) float32."""
    objects = scene(config, field_px, seed)
    common = config.webb.pixel_arcsec
    webb_clean = render(objects, config.webb, field_px, common)
    hubble_clean = render(objects, config.hubble, field_px, common)
    noise_seeds = np.random.default_rng(seed + 1).integers(1, 2**31, 3)
    arrays = {
        "hubble": resample(observe(hubble_clean, config.hubble, int(noise_seeds[0])), field_px, common),
        "webb": observe(webb_clean, config.webb, int(noise_seeds[1])).array,
        "webb_repeat": observe(webb_clean, config.webb, int(noise_seeds[2])).array,
        "webb_clean": webb_clean.array,
    }
    return {key: np.ascontiguousarray(value, dtype=np.float32) for key, value in arrays.items()}
