"""aebench.kernels: a record names its CPU and a fingerprint of the kernels that computed it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from aebench import kernels


def fingerprint_in_a_new_process(**env: str) -> str:
    script = "import torch; torch.set_num_threads(1); from aebench import kernels; print(kernels.fingerprint())"
    done = subprocess.run([sys.executable, "-c", script], env={**os.environ, **env}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


@pytest.mark.skipif(torch.backends.cpu.get_cpu_capability() == "DEFAULT", reason="no vector kernels to turn off")
def test_the_fingerprint_is_the_same_in_every_process_and_changes_with_the_kernels():
    """Same CPU, same kernels: one fingerprint. ATen's unvectorised kernels (what a CPU without AVX2 would run) sum
    in another order, and so does oneDNN restricted to AVX2 on an AVX-512 CPU: other fingerprints."""
    here = fingerprint_in_a_new_process()
    assert fingerprint_in_a_new_process() == here and len(here) == 12
    assert fingerprint_in_a_new_process(ATEN_CPU_CAPABILITY="default") != here
    if torch.backends.cpu.get_cpu_capability() == "AVX512":
        assert fingerprint_in_a_new_process(ONEDNN_MAX_CPU_ISA="AVX2") != here


def test_the_fingerprint_leaves_the_global_random_state_alone():
    state = torch.random.get_rng_state()
    kernels.fingerprint()
    assert torch.equal(torch.random.get_rng_state(), state)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/cpuinfo")
def test_the_cpu_is_named_with_its_vector_units_and_caches():
    cpu = kernels.cpu()
    flags = set(open("/proc/cpuinfo").read().split("\n\n")[0].split("flags")[1].split("\n")[0].split())
    assert cpu["vendor"] and cpu["model"] and cpu["family"]
    assert cpu["isa"] == [flag for flag in kernels.ISA_FLAGS if flag in flags]
    if torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"):
        assert "avx2" in cpu["isa"]
    assert all(key[:2] in ("L1", "L2", "L3", "L4") for key in cpu["caches"])
