"""Data of radio-denoising: the embedded simulation (cached by a content hash), or the published `radio_data.npz`.

Both give TaskData with x = noisy trace and z = clean signal, float32 (N, 1, L), divided by one fixed scale: the
rms of the noise (traces − signals) over the training split, so the noise has rms ≈ 1 and values are of order 1
(peaks up to the largest SNR). The scale is stored in `info["normalisation"]`; metrics are taken in these units.
Splits also hold "noise_kind", int64 (N,): 0 galactic, 1 uniform, 2 cosine, -1 unknown (the published file).
"""

from __future__ import annotations

import dataclasses
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from aebench import cache
from aebench.errors import AebenchError
from aebench.hashing import content_hash
from aebench.model import DataSpec
from aebench.task import TaskData

from .simulate import NOISE_KINDS, SIMULATION_VERSION, SimulationConfig, simulate

REAL_FILE = "radio_data.npz"
REAL_SAMPLING_MHZ = 180.0  # the published traces: 500 samples at 180 MHz
REAL_SPLIT_SEED = 0
REAL_TEST_FRACTION = 0.1
UNKNOWN_KIND = -1
ZIP_MAGIC = b"PK"  # an .npz archive is a zip file (PK\x03\x04, or PK\x05\x06 when empty)
NPY_MAGIC = b"\x93NUMPY"  # a single array saved with np.save


@dataclass(frozen=True)
class EmbeddedConfig:
    """The embedded data set: simulated traces, each noise kind equally often."""

    simulation: SimulationConfig = field(default_factory=SimulationConfig)
    n_train_per_kind: int = 6000
    n_test_per_kind: int = 1000
    train_seed: int = 0
    test_seed: int = 1


def config_hash(config: EmbeddedConfig) -> str:
    """sha256 of the generator config and the simulation code version: the cache key of the generated data."""
    return cache.key_of({"config": dataclasses.asdict(config), "version": SIMULATION_VERSION})


def load_embedded(cache_dir: Path, config: EmbeddedConfig = EmbeddedConfig()) -> TaskData:
    """The simulated traces, generated once per config and cached in `cache_dir/data`."""
    key = config_hash(config)

    def generate() -> tuple[dict[str, np.ndarray], dict]:
        train = simulate(config.train_seed, config.n_train_per_kind, config.simulation, interleave=False)
        test = simulate(config.test_seed, config.n_test_per_kind, config.simulation, interleave=True)
        return {f"{split}_{k}": v for split, d in (("train", train), ("test", test)) for k, v in d.items()}, {}

    found = cache.cached(cache.cache_path(cache_dir, "radio-denoising", key), key, generate, what="radio-denoising")
    arrays, from_cache = found.arrays, found.from_cache
    return _task_data(
        arrays,
        sampling_mhz=config.simulation.sampling_mhz,
        source=f"embedded: simulated air-shower pulses, {', '.join(NOISE_KINDS)} noise",
        info={
            "generator": {**dataclasses.asdict(config), "version": SIMULATION_VERSION},
            "generator_hash": key[:12],
            "from_cache": from_cache,
            "split_method": "independent simulations (train seed, test seed); test interleaves the noise kinds",
        },
    )


