"""pytest-benchmark: FID (ours vs the scipy `sqrtm` path) at 64 and 2048 dims, SSIM (ours vs scikit-image), and the
fixed cost of `aebench run` (a smoke job against the same work as a plain script, tests/bare_run.py).

The suite runs with `--benchmark-disable`, so each benchmark here runs its function once as a plain test that also
checks the value against the reference. `make benchmark` (or `pytest tests/test_benchmarks.py --benchmark-enable`)
times them; the scipy `sqrtm` at 2048 dims (tens of seconds) and the fixed-cost benchmark (about a minute a round)
run only then.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
from skimage.metrics import structural_similarity

from aebench.metrics import frechet_distance, gaussian_stats, ssim_per_image

N_FEATURES = 3000  # samples per side


@functools.cache
def fid_stats(dim: int) -> tuple[np.ndarray, ...]:
    """Gaussian fits to two well-conditioned random feature sets: real ~ N(0, MMᵀ), generated shifted and scaled."""
    rng = np.random.default_rng(dim)
    mixing = np.eye(dim) + 0.3 * rng.normal(size=(dim, dim)) / np.sqrt(dim)
    real = rng.normal(size=(N_FEATURES, dim)) @ mixing
    fake = (rng.normal(loc=0.1, size=(N_FEATURES, dim)) * rng.uniform(0.8, 1.2, size=dim)) @ mixing
    return (*gaussian_stats(real), *gaussian_stats(fake))


def scipy_sqrtm_fid(mu1, cov1, mu2, cov2) -> float:
    """The common reference (pytorch-fid): ‖μ1 − μ2‖² + tr(Σ1 + Σ2 − 2 sqrtm(Σ1 Σ2))."""
    root = scipy.linalg.sqrtm(cov1 @ cov2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(cov1) + np.trace(cov2) - 2 * np.trace(root))


@pytest.mark.parametrize("dim", [64, 2048])
def test_fid_ours(benchmark, dim):
    benchmark.group = f"fid-{dim}d"
    stats = fid_stats(dim)
    value = benchmark.pedantic(frechet_distance, args=stats, rounds=3 if dim > 512 else 200, warmup_rounds=1)
    if dim <= 512:  # the reference at 2048 dims is checked by test_fid_scipy_sqrtm, which computes it anyway
        assert value == pytest.approx(scipy_sqrtm_fid(*stats), rel=1e-6)


@pytest.mark.parametrize("dim", [64, 2048])
def test_fid_scipy_sqrtm(benchmark, dim):
    benchmark.group = f"fid-{dim}d"
    if dim > 512 and benchmark.disabled:
        pytest.skip("scipy sqrtm at 2048 dims takes tens of seconds; it runs with --benchmark-enable")
    stats = fid_stats(dim)
    value = benchmark.pedantic(scipy_sqrtm_fid, args=stats, rounds=1 if dim > 512 else 200)
    assert frechet_distance(*stats) == pytest.approx(value, rel=1e-6)


@functools.cache
def ssim_batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    a = torch.rand(16, 1, 256, 256, generator=generator, dtype=torch.float64)
    b = (a + 0.1 * torch.randn(a.shape, generator=generator, dtype=torch.float64)).clamp(0, 1)
    return a, b


def skimage_ssim(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    kwargs = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)
    return np.array([structural_similarity(x[0], y[0], **kwargs) for x, y in zip(a, b)])


def test_ssim_ours(benchmark):
    benchmark.group = "ssim-16x1x256x256"
    a, b = ssim_batch()
    values = benchmark.pedantic(ssim_per_image, args=(a, b, 1.0), rounds=20, warmup_rounds=1)
    np.testing.assert_allclose(values.numpy(), skimage_ssim(a.numpy(), b.numpy()), atol=1e-9)


def test_ssim_skimage(benchmark):
    benchmark.group = "ssim-16x1x256x256"
    a, b = (t.numpy() for t in ssim_batch())
    values = benchmark.pedantic(skimage_ssim, args=(a, b), rounds=20, warmup_rounds=1)
    np.testing.assert_allclose(values, ssim_per_image(*ssim_batch(), 1.0).numpy(), atol=1e-9)


# --- fixed costs of a run --------------------------------------------------------------------------------------------
FIXED_COST_TARGET = 1.2  # issue 14: `aebench run` of a smoke job within 1.2× of the same work as a plain script
ROUNDS = 3


def test_aebench_run_of_a_smoke_job_costs_little_more_than_a_plain_script(benchmark, tmp_path):
    """Fresh processes on one thread and a warm cache: the command `aebench run --task mnist-sharpness --models ae
    --budget smoke --force` against tests/bare_run.py (the same model, data, steps and metrics, with none of the
    command line, registry, identities, records, reference rows, sample picture or leaderboard). Rounds alternate
    between the two, so a change of load on the machine reaches both; the ratio of the fastest rounds is checked."""
    if benchmark.disabled:
        pytest.skip("two training processes a round; it runs with --benchmark-enable (make benchmark)")
    benchmark.group = "fixed-cost-smoke-run"
    cache, out = tmp_path / "cache", tmp_path / "results"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    bare = [sys.executable, str(Path(__file__).with_name("bare_run.py")), str(cache)]
    command = [sys.executable, "-m", "aebench", "run", "--task", "mnist-sharpness", "--models", "ae"]
    command += ["--budget", "smoke", "--out", str(out), "--cache-dir", str(cache), "--no-progress", "--force"]
    subprocess.run(command, check=True, capture_output=True, env=env)  # the digits, extractor and reference rows
    bare_seconds = []

    def time_the_script() -> None:
        started = time.perf_counter()
        subprocess.run(bare, check=True, capture_output=True, env=env)
        bare_seconds.append(time.perf_counter() - started)

    benchmark.pedantic(
        subprocess.run, args=(command,), kwargs={"check": True, "capture_output": True, "env": env},
        setup=time_the_script, rounds=ROUNDS,
    )  # fmt: skip
    ratio = benchmark.stats.stats.min / min(bare_seconds)
    benchmark.extra_info.update(script_min_s=min(bare_seconds), script_s=bare_seconds, ratio=ratio)
    assert ratio < FIXED_COST_TARGET, f"aebench run takes {ratio:.2f}× the plain script ({min(bare_seconds):.1f} s)"
