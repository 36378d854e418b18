"""The tt̄ events as TaskData: the embedded Pythia 8 sample (generate.py) or the published OTUS HDF5 files.

Both give x = detector level (N, 24) and z = parton level (N, 24) in GeV, standardised per feature with the mean
and standard deviation of the training split (a constant feature, MET p_z, keeps std 1). The normalisation is
stored in `TaskData.info["normalisation"]` so that evaluation can return to GeV.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from aebench.errors import AebenchError
from aebench.hashing import content_hash
from aebench.model import DataSpec
from aebench.task import TaskData

from .generate import GeneratorConfig, generate

COMPONENTS = ("px", "py", "pz", "E")
Z_OBJECTS = ("e-", "nu_e~", "b", "b~", "u", "d~")
X_OBJECTS = ("electron", "MET", "jet1", "jet2", "jet3", "jet4")
Z_FEATURES = tuple(f"{o} {c}" for o in Z_OBJECTS for c in COMPONENTS)
X_FEATURES = tuple(f"{o} {c}" for o in X_OBJECTS for c in COMPONENTS)

# Histogram ranges (GeV) of the Turbo-Sim authors' plots, per object; 20 bins each.
ELECTRON_RANGES = ((-150.0, 150.0), (-150.0, 150.0), (-500.0, 500.0), (0.0, 500.0))
NEUTRINO_RANGES = ((-150.0, 150.0), (-150.0, 150.0), (-3000.0, 3000.0), (0.0, 3000.0))  # ν̄ₑ and MET
JET_RANGES = ((-250.0, 250.0), (-250.0, 250.0), (-1250.0, 1250.0), (0.0, 1250.0))  # quarks and jets
Z_RANGES = ELECTRON_RANGES + NEUTRINO_RANGES + 4 * JET_RANGES
X_RANGES = Z_RANGES  # same object kinds in the same slots: electron, ν̄ₑ / MET, four quarks / jets

OTUS_TRAIN, OTUS_TEST = "ppttbar.hdf5", "ppttbar_test.hdf5"
OTUS_SPLIT = {"train": 200_000, "val": 50_000, "test": 160_000}  # as Turbo-Sim used them
EXPECTED = f"{OTUS_TRAIN} and {OTUS_TEST} with datasets FDL/zData (z) and ROL/xData (x), each (N, 24)"


def load_generated(config: GeneratorConfig, cache_dir: Path, progress: bool = True) -> TaskData:
    """The embedded default: Pythia 8 events with the config's detector, cached under `cache_dir / "data"`."""
    events = generate(config, cache_dir, progress=progress)
    n_train, n_val = config.n_train, config.n_val
    val = slice(n_train, n_train + n_val)
    return _task_data(
        z=(events.z[:n_train], events.z[val], events.z[n_train + n_val :]),
        x=(events.x[:n_train], events.x[val], events.x[n_train + n_val :]),
        source=f"embedded: Pythia 8 pp → tt̄ (e⁻ channel), {config.detector} detector, seed {config.seed}",
        info={**events.info, "split_method": "chunks in seed order: first n_train, next n_val, last n_test"},
    )


def load_otus(data_dir: Path, n_train: int = 200_000, n_val: int = 50_000, n_test: int = 160_000) -> TaskData:
    """The OTUS files in `data_dir`: train = the first n_train rows of ppttbar.hdf5, val = the next n_val, test = the
    first n_test rows of ppttbar_test.hdf5."""
    data_dir = Path(data_dir).expanduser()
    z, x = read_otus(data_dir / OTUS_TRAIN)
    z_test, x_test = read_otus(data_dir / OTUS_TEST)
    if len(z) < n_train + n_val:
        raise AebenchError(
            f"hep-turbosim: {data_dir / OTUS_TRAIN} has {len(z)} events, the split needs {n_train + n_val}"
        )
    if len(z_test) < n_test:
        raise AebenchError(f"hep-turbosim: {data_dir / OTUS_TEST} has {len(z_test)} events, the split needs {n_test}")
    val = slice(n_train, n_train + n_val)
    return _task_data(
        z=(z[:n_train], z[val], z_test[:n_test]),
        x=(x[:n_train], x[val], x_test[:n_test]),
        source=f"otus-hdf5: {data_dir}",
        info={
            "files": {OTUS_TRAIN: len(z), OTUS_TEST: len(z_test)},
            "split_method": f"first rows of {OTUS_TRAIN} for train then val (the rest unused); first rows of "
            f"{OTUS_TEST} for test",
        },
    )


