"""How well can any method locate the pulse? An oracle matched filter on simulated traces.

The oracle knows each pulse's shape (spectral slope β and phase φ, see `simulate.pulses`) and the noise's power
spectrum, and searches only for the pulse's time: it correlates the trace with the pulse template, weighted by
the inverse noise spectrum (a whitened matched filter; for white noise the plain matched filter), and puts the
peak at the template's own peak shifted by the best lag. For Gaussian noise this is the maximum-likelihood time
estimate, so a denoiser that does not know β and φ should not locate more peaks than it does. The README uses it
to show how much room each noise kind leaves above the band-pass filter.
"""

from __future__ import annotations

import numpy as np
import torch

from . import simulate
from .simulate import SimulationConfig

LOCATION_WINDOW = 10  # samples: the notes' rule, 2% of a 500-sample trace


def _located(predicted: np.ndarray, true: np.ndarray) -> float:
    return 100.0 * float(np.mean(np.abs(predicted - true) <= LOCATION_WINDOW))


def location_accuracies(kind: str, n: int, seed: int, config: SimulationConfig = SimulationConfig()) -> dict:
    """% of peaks within 10 samples for the noisy trace, the 30–80 MHz band-pass and the oracle matched filter,
    on `n` fresh traces of one Gaussian noise kind ('galactic' or 'uniform' with Gaussian samples)."""
    if kind not in ("galactic", "uniform"):
        raise ValueError(f"the oracle needs Gaussian noise of a known spectrum: galactic or uniform, not {kind!r}")
    from . import band_pass  # the task's reference filter

    rng = np.random.default_rng(seed)
    signal, params = simulate.pulses(rng, n, config)
    noise, _ = simulate.noise(rng, kind, n, config)
    traces = signal + noise
    f = simulate.frequencies(config)
    shape = simulate.band_mask(config) * np.where(f > 0, f / config.pivot_mhz, 1.0) ** (-params["slope"][:, None])
    template = shape * np.exp(-1j * params["phase"][:, None])  # each pulse's spectrum at t0 = 0, (n, F)
    if kind == "galactic":
        psd = simulate.galactic_psd(config)
        weight = np.where(psd > 0, 1.0 / np.where(psd > 0, psd, 1.0), 0.0)
    else:
        weight = np.ones_like(f)
    correlation = np.fft.irfft(np.fft.rfft(traces) * np.conj(template) * weight, n=config.n_samples)  # (n, lag)
    template_peak = np.abs(np.fft.irfft(template, n=config.n_samples)).argmax(axis=1)
    oracle = (template_peak + correlation.argmax(axis=1)) % config.n_samples
    true = np.abs(signal).argmax(axis=1)
    filtered = band_pass(torch.from_numpy(traces), config.sampling_mhz).numpy()
    return {
        "no denoising": _located(np.abs(traces).argmax(axis=1), true),
        "band-pass": _located(np.abs(filtered).argmax(axis=1), true),
        "oracle matched filter": _located(oracle, true),
    }
