"""radio-denoising: the simulated pulses and noises, the accuracy rule, the npz loader, the cache, the baselines."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from aebench.errors import AebenchError
from aebench.model import DataSpec
from aebench.registry import models, tasks
from aebench.task import Budget
from aebench.tasks.radio_denoising import (
    RadioDenoising,
    SpectralError,
    TraceAccuracy,
    TraceMSE,
    band_pass,
    denoise,
    score,
    true_amplitude,
    true_reconstruction,
)
from aebench.tasks.radio_denoising.bounds import location_accuracies
from aebench.tasks.radio_denoising.data import EmbeddedConfig, load_embedded, load_npz
from aebench.tasks.radio_denoising.simulate import SimulationConfig, frequencies, noise, pulses, simulate
from toy import train_briefly

CONFIG = SimulationConfig()
SMALL = EmbeddedConfig(n_train_per_kind=400, n_test_per_kind=40)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# --- the simulation -------------------------------------------------------------------------------------------------
def test_pulses_lie_in_the_band_with_the_stated_peak():
    signal, params = pulses(rng(), 500, CONFIG)
    power = np.abs(np.fft.rfft(signal)) ** 2  # (N, F)
    f = frequencies(CONFIG)
    outside = (f < 30.0) | (f > 80.0)
    assert power[:, outside].sum() < 1e-12 * power.sum()
    assert np.allclose(np.abs(signal).max(axis=1), params["snr"])
    assert 1.5 <= params["snr"].min() and params["snr"].max() <= 8.0
    # The peak sits at the pulse time t0 (within the half period of the band's centre frequency).
    assert np.all(np.abs(np.abs(signal).argmax(axis=1) - params["t0"]) <= 2.0)


def test_galactic_noise_is_coloured_as_stated():
    n, _ = noise(rng(1), "galactic", 4000, CONFIG)
    assert n.std() == pytest.approx(1.0, abs=0.01)
    psd = (np.abs(np.fft.rfft(n)) ** 2).mean(axis=0)
    f = frequencies(CONFIG)
    flat = (f >= 36.0) & (f <= 74.0)  # inside the band's raised-cosine edges
    slope = np.polyfit(np.log(f[flat]), np.log(psd[flat]), 1)[0]
    assert slope == pytest.approx(-2.5, abs=0.1)
    assert psd[(f < 30.0) | (f > 80.0)].sum() < 1e-12 * psd.sum()


def test_uniform_noise_is_white_and_gaussian_or_bounded_as_in_version_1():
    n, _ = noise(rng(2), "uniform", 4000, CONFIG)
    assert n.std() == pytest.approx(1.0, abs=0.01)
    psd = (np.abs(np.fft.rfft(n)) ** 2).mean(axis=0)[1:-1]
    slope = np.polyfit(np.log(frequencies(CONFIG)[1:-1]), np.log(psd), 1)[0]
    assert abs(slope) < 0.05
    assert np.abs(n).max() > 4.0  # Gaussian: unbounded, no ceiling that would point at the pulse
    bounded, _ = noise(rng(2), "uniform", 4000, dataclasses.replace(CONFIG, white_distribution="uniform"))
    assert bounded.std() == pytest.approx(1.0, abs=0.01) and np.abs(bounded).max() <= math.sqrt(3.0)
    with pytest.raises(ValueError, match="white_distribution"):
        noise(rng(2), "uniform", 4, dataclasses.replace(CONFIG, white_distribution="laplace"))


def test_noisy_trace_alone_often_misses_the_pulse():
    """In the book's regime (SNR 1.5–8) the noisy trace's own maximum is often elsewhere: there is something to
    denoise. At version 1's SNR 5–50 it was at the pulse in 99.9% of the traces (this test failed there)."""
    data = simulate(1, 400, CONFIG, interleave=True)
    x, z, kind = (torch.from_numpy(data[key]) for key in ("traces", "signals", "noise_kind"))
    raw = score(x, z, kind).metrics
    assert raw["accuracy_galactic"] < 80.0 and raw["accuracy_uniform"] < 80.0 and raw["accuracy_cosine"] < 97.0
    assert raw["amplitude_accuracy"] < 10.0
    filtered = score(band_pass(x, 180.0), z, kind).metrics
    assert filtered["accuracy_uniform"] > raw["accuracy_uniform"] + 5.0  # removing 44% of the noise power helps
    assert filtered["accuracy_galactic"] == raw["accuracy_galactic"]  # all galactic noise is inside the band


