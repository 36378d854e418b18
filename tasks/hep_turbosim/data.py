"""The tt̄ events as TaskData: the embedded Pythia 8 sample (generate.py) or the published OTUS HDF5 files.

Both give x = detector level (N, 24) and z = parton level (N, 24) in GeV, normalised as the Turbo-Sim authors do
(`utils/data.py: normalize`): one scalar mean and one scalar standard deviation per space, over all 24 features of
the training and validation rows together. The normalisation is stored in `TaskData.info["normalisation"]` so that
evaluation can return to GeV. `fit_normalisation(..., method="per-feature")` keeps the per-feature alternative.

Split sizes: the published ones (`PUBLISHED_SPLIT`: 200,000 train, 50,000 validation, 160,000 test) when a budget
needs them (`paper`, `paper-otus`); otherwise the embedded default's, and for OTUS files smaller than the published
split, their first rows (`small_split`), recorded in `info["split"]`.
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
PUBLISHED_SPLIT = {"train": 200_000, "val": 50_000, "test": 160_000}  # Turbo-Sim's (run.py), the table's protocol
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


def small_split(n_file: int, n_test_file: int) -> dict[str, int]:
    """The split of OTUS files at a budget that does not need the published sizes: the published sizes where the
    files hold them, else train and validation in the published 4 : 1 ratio of the first file's rows and the whole
    test file."""
    train, val = PUBLISHED_SPLIT["train"], PUBLISHED_SPLIT["val"]
    if n_file < train + val:
        train = n_file * 4 // 5
        val = n_file - train
    return {"train": train, "val": val, "test": min(n_test_file, PUBLISHED_SPLIT["test"])}


def load_otus(data_dir: Path, published_split: bool = True) -> TaskData:
    """The OTUS files in `data_dir`: train = the first rows of ppttbar.hdf5, val = the next ones, test = the first
    rows of ppttbar_test.hdf5. With `published_split` the files must hold 200,000 + 50,000 and 160,000 events;
    without it, smaller files give `small_split` of their rows."""
    data_dir = Path(data_dir).expanduser()
    z, x = read_otus(data_dir / OTUS_TRAIN)
    z_test, x_test = read_otus(data_dir / OTUS_TEST)
    if published_split:
        split = dict(PUBLISHED_SPLIT)
        if len(z) < split["train"] + split["val"]:
            raise AebenchError(
                f"hep-turbosim: {data_dir / OTUS_TRAIN} has {len(z)} events, the published split of this budget "
                f"needs {split['train'] + split['val']} (train + validation)"
            )
        if len(z_test) < split["test"]:
            raise AebenchError(
                f"hep-turbosim: {data_dir / OTUS_TEST} has {len(z_test)} events, the published split of this budget "
                f"needs {split['test']}"
            )
    else:
        split = small_split(len(z), len(z_test))
        if min(split.values()) < 2:
            raise AebenchError(
                f"hep-turbosim: {data_dir} holds too few events ({len(z)} in {OTUS_TRAIN}, {len(z_test)} in "
                f"{OTUS_TEST}) for a train, validation and test split"
            )
    n_train, n_val, n_test = split["train"], split["val"], split["test"]
    val = slice(n_train, n_train + n_val)
    return _task_data(
        z=(z[:n_train], z[val], z_test[:n_test]),
        x=(x[:n_train], x[val], x_test[:n_test]),
        source=f"otus-hdf5: {data_dir}",
        info={
            "files": {OTUS_TRAIN: len(z), OTUS_TEST: len(z_test)},
            "split_method": f"{'published' if published_split else 'first rows'}: first rows of {OTUS_TRAIN} for "
            f"train then val (the rest unused); first rows of {OTUS_TEST} for test",
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
NORMALISATIONS = ("global", "per-feature")


def fit_normalisation(z: np.ndarray, x: np.ndarray, method: str = "global") -> dict:
    """The mean and std (ddof 0) of each space in GeV, from the rows given (train + validation for "global").

    "global": one scalar per space over all of its features, as the Turbo-Sim authors' `normalize`; "per-feature":
    one per feature, where a std below 1e-6 GeV (a constant such as MET p_z) becomes 1.
    """
    if method == "global":
        return {"z_mean": float(z.mean()), "z_std": float(z.std()), "x_mean": float(x.mean()), "x_std": float(x.std())}
    if method != "per-feature":
        raise AebenchError(f"hep-turbosim: unknown normalisation {method!r} (known: {NORMALISATIONS})")
    std = lambda a: np.where(a.std(axis=0) < 1e-6, 1.0, a.std(axis=0))  # noqa: E731
    return {
        "z_mean": z.mean(axis=0).tolist(),
        "z_std": std(z).tolist(),
        "x_mean": x.mean(axis=0).tolist(),
        "x_std": std(x).tolist(),
    }


def to_gev(values: torch.Tensor, normalisation: dict, space: str) -> np.ndarray:
    """Normalised (N, 24) values of space "x" or "z" → float64 GeV."""
    mean, std = np.asarray(normalisation[f"{space}_mean"]), np.asarray(normalisation[f"{space}_std"])
    return values.detach().cpu().double().numpy() * std + mean


def _normalised(a: np.ndarray, normalisation: dict, space: str) -> torch.Tensor:
    mean, std = np.asarray(normalisation[f"{space}_mean"]), np.asarray(normalisation[f"{space}_std"])
    return torch.from_numpy(((a - mean) / std).astype(np.float32))


def _task_data(z: tuple, x: tuple, source: str, info: dict) -> TaskData:
    """TaskData from (train, val, test) arrays in GeV, normalised with the train + validation rows."""
    normalisation = fit_normalisation(np.concatenate(z[:2]), np.concatenate(x[:2]))
    splits = [{"x": _normalised(xs, normalisation, "x"), "z": _normalised(zs, normalisation, "z")} for xs, zs in
              zip(x, z)]  # fmt: skip
    train, valid, test = splits
    low, high = float(train["x"].min()), float(train["x"].max())
    spec = DataSpec(shape=(24,), kind="vector", value_range=(math.floor(low), math.ceil(high)), pair_shape=(24,))
    return TaskData(
        train=train,
        test=test,
        valid=valid,
        spec=spec,
        source=source,
        info={
            "split": {"train": len(x[0]), "val": len(x[1]), "test": len(x[2])},
            **info,
            "normalisation": {
                "method": "one scalar (v − mean) / std per space over all features of the train + validation rows "
                "(the Turbo-Sim authors' normalize)",
                **normalisation,
            },
            "value_range": spec.value_range,
            "sha256": {
                "train": content_hash(train)[:12],
                "val": content_hash(valid)[:12],
                "test": content_hash(test)[:12],
            },  # fmt: skip
        },
    )
