"""LPIPS and the FID Inception extractor: available only with their packages and verified weights, else a reason.

torchvision, lpips and pytorch-fid are absent here, so real LPIPS / Inception values cannot be tested; the
loading path (no download, the verified local file loaded into the network) is tested on fake packages that
mimic the structure of lpips 0.1.4 and pytorch-fid 0.3.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import types

import pytest
import torch

from aebench import weights
from aebench.errors import AebenchError
from aebench.metrics.perceptual import (
    LPIPS,
    InceptionExtractor,
    availability_of_inception,
    availability_of_lpips,
    perceptual_status,
)
from aebench.registry import extractors, metrics

VGG_CONVS = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)  # conv layers of torchvision's vgg16().features

FAKE_LPIPS = """
import torch
from torch import nn

CALLS = []
VGG_CONVS = {convs}


class _Trunk(nn.Module):  # lpips.pretrained_networks.vgg16: features[0:30] cut into five slices
    def __init__(self):
        super().__init__()
        for k, (start, stop) in enumerate([(0, 4), (4, 9), (9, 16), (16, 23), (23, 30)], start=1):
            part = nn.Sequential()
            for i in range(start, stop):
                part.add_module(str(i), nn.Conv2d(3, 3, 1) if i in VGG_CONVS else nn.Identity())
            setattr(self, f"slice{{k}}", part)

    def forward(self, x):
        for k in range(1, 6):
            x = getattr(self, f"slice{{k}}")(x)
        return x


class LPIPS(nn.Module):
    def __init__(self, **kwargs):
        super().__init__()
        CALLS.append(("init", kwargs))
        self.net = _Trunk()

    def forward(self, in0, in1):
        CALLS.append(("forward", in0.clone(), in1.clone()))
        return ((self.net(in0) - self.net(in1)) ** 2).mean(dim=(1, 2, 3), keepdim=True)  # (N, 1, 1, 1)
"""

FAKE_FID_INCEPTION = """
import torch
from torch import nn

FID_WEIGHTS_URL = "https://example.invalid/fid_weights/{filename}"
CALLS = []


def load_state_dict_from_url(url, progress=True):
    raise AssertionError("pytorch-fid tried to download " + url)


class InceptionV3(nn.Module):
    BLOCK_INDEX_BY_DIM = {{64: 0, 192: 1, 768: 2, 2048: 3}}

    def __init__(self, output_blocks=(3,), resize_input=True, normalize_input=True, requires_grad=False,
                 use_fid_inception=True):
        super().__init__()
        CALLS.append(("init", output_blocks, resize_input, normalize_input, use_fid_inception))
        self.pool3 = nn.Linear(3, 2048)
        self.load_state_dict(load_state_dict_from_url(FID_WEIGHTS_URL, progress=True))

    def forward(self, x):
        CALLS.append(("forward", x.clone()))
        return [self.pool3(x.mean(dim=(2, 3)))[:, :, None, None]]  # (B, 2048, 1, 1)
