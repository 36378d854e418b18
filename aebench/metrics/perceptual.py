"""Perceptual metrics on pretrained networks: LPIPS (VGG) and the FID Inception feature space.

Both exist only where their optional packages (`pip install 'aebench[perceptual]'`) import and their weight files
are found offline with the right checksum (`aebench.weights.locate`); elsewhere constructing them raises
AebenchError("unavailable: <reason>"), which a task records instead of a number. Nothing is ever downloaded: each
network is built without pretrained weights and then given the verified local file.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from aebench.errors import AebenchError
from aebench.features import FeatureExtractor
from aebench.metrics.base import Metric, check_finite
from aebench.registry import extractors, metrics
from aebench.weights import WEIGHTS, locate

INSTALL_HINT = "pip install 'aebench[perceptual]'"
INCEPTION_SIZE = 299  # pytorch-fid resizes every image to 299 × 299 (bilinear, align_corners=False)
INCEPTION_DIM = 2048  # pool3: the final average pooling
LPIPS_MIN_SIZE = 16  # VGG16 halves the image four times before relu5_3


def _import_reason(module: str, distribution: str) -> str | None:
    """None when `module` imports, else why not; any exception counts (a torchvision built for another torch)."""
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name is not None and module.split(".")[0] == error.name.split(".")[0]:
            return f"unavailable: {distribution} is not installed ({INSTALL_HINT})"
        return _broken(distribution, error)  # the package is there but one of its own imports is missing
    except Exception as error:
        return _broken(distribution, error)
    return None


def _broken(distribution: str, error: BaseException) -> str:
    first_line = (f"{type(error).__name__}: {error}".splitlines() or [""])[0]
    return f"unavailable: {distribution} is installed but broken: {first_line}"


def _weights_reason(key: str) -> str | None:
    return _weights(key)[1]


def _weights(key: str) -> tuple[os.PathLike | None, str | None]:
    """The verified weight file, or the reason there is none."""
    status = locate(key)
    return status.path, (None if status.ok else f"unavailable: {status.problem}")


def _lpips_packages_reason() -> str | None:
    return _import_reason("torchvision", "torchvision") or _import_reason("lpips", "lpips")


def _inception_packages_reason() -> str | None:
    reason = _import_reason("torchvision", "torchvision") or _import_reason("pytorch_fid.inception", "pytorch-fid")
    return reason or _pytorch_fid_layout_reason()


def availability_of_lpips() -> str | None:
    """None when LPIPS (VGG) can be built offline, else a one-line reason starting with "unavailable: "."""
    return _lpips_packages_reason() or _weights_reason("vgg16")


def availability_of_inception() -> str | None:
    """None when pytorch-fid's FID Inception can be built offline, else a one-line reason."""
    return _inception_packages_reason() or _weights_reason("inception")


def perceptual_status() -> dict[str, str | None]:
    """{"lpips": reason or None, "inception": reason or None}: for doctor-like reports."""
    return {"lpips": availability_of_lpips(), "inception": availability_of_inception()}


def _require(reason: str | None) -> None:
    if reason is not None:
        raise AebenchError(reason)


def _required_weights(key: str) -> os.PathLike:
    path, reason = _weights(key)  # hashed once: the files are about 90 MB (inception) and 530 MB (vgg16)
    _require(reason)
    return path


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _load_state_dict(path: os.PathLike) -> dict[str, Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)


# --- LPIPS -------------------------------------------------------------------------------------------------------


def _vgg_features_state(net: nn.Module, vgg16_state: dict[str, Tensor]) -> dict[str, Tensor]:
    """torchvision's VGG16 `features.<i>.*` entries renamed to lpips' `slice<k>.<i>.*` (the same layers, sliced)."""
    renamed = {}
    for key in net.state_dict():
        match = re.fullmatch(r"slice\d+\.(\d+)\.(weight|bias)", key)
        source = f"features.{match.group(1)}.{match.group(2)}" if match else None
        if source not in vgg16_state:
            raise AebenchError(
                f"lpips: cannot map its VGG parameter '{key}' to torchvision's VGG16 weights "
                f"(lpips {_version('lpips')} has an unexpected layout)"
            )
        renamed[key] = vgg16_state[source]
    return renamed


