"""`aebench doctor` and the offline weight lookup."""

from __future__ import annotations

import hashlib

import torch

from aebench import doctor, kernels, weights
from aebench.cli import main


def test_weights_are_found_offline_and_verified_by_checksum(tmp_path, monkeypatch):
    content = b"pretend network weights"
    prefix = hashlib.sha256(content).hexdigest()[:8]
    monkeypatch.setitem(weights.WEIGHTS, "toy", weights.WeightFile("toy", f"toy-{prefix}.pth", prefix, "a test"))
    monkeypatch.setenv("AEBENCH_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    missing = weights.locate("toy")
    assert not missing.ok and f"toy-{prefix}.pth not found in {tmp_path / 'weights'}" in missing.problem

    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / f"toy-{prefix}.pth").write_bytes(b"truncated download")
    corrupt = weights.locate("toy")
    assert not corrupt.ok and "fails its checksum" in corrupt.problem

    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / f"toy-{prefix}.pth").write_bytes(content)
    found = weights.locate("toy")
    assert found.ok and found.path == tmp_path / "weights" / f"toy-{prefix}.pth"


def test_doctor_reports_every_section_and_exits_0_when_the_default_suite_can_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("AEBENCH_WEIGHTS", raising=False)
    threads = torch.get_num_threads()
    assert main(["doctor", "--cache-dir", str(tmp_path / "cache")]) == 0
    assert torch.get_num_threads() == threads
    out = capsys.readouterr().out
    for section in (
        "core:",
        "device:",
        "optional packages:",
        "pretrained weights:",
        "perceptual metrics:",
        "tasks:",
        "registered:",
        "cache:",
    ):
        assert section in out
    assert "-- " in out and "inception weights" in out and "not found" in out
    assert "mnist-sharpness" in out and "the default suite can run" in out
    torch.set_num_threads(1)
    try:  # the CPU line ends with the fingerprint a one-thread record made here carries
        assert f"kernels {kernels.fingerprint()}\n" in out
    finally:
        torch.set_num_threads(threads)


def test_a_broken_optional_package_is_reported_not_raised(tmp_path, monkeypatch):
    (tmp_path / "brokenpkg.py").write_text("raise ImportError('built for another torch')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(doctor, "OPTIONAL", (("brokenpkg", "brokenpkg", "nothing"),))
    checks = doctor.gather(tmp_path / "cache")["optional packages"]
    assert [(c.name, c.ok) for c in checks] == [("brokenpkg", False)]
    assert "installed but broken: ImportError: built for another torch" in checks[0].detail


def test_doctor_fails_when_a_core_package_is_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(doctor, "REQUIRED", (("no_such_core_package", "no-such-core-package", "a test"),))
    report, ready = doctor.render(doctor.gather(tmp_path / "cache"))
    assert not ready and "cannot run" in report


def test_doctor_names_the_committed_feature_space_weights_and_a_damaged_file(tmp_path, monkeypatch):
    from aebench.doctor import feature_spaces
    from aebench.registry import extractors

    checks = {check.name: check for check in feature_spaces()}
    assert checks["galaxy-cnn"].ok and "committed weights 6ca86bdc2c65" in checks["galaxy-cnn"].detail
    assert {"cdp-ae", "galaxy-ae", "hubble2webb-ae", "mnist-digit-cnn"} <= set(checks)
    damaged = tmp_path / "extractors"
    damaged.mkdir()
    (damaged / "galaxy-cnn-0000000000000000.pt").write_bytes(b"not a checkpoint")
    monkeypatch.setattr(extractors.get("galaxy-cnn"), "shipped_dir", damaged)
    (check,) = [c for c in feature_spaces() if c.name == "galaxy-cnn"]
    assert not check.ok and "unreadable" in check.detail
