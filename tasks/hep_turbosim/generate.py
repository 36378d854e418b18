"""pp → tt̄ → b b̄ u d̄ e⁻ ν̄ₑ at 13 TeV with Pythia 8, in parallel processes, cached by a hash of the settings.

Work is cut into chunks of `chunk` selected events; chunk i runs its own Pythia instance seeded from (seed, i), so
the events depend on the config only, not on the number of workers. Chunks are concatenated in order, then split
into train / val / test.

Decays are forced to one charge configuration, the z slots of the OTUS data: t → b W⁺, W⁺ → u d̄ and t̄ → b̄ W⁻,
W⁻ → e⁻ ν̄ₑ (charge-conjugate events are not generated; the rate changes, the kinematics do not). Parton level z is
the six outgoing (status 23) entries of Pythia's process record: the hard process with its resonance decays,
before any shower, i.e. what an LHE file holds.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from functools import partial
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from aebench import cache
from aebench.errors import AebenchError

from . import detector

GENERATOR_VERSION = "2"  # bump when the physics or the detector changes: it is part of the cache hash
SLOTS = (11, -12, 5, -5, 2, -1)  # z order: e⁻, ν̄ₑ, b, b̄, u, d̄ (PDG ids)
PYTHIA_MAX_SEED = 900_000_000


@dataclass(frozen=True)
class GeneratorConfig:
    n_train: int = 60_000
    n_val: int = 10_000
    n_test: int = 30_000
    seed: int = 0
    detector: str = "fast"  # one of detector.DETECTORS
    chunk: int = 5000  # selected events per Pythia instance (one seed each)
    e_cm: float = 13_000.0
    top_mass: float = 172.76  # the reconstruction's m_t (REFERENCE.md)
    w_mass: float = 80.379  # the reconstruction's m_W

    def __post_init__(self) -> None:
        if self.detector not in detector.DETECTORS:
            raise AebenchError(f"hep-turbosim: unknown detector {self.detector!r} (known: {detector.DETECTORS})")
        if min(self.n_train, self.n_test) < 1 or self.n_val < 0 or self.chunk < 1:
            raise AebenchError(f"hep-turbosim: need n_train, n_test, chunk ≥ 1 and n_val ≥ 0, got {self}")

    @property
    def total(self) -> int:
        return self.n_train + self.n_val + self.n_test

    def hash(self) -> str:
        """sha256 of the settings, the generator code version and the Pythia version."""
        settings = {**asdict(self), "code": GENERATOR_VERSION, "pythia8mc": version("pythia8mc")}
        return cache.key_of(settings)


@dataclass
class Generated:
    z: np.ndarray  # (N, 24) parton level, GeV
    x: np.ndarray  # (N, 24) detector level, GeV
    info: dict[str, Any]  # config, hash, efficiency and speed of the run that made the file
    from_cache: bool


def pythia_settings(config: GeneratorConfig, seed: int) -> list[str]:
    settings = [
        f"Beams:eCM = {config.e_cm}",
        "Top:gg2ttbar = on",
        "Top:qqbar2ttbar = on",
        f"6:m0 = {config.top_mass}",
        f"24:m0 = {config.w_mass}",
        "6:onMode = off",
        "6:onIfMatch = 24 5",  # t → W b only
        "24:onMode = off",
        "24:onPosIfMatch = 2 -1",  # W⁺ → u d̄
        "24:onNegIfMatch = -11 12",  # the conjugate of W⁺ → e⁺ νₑ: W⁻ → e⁻ ν̄ₑ
        "Print:quiet = on",
        "Random:setSeed = on",
        f"Random:seed = {seed}",
    ]
    if config.detector == "fast":
        # The fast detector smears the partons themselves: showers, MPI and hadronisation would be thrown away.
        settings += ["PartonLevel:all = off", "HadronLevel:all = off"]
    return settings


def chunk_seeds(config: GeneratorConfig, index: int) -> tuple[int, np.random.Generator]:
    """Pythia's seed (1 … 900,000,000) and the detector's numpy generator for chunk `index`."""
    state = np.random.SeedSequence([config.seed, index]).generate_state(2)
    return int(state[0]) % (PYTHIA_MAX_SEED - 1) + 1, np.random.default_rng(int(state[1]))


def run_chunk(config: GeneratorConfig, index: int, n: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(z, x) of n selected events, each (n, 24), and the number of events Pythia generated for them."""
    import pythia8mc

    seed, rng = chunk_seeds(config, index)
    pythia = pythia8mc.Pythia("", False)
    for line in pythia_settings(config, seed):
        if not pythia.readString(line):
            raise RuntimeError(f"Pythia rejected setting {line!r}")
    if not pythia.init():
        raise RuntimeError("Pythia failed to initialise")
    if config.detector == "fast":
        return _fast_chunk(pythia, n, rng)
    return _fastjet_chunk(pythia, n, rng)