def build_lpips_network() -> nn.Module:
    """lpips' VGG LPIPS v0.1, its VGG16 trunk loaded from the verified local torchvision file, in eval mode."""
    _require(_lpips_packages_reason())
    path = _required_weights("vgg16")
    import lpips

    # pnet_rand: the trunk starts random, so torchvision downloads nothing; pretrained: the linear layers come
    # from weights/v0.1/vgg.pth inside the lpips package.
    network = lpips.LPIPS(net="vgg", version="0.1", pretrained=True, pnet_rand=True, verbose=False)
    trunk = network.net
    trunk.load_state_dict(_vgg_features_state(trunk, _load_state_dict(path)), strict=True)
    network.eval()
    for parameter in network.parameters():
        parameter.requires_grad_(False)
    return network


def _to_lpips_input(images: Tensor, value_range: tuple[float, float], what: str) -> Tensor:
    """(N, H, W), (N, 1, H, W) or (N, 3, H, W) in `value_range` → (N, 3, H, W) float32 in [-1, 1]."""
    if images.dim() == 3:
        images = images.unsqueeze(1)
    if images.dim() != 4 or images.shape[1] not in (1, 3) or len(images) == 0:
        raise AebenchError(f"{what}: expected (N, H, W) or (N, 1 or 3, H, W) images, got shape {tuple(images.shape)}")
    if min(images.shape[-2:]) < LPIPS_MIN_SIZE:
        raise AebenchError(
            f"{what}: images must be at least {LPIPS_MIN_SIZE} × {LPIPS_MIN_SIZE} for VGG16, "
            f"got {tuple(images.shape[-2:])}"
        )
    check_finite(images, what)
    low, high = value_range
    images = 2 * (images.detach().float() - low) / (high - low) - 1
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


def _check_value_range(value_range: tuple[float, float], what: str) -> tuple[float, float]:
    low, high = (float(v) for v in value_range)
    if not low < high:
        raise AebenchError(f"{what}: value_range must be (low, high) with low < high, got {value_range!r}")
    return low, high