"""


def _module(name: str, source: str = "") -> types.ModuleType:
    module = types.ModuleType(name)
    exec(source, module.__dict__)
    return module


def _weight_file(tmp_path, monkeypatch, key: str, stem: str, state: dict) -> weights.WeightFile:
    """A checksummed weight file under $AEBENCH_WEIGHTS, registered as `key` in place of the real one."""
    folder = tmp_path / "weights"
    folder.mkdir(exist_ok=True)
    scratch = folder / "scratch.pth"
    torch.save(state, scratch)
    prefix = hashlib.sha256(scratch.read_bytes()).hexdigest()[:8]
    weight = weights.WeightFile(key, f"{stem}-{prefix}.pth", prefix, "a test")
    scratch.rename(folder / weight.filename)
    monkeypatch.setitem(weights.WEIGHTS, key, weight)
    return weight


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No weight files anywhere; the optional packages as this machine has them."""
    monkeypatch.setenv("AEBENCH_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path


@pytest.fixture
def fake_packages(offline, monkeypatch):
    """Importable fake torchvision, lpips and pytorch_fid.inception."""
    monkeypatch.setitem(sys.modules, "torchvision", _module("torchvision"))
    monkeypatch.setitem(sys.modules, "lpips", _module("lpips", FAKE_LPIPS.format(convs=VGG_CONVS)))
    fid = _module("pytorch_fid")
    filename = weights.WEIGHTS["inception"].filename
    fid.inception = _module("pytorch_fid.inception", FAKE_FID_INCEPTION.format(filename=filename))
    monkeypatch.setitem(sys.modules, "pytorch_fid", fid)
    monkeypatch.setitem(sys.modules, "pytorch_fid.inception", fid.inception)
    return offline


def test_both_are_registered_and_importing_them_needs_no_optional_package():
    assert metrics.get("lpips") is LPIPS and not LPIPS.higher_is_better
    assert extractors.get("inception") is InceptionExtractor


@pytest.mark.skipif(importlib.util.find_spec("torchvision") is not None, reason="torchvision is installed here")
def test_without_torchvision_each_reports_why_and_refuses_to_construct(offline):
    reason = "unavailable: torchvision is not installed (pip install 'aebench[perceptual]')"
    assert availability_of_lpips() == reason and availability_of_inception() == reason
    assert perceptual_status() == {"lpips": reason, "inception": reason}
    with pytest.raises(AebenchError) as lpips_error:
        LPIPS()
    with pytest.raises(AebenchError) as inception_error:
        InceptionExtractor()
    assert str(lpips_error.value) == reason and str(inception_error.value) == reason


def test_a_torchvision_that_fails_to_import_is_reported_as_broken(offline, monkeypatch):
    package = offline / "site" / "torchvision"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("raise RuntimeError('operator torchvision::nms does not exist\\nmore')\n")
    monkeypatch.delitem(sys.modules, "torchvision", raising=False)
    monkeypatch.syspath_prepend(str(offline / "site"))
    reason = "unavailable: torchvision is installed but broken: RuntimeError: operator torchvision::nms does not exist"
    assert availability_of_lpips() == reason and availability_of_inception() == reason
    with pytest.raises(AebenchError, match="installed but broken"):
        InceptionExtractor()


def test_missing_packages_and_missing_dependencies_are_told_apart(offline, monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", _module("torchvision"))
    monkeypatch.setitem(sys.modules, "lpips", None)  # import lpips → ModuleNotFoundError for lpips itself
    monkeypatch.setitem(sys.modules, "pytorch_fid", None)
    assert availability_of_lpips() == "unavailable: lpips is not installed (pip install 'aebench[perceptual]')"
    assert availability_of_inception() == (
        "unavailable: pytorch-fid is not installed (pip install 'aebench[perceptual]')"
    )
    (offline / "site").mkdir()
    (offline / "site" / "lpips.py").write_text("import a_dependency_that_is_missing\n")
    monkeypatch.delitem(sys.modules, "lpips")
    monkeypatch.syspath_prepend(str(offline / "site"))
    assert availability_of_lpips() == (
        "unavailable: lpips is installed but broken: ModuleNotFoundError: No module named 'a_dependency_that_is_missing'"  # noqa: E501
    )


def test_missing_or_corrupt_weights_are_reported_with_where_to_put_them(fake_packages, monkeypatch):
    folders = f"{fake_packages / 'weights'} or {fake_packages / 'torch' / 'hub' / 'checkpoints'}"
    assert availability_of_lpips() == f"unavailable: vgg16-397923af.pth not found in {folders}"
    assert availability_of_inception() == f"unavailable: pt_inception-2015-12-05-6726825d.pth not found in {folders}"
    with pytest.raises(AebenchError, match="vgg16-397923af.pth not found"):
        LPIPS()

    hub = fake_packages / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / "pt_inception-2015-12-05-6726825d.pth").write_bytes(b"an interrupted download")
    assert availability_of_inception() == (
        f"unavailable: {hub / 'pt_inception-2015-12-05-6726825d.pth'} fails its checksum (sha256 should start with "
        "6726825d)"
    )
    with pytest.raises(AebenchError, match="fails its checksum"):
        InceptionExtractor()


def test_a_pytorch_fid_without_its_weight_loader_is_refused_rather_than_left_to_download(fake_packages, monkeypatch):
    monkeypatch.delattr(sys.modules["pytorch_fid.inception"], "load_state_dict_from_url")
    reason = availability_of_inception()
    assert reason.startswith("unavailable: pytorch-fid ") and "no load_state_dict_from_url" in reason


def test_lpips_loads_the_verified_vgg16_file_into_the_lpips_trunk_and_averages_over_images(fake_packages, monkeypatch):
    state = {
        f"features.{i}.{p}": torch.randn(3, 3, 1, 1) if p == "weight" else torch.randn(3)
        for i in VGG_CONVS
        for p in ("weight", "bias")
    }
    state["classifier.0.weight"] = torch.randn(4, 4)  # torchvision's file also holds the classifier: ignored
    _weight_file(fake_packages, monkeypatch, "vgg16", "vgg16", state)
    assert availability_of_lpips() is None

    metric = LPIPS(value_range=(0, 1))
    lpips = sys.modules["lpips"]
    assert lpips.CALLS[0] == (
        "init",
        {"net": "vgg", "version": "0.1", "pretrained": True, "pnet_rand": True, "verbose": False},
    )
    trunk = metric.network.net
    assert torch.equal(trunk.slice3.get_submodule("12").weight, state["features.12.weight"])
    assert torch.equal(trunk.slice5.get_submodule("28").bias, state["features.28.bias"])
    assert not any(p.requires_grad for p in metric.network.parameters())

    x, y = torch.rand(5, 1, 16, 20), torch.rand(5, 1, 16, 20)  # grayscale in [0, 1]
    metric.update(x[:2], y[:2])
    metric.update(x[2:], y[2:])
    _, seen, _ = lpips.CALLS[1]
    assert seen.shape == (2, 3, 16, 20) and torch.allclose(seen, (2 * x[:2] - 1).expand(-1, 3, -1, -1))
    expected = metric.network(2 * x.expand(-1, 3, -1, -1) - 1, 2 * y.expand(-1, 3, -1, -1) - 1).mean()
    assert metric.compute() == pytest.approx(float(expected), rel=1e-6)
    assert metric(x, x) == 0

    with pytest.raises(AebenchError, match="at least 16"):
        metric.update(torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8))
    with pytest.raises(AebenchError, match="NaN"):
        metric.update(torch.full((1, 3, 16, 16), float("nan")), torch.rand(1, 3, 16, 16))