def _partons(process) -> np.ndarray | None:
    """(24,) e⁻, ν̄ₑ, b, b̄, u, d̄ from the status-23 entries of the process record (None if one is missing)."""
    found = {}
    for i in range(5, process.size()):  # 0-4: the system, the beams, the incoming partons
        q = process[i]
        if q.id() in SLOTS and q.status() == 23:
            found[q.id()] = (q.px(), q.py(), q.pz(), q.e())
    if len(found) != len(SLOTS):
        return None
    return np.array([found[pid] for pid in SLOTS], dtype=np.float64).reshape(-1)


def _fast_chunk(pythia, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
    zs, xs, tried, selected = [], [], 0, 0
    while selected < n:
        block = max(2 * (n - selected), 100)  # about 60% pass: one or two blocks per chunk
        z = []
        for _ in range(block):
            if pythia.next():
                event = _partons(pythia.process)
                if event is not None:
                    z.append(event)
        tried += block
        z = np.array(z).reshape(-1, 24)
        z = z[detector.parton_cuts(z)]
        x, keep = detector.fast_response(z, rng)
        zs.append(z[keep])
        xs.append(x[keep])
        selected += int(keep.sum())
    return np.concatenate(zs)[:n], np.concatenate(xs)[:n], tried


def _fastjet_chunk(pythia, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
    zs, xs, tried = [], [], 0
    while len(zs) < n:
        tried += 1
        if not pythia.next():
            continue
        z = _partons(pythia.process)
        if z is None or not detector.parton_cuts(z[None])[0]:
            continue
        event = pythia.event
        electron = _final_electron(event)
        if electron is None:
            continue
        particles = []
        for i in range(event.size()):
            q = event[i]
            if i != electron and q.isFinal() and q.isVisible() and abs(q.eta()) < detector.JET_ETA_MAX:
                particles.append((q.px(), q.py(), q.pz(), q.e()))
        e = event[electron]
        x = detector.fastjet_response(np.array(particles), np.array([e.px(), e.py(), e.pz(), e.e()]), rng)
        if x is not None:
            zs.append(z)
            xs.append(x)
    return np.array(zs), np.array(xs), tried


def _final_electron(event) -> int | None:
    """Index of the final-state copy of the W⁻'s electron (after QED radiation), or None."""
    for i in range(event.size()):
        if event[i].id() == -24:
            w = event[event[i].iBotCopyId()]
            for d in w.daughterList():
                if event[d].id() == 11:
                    j = event[d].iBotCopyId()
                    return j if event[j].isFinal() else None
    return None


def cache_path(config: GeneratorConfig, cache_dir: Path) -> Path:
    return cache.cache_path(cache_dir, "hep-turbosim", config.hash())


def generate(config: GeneratorConfig, cache_dir: Path, workers: int | None = None, progress: bool = True) -> Generated:
    """The events of `config`, from the cache when present, else generated in `workers` processes and cached."""
    shapes = {"z": ((config.total, 24), np.float64), "x": ((config.total, 24), np.float64)}
    found = cache.cached(
        cache_path(config, cache_dir),
        config.hash(),
        partial(_generate, config, workers, progress),
        names=shapes,
        check=lambda arrays, info: (
            cache.shape_mismatch(arrays, shapes)
            or (None if info.get("generator") == asdict(config) else "another generator config")
        ),
        what="hep-turbosim",
    )
    return Generated(found.arrays["z"], found.arrays["x"], found.meta, from_cache=found.from_cache)


def _generate(config: GeneratorConfig, workers: int | None, progress: bool) -> tuple[dict[str, np.ndarray], dict]:
    starts = range(0, config.total, config.chunk)
    chunks = [(i, min(config.chunk, config.total - start)) for i, start in enumerate(starts)]  # (index, events)
    workers = max(1, min(workers or os.cpu_count() or 1, len(chunks)))
    job = partial(_run_chunk_item, config)
    started = time.perf_counter()
    bar = tqdm(
        total=config.total, desc=f"hep-turbosim: Pythia 8 ({config.detector})", unit="ev", disable=not progress or None
    )
    results = []
    with multiprocessing.get_context().Pool(workers) if workers > 1 else nullcontext() as pool:
        for result in pool.imap(job, chunks) if pool is not None else map(job, chunks):  # in chunk order
            results.append(result)
            bar.update(len(result[0]))
    bar.close()
    seconds = time.perf_counter() - started
    z = np.concatenate([r[0] for r in results])
    x = np.concatenate([r[1] for r in results])
    tried = sum(r[2] for r in results)
    info = {
        "generator": asdict(config),
        "hash": config.hash()[:16],
        "pythia8mc": version("pythia8mc"),
        "events_generated": tried,
        "events_selected": len(z),
        "selection_efficiency": round(len(z) / tried, 4),
        "generation_seconds": round(seconds, 2),
        "generation_workers": workers,
        "selected_events_per_second": round(len(z) / seconds, 1),
    }
    return {"z": z, "x": x}, info


def _run_chunk_item(config: GeneratorConfig, chunk: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, int]:
    return run_chunk(config, *chunk)  # one picklable argument, for Pool.imap
