"""Pretrained weight files that some metrics need, found offline and verified by checksum; never downloaded.

A file is looked for in `$AEBENCH_WEIGHTS`, then in torch hub's checkpoint cache (`$TORCH_HOME/hub/checkpoints`,
by default `~/.cache/torch/hub/checkpoints`), under its published file name. Its SHA-256 must start with the
prefix that the publisher puts in that name (torchvision's and pytorch-fid's convention).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class WeightFile:
    key: str
    filename: str
    sha256_prefix: str
    used_by: str

    def candidates(self) -> list[Path]:
        folders = []
        if os.environ.get("AEBENCH_WEIGHTS"):
            folders.append(Path(os.environ["AEBENCH_WEIGHTS"]).expanduser())
        torch_home = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch")).expanduser()
        folders.append(torch_home / "hub" / "checkpoints")
        return [folder / self.filename for folder in folders]


WEIGHTS = {
    weight.key: weight
    for weight in (
        WeightFile(
            "inception",
            "pt_inception-2015-12-05-6726825d.pth",
            "6726825d",
            "Inception-FID (pytorch-fid's port of the TF FID Inception v3)",
        ),
        WeightFile("vgg16", "vgg16-397923af.pth", "397923af", "LPIPS (VGG backbone, torchvision ImageNet weights)"),
    )
}


@dataclass(frozen=True)
class WeightStatus:
    weight: WeightFile
    path: Path | None  # the verified file, if any
    problem: str | None  # why it is not usable

    @property
    def ok(self) -> bool:
        return self.path is not None


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def locate(key: str) -> WeightStatus:
    """The first candidate file whose checksum matches, or the reason none is usable."""
    weight = WEIGHTS[key]
    problems = []
    for path in weight.candidates():
        if not path.is_file():
            continue
        if sha256(path).startswith(weight.sha256_prefix):
            return WeightStatus(weight, path, None)
        problems.append(f"{path} fails its checksum (sha256 should start with {weight.sha256_prefix})")
    if not problems:
        places = " or ".join(str(p.parent) for p in weight.candidates())
        problems.append(f"{weight.filename} not found in {places}")
    return WeightStatus(weight, None, "; ".join(problems))