def test_cosine_noise_has_a_line_at_its_frequency():
    n, params = noise(rng(3), "cosine", 200, CONFIG)
    spectrum = np.abs(np.fft.rfft(n, n=8 * CONFIG.n_samples))  # zero-padded: 0.045 MHz bins
    f = np.fft.rfftfreq(8 * CONFIG.n_samples, d=1.0 / CONFIG.sampling_mhz)
    found = f[spectrum.argmax(axis=1)]
    assert np.all(np.abs(found - params["frequency_mhz"]) < 0.1)
    assert np.all((30.0 <= params["frequency_mhz"]) & (params["frequency_mhz"] <= 80.0))
    line_rms = params["amplitude"] / math.sqrt(2.0)
    assert np.allclose(n.std(axis=1), np.sqrt(line_rms**2 + 0.1**2), rtol=0.1)


# --- the accuracy rule and the scores -------------------------------------------------------------------------------
def pulse(peak: float = 10.0, at: int = 100, length: int = 500) -> torch.Tensor:
    trace = torch.zeros(length)
    trace[at - 2 : at + 3] = torch.tensor([0.3, -0.6, 1.0, -0.6, 0.3]) * peak
    return trace


def test_accuracy_rules_on_hand_made_cases():
    truth = pulse()
    elsewhere = truth.clone()
    elsewhere[300] = 10.1  # a spike far away, 1% above the true peak
    # (denoised trace, the notes' location rule, the amplitude rule)
    cases = {
        "exact": (truth, True, True),
        "1.9% high": (truth * 1.019, True, True),
        "1.9% low": (truth * 0.981, True, True),
        "3% high": (truth * 1.03, True, False),
        "half the amplitude": (truth * 0.5, True, False),
        "shifted 3 samples": (torch.roll(truth, 3), True, True),
        "shifted 4 samples": (torch.roll(truth, 4), True, False),
        "shifted 10 samples": (torch.roll(truth, 10), True, False),  # 2% of 500 samples
        "shifted 11 samples": (torch.roll(truth, 11), False, False),
        "shifted -11 samples": (torch.roll(truth, -11), False, False),
        "sign flipped": (-truth, True, True),  # both rules compare |peak|
        "peak elsewhere": (elsewhere, False, False),
        "all zero": (torch.zeros(500), False, False),
    }
    predictions = torch.stack([p for p, _, _ in cases.values()])
    located = true_reconstruction(predictions, truth.expand(len(cases), -1))
    amplitude = true_amplitude(predictions, truth.expand(len(cases), -1))
    assert dict(zip(cases, located.tolist())) == {name: case[1] for name, case in cases.items()}
    assert dict(zip(cases, amplitude.tolist())) == {name: case[2] for name, case in cases.items()}
    # The window is 2% of the trace's length: 2 samples for a trace of 100.
    short = pulse(at=50, length=100)
    shifted = torch.stack([torch.roll(short, 2), torch.roll(short, 3)])
    assert true_reconstruction(shifted, short.expand(2, -1)).tolist() == [True, False]
    # A noise-only trace (true signal all zero) never counts, not even for a perfect prediction.
    assert not true_reconstruction(torch.zeros(1, 500), torch.zeros(1, 500)).any()
    assert not true_amplitude(torch.zeros(1, 500), torch.zeros(1, 500)).any()