def read_otus(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(z, x) float64 (N, 24) from one OTUS HDF5 file (FDL/zData, ROL/xData)."""
    import h5py

    if not path.is_file():
        raise AebenchError(f"hep-turbosim: {path} does not exist; expected {EXPECTED}")
    try:
        with h5py.File(path, "r") as f:
            arrays = []
            for key in ("FDL/zData", "ROL/xData"):
                if key not in f:
                    raise AebenchError(f"hep-turbosim: {path} has no dataset {key}; expected {EXPECTED}")
                arrays.append(np.asarray(f[key], dtype=np.float64))
    except OSError as error:
        raise AebenchError(f"hep-turbosim: cannot read {path} as HDF5 ({error})") from None
    z, x = arrays
    for name, a in (("FDL/zData", z), ("ROL/xData", x)):
        if a.ndim != 2 or a.shape[1] != 24:
            raise AebenchError(f"hep-turbosim: {path}: {name} has shape {a.shape}, expected (N, 24)")
        if not np.isfinite(a).all():
            raise AebenchError(f"hep-turbosim: {path}: {name} holds NaN or infinite values")
    if len(z) != len(x):
        raise AebenchError(f"hep-turbosim: {path}: FDL/zData has {len(z)} events but ROL/xData {len(x)}")
    return z, x


# --- normalisation ------------------------------------------------------------------------------------------------
def fit_normalisation(train_z: np.ndarray, train_x: np.ndarray) -> dict[str, list[float]]:
    """Per-feature mean and std (ddof 0) of the training split; a std below 1e-6 GeV (a constant) becomes 1."""
    std = lambda a: np.where(a.std(axis=0) < 1e-6, 1.0, a.std(axis=0))  # noqa: E731
    return {
        "z_mean": train_z.mean(axis=0).tolist(),
        "z_std": std(train_z).tolist(),
        "x_mean": train_x.mean(axis=0).tolist(),
        "x_std": std(train_x).tolist(),
    }


def to_gev(values: torch.Tensor, normalisation: dict, space: str) -> np.ndarray:
    """Normalised (N, 24) values of space "x" or "z" → float64 GeV."""
    mean, std = np.asarray(normalisation[f"{space}_mean"]), np.asarray(normalisation[f"{space}_std"])
    return values.detach().cpu().double().numpy() * std + mean


def _normalised(a: np.ndarray, normalisation: dict, space: str) -> torch.Tensor:
    mean, std = np.asarray(normalisation[f"{space}_mean"]), np.asarray(normalisation[f"{space}_std"])
    return torch.from_numpy(((a - mean) / std).astype(np.float32))


def _task_data(z: tuple, x: tuple, source: str, info: dict) -> TaskData:
    """TaskData from (train, val, test) arrays in GeV; val is counted in the info, not returned (no runner slot)."""
    normalisation = fit_normalisation(z[0], x[0])
    train = {"x": _normalised(x[0], normalisation, "x"), "z": _normalised(z[0], normalisation, "z")}
    test = {"x": _normalised(x[2], normalisation, "x"), "z": _normalised(z[2], normalisation, "z")}
    low, high = float(train["x"].min()), float(train["x"].max())
    spec = DataSpec(shape=(24,), kind="vector", value_range=(math.floor(low), math.ceil(high)), pair_shape=(24,))
    return TaskData(
        train=train,
        test=test,
        spec=spec,
        source=source,
        info={
            "split": {"train": len(x[0]), "val": len(x[1]), "test": len(x[2])},
            **info,
            "normalisation": {"method": "per-feature (v − mean) / std of the training split", **normalisation},
            "value_range": spec.value_range,
            "sha256": {"train": content_hash(train)[:12], "test": content_hash(test)[:12]},
        },
    )
