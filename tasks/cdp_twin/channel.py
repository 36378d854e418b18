"""A simulated printing–imaging channel for copy detection patterns (CDP): template t → printed and scanned code x.

The embedded default data of cdp-twin, standing in for the Indigo 1×1 prints (HP Indigo at 812.8 dpi, scanned at
2400 dpi, 16-bit grey). All images live on the scan grid; one template symbol is `symbol_size`² scan pixels.

Conventions: a template t has values in {0, 1} with 0 = ink (black) and 1 = bare paper (white), as in the
published template images; a scan x has values in [0, 1], the reflectance the scanner records (0 black, 1 white).

The model, in order (each stage one function below):
1. Template: each symbol is ink with probability `density` (drawn per template from `densities`).
2. Printing: every ink symbol deposits one dot, an anti-aliased ellipse of the same area as the symbol enlarged by
   the dot gain (radius × (1 + dot_gain)), with a random radius (× (1 + radius_jitter·N)), centre offset
   (offset_jitter·N pixels per axis), elongation (aspect exp(ellipticity·N), random orientation) and ink load
   (ink_jitter). Dots combine as independent absorbers: coverage = 1 − Π(1 − dot). Ink then spreads into the
   paper fibres: a Gaussian blur of σ `ink_spread` pixels.
3. Paper: reflectance = paper_white·(1 − coverage) + ink_black·coverage, times (1 + paper_texture·g) with g a
   unit-variance Gaussian random field of correlation length `paper_grain` pixels (fibres, surface roughness).
4. Scanning: optical blur (Gaussian PSF of σ `optical_blur` pixels); sensor noise N(0, read_noise² +
   shot_noise²·signal) (read noise plus signal-dependent shot noise); clipping to [0, 1] and quantisation to
   `bits` bits.

Each template is drawn with a margin of one symbol on every side and printed whole, so dots just outside the crop
still spread into it, as they do in a crop of a larger printed code; the margin is cut off after scanning. When
the symbol size does not divide the crop (3 into 64), the last row and column of symbols are partial, as in a crop
of the Indigo scans.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from aebench.errors import AebenchError

CHUNK = 256  # images simulated at a time: bounded memory, and the random streams do not depend on the machine
SPLIT_STREAMS = {"train": 0, "test": 1}  # the second entry of each split's numpy seed


@dataclass(frozen=True)
class ChannelConfig:
    """The simulated channel and the embedded dataset it makes; every field is part of the data's content hash."""

    # dataset
    n_train: int = 4000
    n_test: int = 1000
    seed: int = 0
    # templates
    image_size: int = 64  # scan pixels per side of a code crop
    symbol_size: int = 3  # scan pixels per template symbol (Indigo 1×1: 2400 / 812.8 ≈ 3); 64 = 21 × 3 + 1
    densities: tuple[float, ...] = (0.5,)  # fraction of ink symbols; each template draws one of these
    # printing
    dot_gain: float = 0.18  # relative increase of the dot radius over the symbol's equal-area radius
    radius_jitter: float = 0.32  # relative standard deviation of each dot's radius
    offset_jitter: float = 0.45  # standard deviation of each dot's centre, pixels per axis
    ellipticity: float = 0.4  # standard deviation of the log aspect ratio of each dot
    ink_jitter: float = 0.18  # standard deviation of each dot's ink load (peak opacity 1 − |N|·ink_jitter)
    ink_spread: float = 0.1  # σ of the ink's spread into the paper, pixels
    # paper
    paper_white: float = 0.9
    ink_black: float = 0.15
    paper_texture: float = 0.3  # relative standard deviation of the print's reflectance (mottle)
    paper_grain: float = 5.0  # correlation length of the mottle, pixels
    # scanning
    optical_blur: float = 0.65  # σ of the scanner's point-spread function, pixels
    read_noise: float = 0.03
    shot_noise: float = 0.025
    bits: int = 16

    def __post_init__(self) -> None:
        if not 0 < self.symbol_size <= self.image_size:
            raise AebenchError(
                f"cdp-twin channel: need 0 < symbol_size ≤ image_size, got {self.symbol_size} and {self.image_size}"
            )
        if not self.densities or not all(0.0 <= d <= 1.0 for d in self.densities):
            raise AebenchError(f"cdp-twin channel: densities must be fractions in [0, 1], got {self.densities}")
        if self.n_train < 1 or self.n_test < 2 or not 1 <= self.bits <= 16:
            raise AebenchError("cdp-twin channel: need n_train ≥ 1, n_test ≥ 2 and 1 ≤ bits ≤ 16")
        negative = [f.name for f in dataclasses.fields(self) if isinstance(getattr(self, f.name), float)]
        negative = [name for name in negative if getattr(self, name) < 0]
        if negative:
            raise AebenchError(f"cdp-twin channel: {', '.join(negative)} must not be negative")

    @property
    def symbols(self) -> int:
        return -(-self.image_size // self.symbol_size)  # symbols per side of a crop, the last one partial if need be


def random_templates(n: int, config: ChannelConfig, rng: np.random.Generator) -> np.ndarray:
    """(n, S + 2, S + 2) uint8 symbols (1 paper, 0 ink), S = symbols per side plus a one-symbol margin."""
    size = config.symbols + 2
    density = rng.choice(np.asarray(config.densities, dtype=np.float64), size=n)
    return (rng.random((n, size, size)) >= density[:, None, None]).astype(np.uint8)


def print_coverage(symbols: np.ndarray, config: ChannelConfig, rng: np.random.Generator) -> np.ndarray:
    """Ink coverage in [0, 1] on the scan grid: (N, S, S) symbols → (N, S·s, S·s) float32, before ink spread."""
    n, rows, cols = symbols.shape
    s = config.symbol_size
    # Per-dot random shape, drawn for every symbol so that the random stream does not depend on the template.
    shape = symbols.shape
    radius = s / math.sqrt(math.pi) * (1 + config.dot_gain) * (1 + config.radius_jitter * rng.standard_normal(shape))
    radius = np.clip(radius, 0.0, 1.5 * s)  # a dot reaches at most its eight neighbours, which is all we render
    offset_y, offset_x = config.offset_jitter * rng.standard_normal((2, *shape))
    log_aspect = config.ellipticity * rng.standard_normal(shape)
    angle = rng.uniform(0.0, math.pi, shape)
    opacity = 1.0 - np.minimum(np.abs(config.ink_jitter * rng.standard_normal(shape)), 1.0)
    opacity = np.where(symbols == 0, opacity, 0.0)  # paper symbols print nothing
    dots = np.stack([radius, offset_y, offset_x, log_aspect, np.cos(angle), np.sin(angle), opacity])  # (7, N, S, S)
    dots = dots.astype(np.float32)  # the channel computes in float32: twice as fast, and precise enough
    dots = np.pad(dots, ((0, 0), (0, 0), (1, 1), (1, 1)))  # no dot beyond the margin (opacity 0, aspect 1)
    # Work in blocks (N, S, s, S, s): symbol row, pixel row in it, symbol column, pixel column; a symbol's dot
    # parameters broadcast over its pixels without being copied.
    local = (np.arange(s) + 0.5 - s / 2).astype(np.float32)  # pixel centres relative to their symbol's centre
    y0, x0 = local[:, None, None], local[None, None, :]  # (s, 1, 1) and (1, 1, s)
    transparency = np.ones((n, rows, s, cols, s), dtype=np.float32)
    for dy in (-1, 0, 1):  # the dot of symbol (i + dy, j + dx), seen from the pixels of symbol (i, j)
        for dx in (-1, 0, 1):
            neighbour = dots[:, :, 1 + dy : 1 + dy + rows, 1 + dx : 1 + dx + cols, None, None]
            r, oy, ox, log_a, cos, sin, o = neighbour.transpose(0, 1, 2, 4, 3, 5)  # each (N, S, 1, S, 1)
            y, x = y0 - dy * s - oy, x0 - dx * s - ox  # pixel − dot centre: (N, S, s, S, 1), (N, S, 1, S, s)
            u, v = x * cos + y * sin, y * cos - x * sin  # along and across the dot's long axis
            a = np.exp(log_a)
            distance = np.sqrt(u * u / a + v * v * a)  # elliptical distance; the ellipse keeps the disk's area
            transparency *= 1.0 - o * np.clip(r - distance + 0.5, 0.0, 1.0)  # one-pixel anti-aliased edge
    return 1.0 - transparency.reshape(n, rows * s, cols * s)


def paper_reflectance(coverage: np.ndarray, config: ChannelConfig, rng: np.random.Generator) -> np.ndarray:
    """Ink spread into the paper, then the print's reflectance on textured paper: (N, H, W) → (N, H, W)."""
    if config.ink_spread > 0:
        coverage = gaussian_filter(coverage, (0, config.ink_spread, config.ink_spread), mode="nearest")
    reflectance = config.paper_white * (1 - coverage) + config.ink_black * coverage
    if config.paper_texture > 0:
        white = rng.standard_normal(coverage.shape, dtype=np.float32)
        field = gaussian_filter(white, (0, config.paper_grain, config.paper_grain))
        field /= field.std(axis=(1, 2), keepdims=True)  # unit variance, whatever the grain
        reflectance = reflectance * (1 + config.paper_texture * field)
    return reflectance


def scan(reflectance: np.ndarray, config: ChannelConfig, rng: np.random.Generator) -> np.ndarray:
    """Optical blur, sensor noise, clipping and quantisation: (N, H, W) → (N, H, W) uint16 codes of `bits` bits."""
    signal = reflectance
    if config.optical_blur > 0:
        signal = gaussian_filter(signal, (0, config.optical_blur, config.optical_blur), mode="nearest")
    sigma = np.sqrt(config.read_noise**2 + config.shot_noise**2 * np.clip(signal, 0.0, None))
    signal = signal + sigma * rng.standard_normal(signal.shape, dtype=np.float32)
    levels = 2**config.bits - 1
    return np.round(np.clip(signal, 0.0, 1.0) * levels).astype(np.uint16)


def print_and_scan(symbols: np.ndarray, config: ChannelConfig, rng: np.random.Generator) -> np.ndarray:
    """One print and scan of each template with its margin: (N, S + 2, S + 2) → (N, H, W) uint16 codes (no margin)."""
    s = config.symbol_size
    out = []
    for chunk in np.array_split(symbols, max(1, math.ceil(len(symbols) / CHUNK))):
        codes = scan(paper_reflectance(print_coverage(chunk, config, rng), config, rng), config, rng)
        out.append(codes[:, s : s + config.image_size, s : s + config.image_size])
    return np.concatenate(out)


def template_rng(config: ChannelConfig, split: str) -> np.random.Generator:
    return np.random.default_rng([config.seed, SPLIT_STREAMS[split], 0])


def channel_rng(config: ChannelConfig, split: str, print_index: int = 0) -> np.random.Generator:
    """The channel's randomness for one print run of a split; print_index 1, 2, ... are reprints."""
    return np.random.default_rng([config.seed, SPLIT_STREAMS[split], 1 + print_index])


def simulate(config: ChannelConfig, split: str, print_index: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A split's templates (N, S + 2, S + 2) uint8 symbols with margin, and their codes (N, H, W) uint16.

    The templates depend only on (seed, split); `print_index` > 0 prints the same templates again with fresh
    channel noise (a second, independent print run).
    """
    n = config.n_train if split == "train" else config.n_test
    symbols = random_templates(n, config, template_rng(config, split))
    return symbols, print_and_scan(symbols, config, channel_rng(config, split, print_index))


def upsample(symbols: np.ndarray, symbol_size: int, size: int | None = None) -> np.ndarray:
    """(N, S, S) symbols → (N, S·s, S·s): each symbol repeated over its s × s scan pixels (cut to size × size)."""
    up = np.repeat(np.repeat(symbols, symbol_size, axis=1), symbol_size, axis=2)
    return up if size is None else up[:, :size, :size]