def test_score_per_kind_and_noise_only_traces():
    truth = torch.stack([pulse(10.0), pulse(20.0), pulse(5.0), pulse(8.0), torch.zeros(500)]).unsqueeze(1)
    kind = torch.tensor([0, 0, 1, 2, 2])
    prediction = truth.clone()
    prediction[1] *= 1.05  # galactic: one of two with the wrong amplitude, at the right place
    prediction[2] = torch.roll(prediction[2], 20)  # uniform: the peak 20 samples off
    prediction[4, 0, 7] = 1.0  # noise only: not in the accuracy, but in the MSE
    result = score(prediction, truth, kind)
    assert result.metrics["accuracy_galactic"] == 100.0 and result.metrics["amplitude_accuracy_galactic"] == 50.0
    assert result.metrics["accuracy_uniform"] == 0.0 and result.metrics["amplitude_accuracy_uniform"] == 0.0
    assert result.metrics["accuracy_cosine"] == 100.0 and result.metrics["amplitude_accuracy_cosine"] == 100.0
    assert result.metrics["accuracy"] == 75.0 and result.metrics["amplitude_accuracy"] == 50.0
    expected_mse = (((prediction.double() - truth.double()) ** 2).sum() / truth.numel()).item()
    assert result.metrics["mse"] == pytest.approx(expected_mse, rel=1e-12)
    per_kind = result.details["per_noise_kind"]
    assert per_kind["galactic"]["traces"] == 2 and per_kind["cosine"]["with_signal"] == 1
    assert per_kind["uniform"]["mse"] > 0.0 and per_kind["cosine"]["mse"] == pytest.approx(1 / 1000)
    perfect = score(truth, truth, kind)
    assert perfect.metrics["mse"] == 0.0 and perfect.metrics["spectral_error"] == 0.0
    unknown = score(truth, truth, torch.full((5,), -1))
    assert unknown.metrics["accuracy"] == 100.0 and unknown.metrics["accuracy_galactic"] is None
    assert "noise-kind labels" in unknown.unavailable["accuracy_galactic"]
    assert unknown.metrics["amplitude_accuracy"] == 100.0 and unknown.metrics["amplitude_accuracy_cosine"] is None
    galactic_only = score(truth[:2], truth[:2], kind[:2])
    assert galactic_only.unavailable["accuracy_uniform"] == "no traces with a signal and uniform noise"


def test_the_columns_are_metric_objects_that_accumulate_batches():
    """Each column comes from a metric object a user can import: fed in two batches it gives the task's value."""
    truth = torch.stack([pulse(10.0), pulse(20.0), pulse(5.0), pulse(8.0), torch.zeros(500)]).unsqueeze(1)
    kind = torch.tensor([0, 0, 1, 2, 2])
    prediction = truth.clone()
    prediction[1] *= 1.05
    prediction[2] = torch.roll(prediction[2], 20)
    prediction[4, 0, 7] = 1.0
    expected = score(prediction, truth, kind).metrics
    columns = {
        "accuracy": TraceAccuracy("accuracy"),
        "amplitude_accuracy_galactic": TraceAccuracy("amplitude_accuracy", kind=0),
        "mse": TraceMSE(),
        "spectral_error": SpectralError(),
    }
    for half in (slice(0, 3), slice(3, 5)):
        for name, metric in columns.items():
            inputs = (prediction[half], truth[half]) + ((kind[half],) if isinstance(metric, TraceAccuracy) else ())
            metric.update(*inputs)
    for name, metric in columns.items():
        assert metric.value() == pytest.approx(expected[name], rel=1e-14), name
    assert columns["accuracy"].value().items.tolist() == [100.0, 100.0, 0.0, 100.0]  # the traces with a signal
    with pytest.raises(AebenchError, match="rule must be one of"):
        TraceAccuracy("peak")


def test_band_pass_keeps_the_pulse_and_removes_out_of_band_noise():
    signal = torch.from_numpy(pulses(rng(4), 50, CONFIG)[0])
    assert torch.allclose(band_pass(signal, 180.0), signal, atol=1e-9)
    white, _ = noise(rng(5), "uniform", 2000, CONFIG)
    kept = band_pass(torch.from_numpy(white), 180.0).pow(2).mean().item()
    assert kept == pytest.approx(50.0 / 90.0, rel=0.03)  # the band's share of 0–90 MHz


def test_oracle_matched_filter_bounds_the_room_above_the_band_pass():
    """On white noise the band-pass is nearly the matched filter already: little room for any denoiser. On the
    coloured galactic noise (all in band) the band-pass does nothing and a whitening filter gains."""
    white = location_accuracies("uniform", 2000, seed=7)
    assert white["no denoising"] + 5.0 < white["band-pass"] < white["oracle matched filter"] < white["band-pass"] + 4.0
    galactic = location_accuracies("galactic", 2000, seed=7)
    assert galactic["band-pass"] == galactic["no denoising"]
    assert galactic["oracle matched filter"] > galactic["band-pass"] + 3.0
    with pytest.raises(ValueError, match="Gaussian noise"):
        location_accuracies("cosine", 10, seed=0)


