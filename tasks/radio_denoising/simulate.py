"""Simulated radio traces of cosmic-ray air showers: band-limited pulses plus one of three kinds of noise.

A trace is 500 samples at 180 MHz (2.78 µs), like the published `radio_data.npz`. Units are the nominal noise
level: galactic and uniform noise have an rms of exactly 1 in expectation, so a pulse's peak amplitude is its
amplitude signal-to-noise ratio, SNR = max|signal| / noise rms.

- **Pulse:** a delta at a random sub-sample time t0, seen through a 30–80 MHz band (LOFAR/AERA-like), built in
  the frequency domain: S(f) = B(f) · (f / 55 MHz)^(-β) · exp(-i(2π f t0 + φ)). B is flat in 35–75 MHz with
  raised-cosine edges that reach 0 at 30 and 80 MHz (nothing outside the band); the spectral slope β (the pulse's
  width: steeper spectra give broader pulses) and the constant phase φ (cosine-like to sine-like shape) are random.
  The pulse is then scaled to its peak amplitude max|s|, log-uniform in `snr` (1.5–8 since version 2: the book's
  regime, whose radio exercise works at SNR 2 and calls SNR ≈ 3 the threshold of a precise reconstruction;
  version 1 drew 5–50, where the noisy trace's own maximum already marks the pulse).
- **galactic:** Gaussian noise coloured like the galactic synchrotron background (sky temperature ∝ f^-2.55):
  power spectral density ∝ f^-2.5 · B(f)², i.e. inside the same band as the pulse, where it cannot be filtered
  away. Normalised to an expected rms of 1.
- **uniform:** noise with a uniform (flat) spectrum over the whole 0–90 MHz, rms 1: Gaussian since version 2
  (`white_distribution="gaussian"`); version 1 drew each sample uniformly from [-√3, √3]
  (`white_distribution="uniform"`), a bounded noise whose maximum can never pass √3 and so points at the pulse.
- **cosine:** a narrow-band interference line A·cos(2π f_c t + ψ), f_c uniform in the band, A = √2·u with u
  uniform in `cosine_rms` (the line's rms: 1–3 since version 2, a line as strong as or stronger than the
  galactic background; 0.5–1.5 in version 1), ψ uniform, plus white Gaussian noise of rms 0.1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NOISE_KINDS = ("galactic", "uniform", "cosine")
SIMULATION_VERSION = "2"  # part of the cache key: bump when the generator's output changes


@dataclass(frozen=True)
class SimulationConfig:
    n_samples: int = 500
    sampling_mhz: float = 180.0
    band_mhz: tuple[float, float] = (30.0, 80.0)
    band_edge_mhz: float = 5.0  # width of each raised-cosine edge inside the band
    pivot_mhz: float = 55.0  # frequency where the slope term is 1
    snr: tuple[float, float] = (1.5, 8.0)  # peak amplitude / noise rms, log-uniform (version 1: 5–50)
    slope: tuple[float, float] = (-1.0, 2.0)  # β of the pulse spectrum ∝ f^-β
    position: tuple[float, float] = (100.0, 400.0)  # t0 in samples; keeps the ringing away from the trace ends
    galactic_index: float = 2.5  # noise power ∝ f^-index
    white_distribution: str = "gaussian"  # the "uniform" (flat-spectrum) noise's samples: gaussian or uniform (v1)
    cosine_rms: tuple[float, float] = (1.0, 3.0)  # the line's rms (version 1: 0.5–1.5)
    cosine_white_rms: float = 0.1


def frequencies(config: SimulationConfig) -> np.ndarray:
    """Frequencies of the rfft bins in MHz, (n_samples // 2 + 1,)."""
    return np.fft.rfftfreq(config.n_samples, d=1.0 / config.sampling_mhz)


def band_mask(config: SimulationConfig) -> np.ndarray:
    """B(f): 1 inside the band, raised-cosine edges of `band_edge_mhz`, exactly 0 outside [lo, hi]."""
    f = frequencies(config)
    lo, hi = config.band_mhz
    edge = config.band_edge_mhz
    rise = np.clip((f - lo) / edge, 0.0, 1.0)
    fall = np.clip((hi - f) / edge, 0.0, 1.0)
    return (np.sin(0.5 * np.pi * rise) * np.sin(0.5 * np.pi * fall)) ** 2


def pulses(rng: np.random.Generator, n: int, config: SimulationConfig) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(n, n_samples) band-limited pulses and their parameters (snr = peak amplitude, t0, slope, phase)."""
    f = frequencies(config)
    t0 = rng.uniform(*config.position, size=(n, 1))
    slope = rng.uniform(*config.slope, size=(n, 1))
    phase = rng.uniform(0.0, 2 * np.pi, size=(n, 1))
    log_lo, log_hi = np.log(config.snr)
    snr = np.exp(rng.uniform(log_lo, log_hi, size=n))
    shape = band_mask(config) * np.where(f > 0, f / config.pivot_mhz, 1.0) ** (-slope)  # (n, F)
    delay = np.exp(-1j * (2 * np.pi * f * t0 / config.sampling_mhz + phase))  # t0 in samples → f / fs
    s = np.fft.irfft(shape * delay, n=config.n_samples)  # (n, L)
    s *= (snr / np.abs(s).max(axis=1))[:, None]
    return s, {"snr": snr, "t0": t0[:, 0], "slope": slope[:, 0], "phase": phase[:, 0]}


def galactic_psd(config: SimulationConfig) -> np.ndarray:
    """The galactic noise's power per rfft bin, f^-index inside the band (shaped by B²), scaled to variance 1."""
    f = frequencies(config)
    psd = band_mask(config) ** 2 * np.where(f > 0, f / config.pivot_mhz, np.inf) ** (-config.galactic_index)
    return psd / _variance_of_psd(psd, config.n_samples)


def _variance_of_psd(psd: np.ndarray, n: int) -> float:
    """Expected variance of irfft(sqrt(psd) · rfft(white noise of variance 1)), by Parseval."""
    weights = np.full(len(psd), 2.0)
    weights[0] = 1.0
    if n % 2 == 0:
        weights[-1] = 1.0  # the Nyquist bin appears once
    return float((weights * psd).sum() / n)


def noise(rng: np.random.Generator, kind: str, n: int, config: SimulationConfig) -> tuple[np.ndarray, dict]:
    """(n, n_samples) noise of one kind (see the module docstring) and its random parameters (cosine: the line's
    frequency in MHz and amplitude)."""
    length = config.n_samples
    if kind == "galactic":
        white = rng.standard_normal((n, length))
        return np.fft.irfft(np.fft.rfft(white) * np.sqrt(galactic_psd(config)), n=length), {}
    if kind == "uniform":
        if config.white_distribution == "gaussian":
            return rng.standard_normal((n, length)), {}
        if config.white_distribution == "uniform":
            return rng.uniform(-np.sqrt(3.0), np.sqrt(3.0), size=(n, length)), {}
        raise ValueError(f"white_distribution must be 'gaussian' or 'uniform', got {config.white_distribution!r}")
    if kind == "cosine":
        f_c = rng.uniform(*config.band_mhz, size=(n, 1))
        amplitude = np.sqrt(2.0) * rng.uniform(*config.cosine_rms, size=(n, 1))
        psi = rng.uniform(0.0, 2 * np.pi, size=(n, 1))
        line = amplitude * np.cos(2 * np.pi * f_c / config.sampling_mhz * np.arange(length) + psi)
        white = config.cosine_white_rms * rng.standard_normal((n, length))
        return line + white, {"frequency_mhz": f_c[:, 0], "amplitude": amplitude[:, 0]}
    raise ValueError(f"unknown noise kind {kind!r} (known: {', '.join(NOISE_KINDS)})")


def simulate(seed: int, n_per_kind: int, config: SimulationConfig, interleave: bool) -> dict[str, np.ndarray]:
    """`n_per_kind` traces of each noise kind: traces, signals (float32 (N, L)) and noise_kind (int64 (N,)).

    Interleaved (kinds 0, 1, 2, 0, 1, 2, ...) so that any prefix is balanced, or shuffled.
    """
    rng = np.random.default_rng(seed)
    signals, noises, kinds = [], [], []
    for k, kind in enumerate(NOISE_KINDS):
        signals.append(pulses(rng, n_per_kind, config)[0])
        noises.append(noise(rng, kind, n_per_kind, config)[0])
        kinds.append(np.full(n_per_kind, k, dtype=np.int64))
    signal, background, kind = (np.concatenate(a) for a in (signals, noises, kinds))
    order = np.arange(len(kind)).reshape(len(NOISE_KINDS), n_per_kind).T.ravel() if interleave else None
    if order is None:
        order = rng.permutation(len(kind))
    return {
        "traces": (signal + background)[order].astype(np.float32),
        "signals": signal[order].astype(np.float32),
        "noise_kind": kind[order],
    }