def test_inception_is_built_from_the_verified_file_without_any_download(fake_packages, monkeypatch):
    state = {"pool3.weight": torch.randn(2048, 3), "pool3.bias": torch.randn(2048)}
    weight = _weight_file(fake_packages, monkeypatch, "inception", "pt_inception-2015-12-05", state)
    fid = sys.modules["pytorch_fid.inception"]
    monkeypatch.setattr(fid, "FID_WEIGHTS_URL", f"https://example.invalid/fid_weights/{weight.filename}")
    downloader = fid.load_state_dict_from_url
    assert availability_of_inception() is None

    extractor = InceptionExtractor(value_range=(-1, 1))
    assert fid.load_state_dict_from_url is downloader  # the local loader was swapped in only while building
    assert fid.CALLS[0] == ("init", [3], True, True, True)
    assert torch.equal(extractor.network.pool3.weight, state["pool3.weight"])

    images = torch.rand(3, 28, 28) * 2 - 1  # (N, H, W) grayscale in [-1, 1]
    features = extractor.features(images, batch_size=2)
    assert features.shape == (3, 2048) and features.dtype == torch.float32
    _, seen = fid.CALLS[1]
    assert seen.shape == (2, 3, 28, 28) and torch.allclose(seen[:, 0], (images[:2] + 1) / 2)
    assert extractor.describe() == {
        "name": "inception",
        "weights": weight.filename,
        "sha256": weight.sha256_prefix,
        "feature_dim": 2048,
        "input": "values in [-1, 1] → [0, 1], bilinear resize to 299",
        "pytorch_fid": "?",
    }


def test_a_pytorch_fid_asking_for_other_weights_gets_an_error_not_a_download(fake_packages, monkeypatch):
    weight = _weight_file(fake_packages, monkeypatch, "inception", "pt_inception-2015-12-05", {})
    fid = sys.modules["pytorch_fid.inception"]
    monkeypatch.setattr(fid, "FID_WEIGHTS_URL", "https://example.invalid/pt_inception-2099-01-01-00000000.pth")
    reason = availability_of_inception()
    assert reason.startswith("unavailable: pytorch-fid ") and f"not {weight.filename}" in reason