# --- the published file ---------------------------------------------------------------------------------------------
def write_npz(folder: Path, n: int = 40, length: int = 500, **overrides) -> dict[str, np.ndarray]:
    generator = rng(6)
    signals = np.zeros((n, length), dtype=np.float32)
    signals[: n // 2] = pulses(generator, n // 2, SimulationConfig(n_samples=length))[0] * 3.0
    arrays = {"traces": signals + 3.0 * generator.standard_normal((n, length)).astype(np.float32), "signals": signals}
    arrays |= overrides
    np.savez(folder / "radio_data.npz", **{k: v for k, v in arrays.items() if v is not None})
    return arrays


def test_npz_loader_reads_and_normalises(tmp_path):
    arrays = write_npz(tmp_path)
    data = load_npz(tmp_path)
    assert data.train["x"].shape == (36, 1, 500) and data.test["z"].shape == (4, 1, 500)
    assert data.spec == DataSpec((1, 500), "signal", data.spec.value_range, None, (1, 500))
    scale = data.info["normalisation"]["divided_by"]
    assert scale == pytest.approx(3.0, rel=0.02)  # the noise rms of the written traces
    # Every written trace comes back once, divided by the scale, with its own signal.
    x = torch.cat([data.train["x"], data.test["x"]])[:, 0].double() * scale
    z = torch.cat([data.train["z"], data.test["z"]])[:, 0].double() * scale
    order = np.lexsort(x.numpy().T[::-1])
    expected = np.lexsort(arrays["traces"].astype(np.float64).T[::-1])
    np.testing.assert_allclose(x.numpy()[order], arrays["traces"][expected], rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(z.numpy()[order], arrays["signals"][expected], rtol=1e-6, atol=1e-5)
    assert sum(data.info["noise_only"].values()) == 20
    assert (data.test["noise_kind"] == -1).all() and data.info["sampling_mhz"] == 180.0


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"signals": None}, "lacks 'signals'"),
        ({"traces": None, "signals": None}, "lacks 'traces' and 'signals'"),
        ({"signals": np.zeros((40, 499), dtype=np.float32)}, r"'traces' \(40, 500\) and 'signals' \(40, 499\)"),
        ({"traces": np.full((40, 500), np.nan, dtype=np.float32)}, "NaN or infinite"),
    ],
)
def test_npz_loader_rejects_bad_files(tmp_path, overrides, message):
    write_npz(tmp_path, **overrides)
    with pytest.raises(AebenchError, match=message):
        load_npz(tmp_path)