@metrics.register("lpips")
class LPIPS(Metric):
    """LPIPS v0.1 with the VGG trunk (Zhang et al. 2018), mean over image pairs; grayscale repeated to RGB.

    Images are in `value_range` (default [-1, 1], lpips' convention) and rescaled to [-1, 1].
    """

    name = "lpips"
    higher_is_better = False
    description = "mean over image pairs of LPIPS v0.1 (lpips package, VGG16 trunk), inputs rescaled to [-1, 1]"

    def __init__(
        self, value_range: tuple[float, float] = (-1.0, 1.0), device: torch.device | str = "cpu", **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.value_range = _check_value_range(value_range, self.name)
        self.network = build_lpips_network()  # a submodule: `to(device)` moves it with the states
        self.add_state("total", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")
        self.to(device)

    def per_image(self, prediction: Tensor, target: Tensor) -> Tensor:
        """(N,) LPIPS distance of each pair."""
        if prediction.shape != target.shape:
            raise AebenchError(f"lpips: shapes differ: {tuple(prediction.shape)} and {tuple(target.shape)}")
        x = _to_lpips_input(prediction, self.value_range, "lpips prediction").to(self.device)
        y = _to_lpips_input(target, self.value_range, "lpips target").to(self.device)
        with torch.no_grad(), torch.autocast(self.device.type, enabled=False):
            return self.network(x, y).flatten().double().cpu()  # (N, 1, 1, 1) → (N,)

    def update(self, prediction: Tensor, target: Tensor) -> None:
        values = self.per_image(prediction, target)
        self.total += values.sum().to(self.total.device)  # summed on the CPU: the same bits on any device
        self.count += len(values)

    def compute(self) -> Tensor:
        if self.count == 0:
            raise AebenchError("lpips: no images were given")
        return self.total / self.count

    def describe(self) -> dict[str, Any]:
        weight = WEIGHTS["vgg16"]
        return {
            "name": self.name,
            "net": "vgg",
            "version": "0.1",
            "trunk_weights": weight.filename,
            "sha256": weight.sha256_prefix,
            "lpips": _version("lpips"),
            "value_range": list(self.value_range),
        }


# --- FID Inception -------------------------------------------------------------------------------------------------

_PATCH_LOCK = threading.Lock()


def _pytorch_fid_layout_reason() -> str | None:
    """pytorch-fid loads its weights through `load_state_dict_from_url` in `pytorch_fid.inception`; aebench swaps
    that function for a local loader, so a release without it cannot be used without downloading."""
    module = importlib.import_module("pytorch_fid.inception")
    missing = [n for n in ("InceptionV3", "load_state_dict_from_url", "FID_WEIGHTS_URL") if not hasattr(module, n)]
    if missing:
        return (
            f"unavailable: pytorch-fid {_version('pytorch-fid')} has an unexpected layout (no "
            f"{', '.join(missing)}), so its weights cannot be loaded offline"
        )
    expected = WEIGHTS["inception"].filename
    if not str(module.FID_WEIGHTS_URL).endswith("/" + expected):
        return (
            f"unavailable: pytorch-fid {_version('pytorch-fid')} expects weights {module.FID_WEIGHTS_URL}, "
            f"not {expected}"
        )
    return None


@contextmanager
def _local_fid_weights(module: Any, path: os.PathLike) -> Iterator[None]:
    """Within the block, pytorch-fid's weight download reads the verified local file instead."""
    expected = WEIGHTS["inception"].filename

    def load_local(url: str, *args: Any, **kwargs: Any) -> dict[str, Tensor]:
        if not str(url).endswith("/" + expected):
            raise AebenchError(f"inception: pytorch-fid asked for {url}, not the verified {expected}")
        return _load_state_dict(path)

    with _PATCH_LOCK:
        original = module.load_state_dict_from_url
        module.load_state_dict_from_url = load_local
        try:
            yield
        finally:
            module.load_state_dict_from_url = original


def build_fid_inception() -> nn.Module:
    """pytorch-fid's InceptionV3 (FID weights, pool3 only), built from the verified local file, in eval mode."""
    _require(_inception_packages_reason())
    path = _required_weights("inception")
    fid_inception = importlib.import_module("pytorch_fid.inception")
    block = fid_inception.InceptionV3.BLOCK_INDEX_BY_DIM[INCEPTION_DIM]
    with _local_fid_weights(fid_inception, path):
        network = fid_inception.InceptionV3(
            [block], resize_input=True, normalize_input=True, requires_grad=False, use_fid_inception=True
        )
    return network.eval()


@extractors.register("inception")
class InceptionExtractor(FeatureExtractor):
    """2048-d pool3 features of pytorch-fid's FID Inception (the TF FID network), as pytorch-fid computes them."""

    name = "inception"
    description = (
        "pool3 (2048-d) of pytorch-fid's FID Inception v3; images rescaled to [0, 1], grayscale "
        "repeated to RGB, resized bilinearly to 299 × 299"
    )

    def __init__(self, value_range: tuple[float, float] = (0.0, 1.0), device: torch.device | str = "cpu") -> None:
        self.value_range = _check_value_range(value_range, self.name)
        self.network = build_fid_inception().to(device)

    @property
    def device(self) -> torch.device:
        return next(self.network.parameters()).device

    def to(self, device: torch.device | str) -> InceptionExtractor:
        self.network.to(device)
        return self

    def features(self, images: Tensor, batch_size: int = 100) -> Tensor:
        """(N, H, W) or (N, 1 or 3, H, W) images in `value_range` (default [0, 1]) → (N, 2048), extractor's device."""
        if images.dim() == 3:
            images = images.unsqueeze(1)
        if images.dim() != 4 or images.shape[1] not in (1, 3) or len(images) == 0:
            raise AebenchError(
                f"inception: expected (N, H, W) or (N, 1 or 3, H, W) images, got shape {tuple(images.shape)}"
            )
        check_finite(images, self.name)
        low, high = self.value_range
        out = []
        with torch.no_grad(), torch.autocast(self.device.type, enabled=False):
            for batch in images.split(batch_size):
                x = (batch.to(self.device, torch.float32) - low) / (high - low)  # pytorch-fid's input range [0, 1]
                x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
                out.append(self.network(x)[0].flatten(1))  # (B, 2048, 1, 1) → (B, 2048)
        return torch.cat(out)

    def describe(self) -> dict[str, Any]:
        weight = WEIGHTS["inception"]
        return {
            "name": self.name,
            "weights": weight.filename,
            "sha256": weight.sha256_prefix,
            "feature_dim": INCEPTION_DIM,
            "input": f"values in [{self.value_range[0]:g}, {self.value_range[1]:g}] → [0, 1], "
            f"bilinear resize to {INCEPTION_SIZE}",
            "pytorch_fid": _version("pytorch-fid"),
        }