def load_npz(data_dir: Path) -> TaskData:
    """The published `radio_data.npz` (traces and signals (N, L); signals all zero for noise-only traces).

    A seeded shuffle (seed 0) puts 10% of the traces in test. The file has no noise-kind labels.
    """
    data_dir = Path(data_dir).expanduser()
    path = data_dir / REAL_FILE
    if not path.is_file():
        raise AebenchError(f"radio-denoising: {data_dir} has no {REAL_FILE} (arrays 'traces' and 'signals', (N, 500))")
    with open(path, "rb") as handle:
        head = handle.read(6)
    if head.startswith(NPY_MAGIC):
        raise AebenchError(f"radio-denoising: {path} holds a single array, expected an .npz archive")
    if not head.startswith(ZIP_MAGIC):
        raise AebenchError(
            f"radio-denoising: {path} is not an .npz archive (a zip of .npy arrays): it starts with {head!r}"
        )
    try:
        with np.load(path, allow_pickle=False) as file:
            missing = [key for key in ("traces", "signals") if key not in file.files]
            if missing:
                raise AebenchError(
                    f"radio-denoising: {path} lacks {' and '.join(repr(k) for k in missing)} (has {file.files})"
                )
            traces, signals = file["traces"], file["signals"]
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise AebenchError(f"radio-denoising: cannot read {path} as a numpy .npz file ({error})") from None
    if traces.ndim != 2 or traces.shape != signals.shape:
        raise AebenchError(
            f"radio-denoising: {path}: 'traces' {traces.shape} and 'signals' {signals.shape} must both be (N, L)"
        )
    if len(traces) < 10 or traces.shape[1] < 32:
        raise AebenchError(f"radio-denoising: {path}: {traces.shape} is too small (need N ≥ 10 traces of L ≥ 32)")
    if not (np.issubdtype(traces.dtype, np.number) and np.issubdtype(signals.dtype, np.number)):
        raise AebenchError(f"radio-denoising: {path}: arrays must be numeric, got {traces.dtype}, {signals.dtype}")
    if not (np.isfinite(traces).all() and np.isfinite(signals).all()):
        raise AebenchError(f"radio-denoising: {path} holds NaN or infinite values")
    complex_dtype = [name for name, a in (("traces", traces), ("signals", signals)) if np.iscomplexobj(a)]
    for name, values in (("traces", traces), ("signals", signals)):
        if np.iscomplexobj(values) and np.any(values.imag != 0):
            raise AebenchError(
                f"radio-denoising: {path}: '{name}' holds complex values (max |imaginary part| "
                f"{np.abs(values.imag).max():.3g}); expected real voltage traces"
            )
    traces, signals = np.real(traces), np.real(signals)  # a complex dtype with zero imaginary parts is kept
    order = np.random.default_rng(REAL_SPLIT_SEED).permutation(len(traces))
    n_test = max(1, round(REAL_TEST_FRACTION * len(traces)))
    with_signal = np.abs(signals).max(axis=1) > 0
    if not with_signal[order[:n_test]].any():
        where = "no trace in the file" if not with_signal.any() else f"none of the {n_test} test traces"
        raise AebenchError(
            f"radio-denoising: {path}: {where} holds a signal ('signals' all zero there), so no accuracy can be "
            f"taken (test = {REAL_TEST_FRACTION:.0%} of the traces, shuffled with seed {REAL_SPLIT_SEED})"
        )
    kind = np.full(len(traces), UNKNOWN_KIND, dtype=np.int64)
    arrays = {}
    for split, rows in (("test", order[:n_test]), ("train", order[n_test:])):
        arrays |= {
            f"{split}_traces": traces[rows],
            f"{split}_signals": signals[rows],
            f"{split}_noise_kind": kind[rows],
        }
    return _task_data(
        arrays,
        sampling_mhz=REAL_SAMPLING_MHZ,
        source=f"radio_data.npz: {path}",
        info={
            "split_seed": REAL_SPLIT_SEED,
            "split_method": f"seeded shuffle, {REAL_TEST_FRACTION:.0%} test",
            **(
                {"complex_dtype": f"{', '.join(complex_dtype)}: imaginary parts all zero, real parts used"}
                if complex_dtype
                else {}
            ),
        },
    )


def _task_data(arrays: dict[str, np.ndarray], *, sampling_mhz: float, source: str, info: dict) -> TaskData:
    """Normalise by the training noise rms and wrap as TaskData."""
    noise = arrays["train_traces"].astype(np.float64) - arrays["train_signals"]
    scale = float(np.sqrt(np.mean(noise**2)))
    if not scale > 0:
        raise AebenchError(f"radio-denoising: {source}: traces equal signals (no noise), nothing to denoise")
    splits = {}
    for split in ("train", "test"):
        splits[split] = {
            "x": _signal(arrays[f"{split}_traces"], scale),
            "z": _signal(arrays[f"{split}_signals"], scale),
            "noise_kind": torch.from_numpy(np.ascontiguousarray(arrays[f"{split}_noise_kind"], dtype=np.int64)),
        }
    length = splits["train"]["x"].shape[-1]
    spec = DataSpec(
        shape=(1, length),
        kind="signal",
        value_range=(float(splits["train"]["x"].min()), float(splits["train"]["x"].max())),
        pair_shape=(1, length),
    )
    n_noise_only = {split: int((d["z"].abs().amax(dim=(1, 2)) == 0).sum()) for split, d in splits.items()}
    return TaskData(
        train=splits["train"],
        test=splits["test"],
        spec=spec,
        source=source,
        info={
            "split": {split: len(d["x"]) for split, d in splits.items()},
            "noise_only": n_noise_only,
            "samples": length,
            "sampling_mhz": sampling_mhz,
            "normalisation": {"divided_by": scale, "what": "rms of traces − signals over the training split"},
            **info,
            "sha256": {split: content_hash(d)[:12] for split, d in splits.items()},
        },
    )


def _signal(values: np.ndarray, scale: float) -> torch.Tensor:
    return torch.from_numpy((values.astype(np.float64) / scale).astype(np.float32)).unsqueeze(1)  # (N, 1, L)