def test_npz_loader_missing_and_corrupt_files(tmp_path):
    with pytest.raises(AebenchError, match="has no radio_data.npz"):
        load_npz(tmp_path)
    (tmp_path / "radio_data.npz").write_text("traces,signals\n0.1,0.0\n")  # a text file under the archive's name
    with pytest.raises(AebenchError, match=r"not an \.npz archive \(a zip of \.npy arrays\): it starts with b'traces'"):
        load_npz(tmp_path)
    (tmp_path / "radio_data.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(AebenchError, match="cannot read .* as a numpy .npz"):
        load_npz(tmp_path)
    with open(tmp_path / "radio_data.npz", "wb") as file:
        np.save(file, np.zeros((40, 500)))
    with pytest.raises(AebenchError, match="holds a single array"):
        load_npz(tmp_path)
    write_npz(tmp_path, signals=np.full((40, 500), "a"))
    with pytest.raises(AebenchError, match="must be numeric"):
        load_npz(tmp_path)


def test_npz_loader_complex_values(tmp_path):
    arrays = write_npz(tmp_path)
    write_npz(tmp_path, traces=arrays["traces"] + 0.5j)
    with pytest.raises(AebenchError, match=r"'traces' holds complex values \(max \|imaginary part\| 0.5\)"):
        load_npz(tmp_path)
    # A complex dtype whose imaginary parts are all zero carries real traces: the real parts are used, and said so.
    write_npz(tmp_path, traces=arrays["traces"].astype(np.complex64), signals=arrays["signals"].astype(np.complex128))
    data = load_npz(tmp_path)
    assert data.train["x"].dtype == torch.float32 and "imaginary parts all zero" in data.info["complex_dtype"]
    assert data.info["normalisation"]["divided_by"] == pytest.approx(3.0, rel=0.02)


def test_npz_loader_needs_signals_in_the_test_split(tmp_path):
    arrays = write_npz(tmp_path)
    with pytest.raises(AebenchError, match="no trace in the file holds a signal"):
        write_npz(tmp_path, signals=np.zeros_like(arrays["signals"]))
        load_npz(tmp_path)
    test_rows = np.random.default_rng(0).permutation(40)[:4]  # the loader's seeded split: 10% test
    signals = arrays["signals"].copy()
    signals[test_rows] = 0.0
    assert np.abs(signals).max() > 0
    write_npz(tmp_path, signals=signals)
    with pytest.raises(AebenchError, match="none of the 4 test traces holds a signal"):
        load_npz(tmp_path)


# --- the embedded data ----------------------------------------------------------------------------------------------
def test_embedded_data_are_cached_by_config(tmp_path):
    first = load_embedded(tmp_path, SMALL)
    (path,) = (tmp_path / "data").iterdir()
    mtime = path.stat().st_mtime_ns
    again = load_embedded(tmp_path, SMALL)
    assert not first.info["from_cache"] and again.info["from_cache"] and path.stat().st_mtime_ns == mtime
    for split in ("train", "test"):
        for key in ("x", "z", "noise_kind"):
            assert torch.equal(getattr(first, split)[key], getattr(again, split)[key])
    assert first.info["sha256"] == again.info["sha256"]
    assert first.train["x"].shape == (1200, 1, 500) and torch.bincount(first.train["noise_kind"]).tolist() == [400] * 3
    assert first.test["noise_kind"][:6].tolist() == [0, 1, 2, 0, 1, 2]  # interleaved: any prefix is balanced
    # The training noise rms: galactic and uniform 1, cosine √(E[u²] + 0.1²) with u ~ U(1, 3), E[u²] = 13/3.
    assert first.info["normalisation"]["divided_by"] == pytest.approx(math.sqrt((2 + 13 / 3 + 0.01) / 3), abs=0.05)
    other = dataclasses.replace(SMALL, train_seed=5)
    assert not load_embedded(tmp_path, other).info["from_cache"] and len(list((tmp_path / "data").iterdir())) == 2


def test_references_no_denoising_and_band_pass(tmp_path):
    task = RadioDenoising(tmp_path, embedded=SMALL)
    data = task.load(None)
    rows = task.references(data, Budget(steps=1, batch_size=1, eval_samples=120), torch.Generator())
    raw, filtered = rows["no denoising (noisy trace)"], rows["band-pass 30–80 MHz"]
    assert raw.metrics["mse"] == pytest.approx(1.0, abs=0.05)  # the noise power, in its own units
    assert filtered.metrics["mse"] < raw.metrics["mse"]
    assert tasks.get("radio-denoising") is RadioDenoising


# --- the baselines --------------------------------------------------------------------------------------------------
def test_baselines_reject_images():
    image = DataSpec(shape=(1, 28, 28), kind="image")
    for name in ("dae", "dae-unet", "ae-1d"):
        cls = models.get(name)
        with pytest.raises(AebenchError, match="needs 1-D signals"):
            cls(cls.Config(), image)


def test_dae_beats_no_denoising_and_plots(tmp_path):
    task = RadioDenoising(tmp_path, embedded=SMALL)
    data = task.load(None)
    model, _ = train_briefly("dae", data, 200, 32, lr=2e-3)
    budget = Budget(steps=200, batch_size=32, eval_samples=120)
    result = task.evaluate(model, data, budget, torch.Generator())
    baseline = task.references(data, budget, torch.Generator())["no denoising (noisy trace)"]
    assert result.metrics["mse"] < 0.5 * baseline.metrics["mse"]
    assert result.metrics["spectral_error"] < baseline.metrics["spectral_error"]
    # At SNR 1.5–8 an all-zero output has a small MSE too (the signal power, ~4% of the noise's): the dae must
    # beat it, i.e. put the pulse back (measured after 200 steps: MSE 0.58× and spectral error 0.28 of zero's 1).
    z, kind = data.test["z"][:120], data.test["noise_kind"][:120]
    silent = score(torch.zeros_like(z), z, kind).metrics
    assert silent["spectral_error"] == 1.0 and silent["accuracy"] == 0.0
    assert result.metrics["mse"] < 0.75 * silent["mse"] and result.metrics["spectral_error"] < 0.5
    assert denoise(model, data.test["x"][:3], data).shape == (3, 1, 500)
    task.save_samples(model, data, tmp_path / "samples.png", torch.Generator())
    assert (tmp_path / "samples.png").read_bytes()[:4] == b"\x89PNG"


def test_plain_ae_learns_to_reproduce_its_input():
    spec = DataSpec(shape=(1, 64), kind="signal", value_range=(-3.0, 3.0), pair_shape=(1, 64))
    torch.manual_seed(0)
    cls = models.get("ae-1d")
    model = cls(cls.Config(hidden=4), spec)
    x = torch.randn(16, 1, 64)
    batch = {"x": x, "z": torch.zeros_like(x)}  # z must be ignored
    optimizers = model.configure_optimizers()
    peak = x.abs().argmax(dim=2)  # (16, 1): the target's peak; the loss weighs ± peak_window samples more
    near = (torch.arange(64) - peak).abs() <= model.config.peak_window  # (16, 64)
    weights = 1.0 + model.config.peak_weight * near.unsqueeze(1).float()
    with torch.no_grad():
        scaled = (model.reconstruct(x) - x) / x.abs().amax(dim=2, keepdim=True)
        before = (scaled.pow(2) * weights).mean().item()
    first = model.training_step(batch, optimizers)["loss"]
    assert first == pytest.approx(before, rel=1e-5)  # against x, not z; each trace divided by its max |x|
    for _ in range(30):
        last = model.training_step(batch, optimizers)["loss"]
    assert last < first and torch.equal(model.translate(x), model.reconstruct(x))


def test_network_bottleneck_skips_and_schedule():
    spec = DataSpec(shape=(1, 500), kind="signal", value_range=(-50.0, 50.0), pair_shape=(1, 500))
    cls = models.get("dae")
    x = torch.randn(3, 1, 500)
    for skip in (True, False):
        torch.manual_seed(0)
        model = cls(cls.Config(skip=skip, groups=2), spec)
        latent, features = model.net.encode(x)
        assert latent.shape == (3, 4, 62)  # the bottleneck: 4 channels × 500 / 8 samples
        assert [f.shape[-1] for f in features] == [500, 250, 125, 62]
        assert model.translate(x).shape == x.shape
    # Without skips (and without the residual option) the output is a function of the bottleneck alone.
    net = model.net
    with torch.no_grad():
        y = net.out(_decode_without_skips(net, latent))
    assert torch.allclose(y, net(x), atol=1e-6)
    with pytest.raises(AebenchError, match="groups=3 must divide hidden=16"):
        cls(cls.Config(hidden=16, groups=3), spec)
    # dae is the notes' plain auto-encoder (everything passes the bottleneck); dae-unet adds a skip per resolution.
    unet_cls = models.get("dae-unet")
    plain, unet = cls(cls.Config(), spec).net, unet_cls(unet_cls.Config(), spec).net
    assert not plain.skip and len(plain.merge) == 0 and unet.skip and len(unet.merge) == 3
    # One-cycle schedule: warm-up to lr, then a cosine decay to ~0 at the last step.
    model = cls(cls.Config(lr=2e-3, warmup=0.1), spec)
    optimizers = model.configure_optimizers()
    (scheduler,) = model.configure_schedulers(optimizers, 100).values()
    lrs = []
    for _ in range(100):
        lrs.append(optimizers["model"].param_groups[0]["lr"])
        optimizers["model"].step()
        scheduler.step()
    assert max(lrs) == pytest.approx(2e-3) and abs(lrs.index(max(lrs)) - 10) <= 1 and lrs[-1] < 1e-5 and lrs[0] < 1e-4


def _decode_without_skips(net, latent):
    y = net.from_latent(latent)
    for up in net.up:
        y = up(y)
    return y
