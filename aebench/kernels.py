"""Which CPU and which float kernels computed a record: to tell "another machine" apart from "another result".

torch picks its CPU kernels when it runs: ATen's vector code by the widest unit the CPU has (AVX-512, AVX2),
oneDNN's convolutions by instruction set, vendor and cache sizes, MKL's matrix products by vendor and instruction
set. Kernels that sum in another order round differently, and training amplifies the difference: the same seed
with the same code gives the same record on one CPU model, and on another model can give another one (seed 0 of
hubble2webb's CycleGAN, `quick`: MSE 0.00285 on the machine that made the committed record, 0.00277 on another
AMD EPYC; the first step's loss already differs in the 7th digit). A record therefore names its CPU (`cpu()`: vendor,
model, family, the vector instruction sets, the caches) and, on the CPU, a fingerprint of its kernels
(`fingerprint()`): a digest of a few fixed computations (2-D and 1-D convolutions forward and backward, a transposed
convolution, a matrix product, a reduction) at the run's thread count. Two machines with different fingerprints
compute differently, so their records of one seed may differ; equal fingerprints are necessary for equal records,
not a proof (a layer shape the fingerprint does not cover can still take another kernel).
"""

from __future__ import annotations

import hashlib
import platform
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

# The vector instruction sets that change which kernels torch, oneDNN and MKL run (as /proc/cpuinfo names them).
ISA_FLAGS = (
    "avx", "avx2", "fma", "f16c", "avx512f", "avx512dq", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
    "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8", "avx_vnni",
)  # fmt: skip


def cpu() -> dict[str, Any]:
    """The CPU as Linux describes it (`/proc/cpuinfo`, `/sys/.../cache`); what `platform` knows elsewhere."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if not line.strip():
                break  # the first processor is enough
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    except OSError:
        pass
    if not fields:
        return {"model": platform.processor() or platform.machine() or "unknown CPU"}
    flags = set(fields.get("flags", "").split())
    return {
        "vendor": fields.get("vendor_id"),
        "model": fields.get("model name") or platform.processor() or platform.machine(),  # ARM: no model name
        "family": fields.get("cpu family"),
        "model_number": fields.get("model"),
        "stepping": fields.get("stepping"),
        "isa": [flag for flag in ISA_FLAGS if flag in flags],
        "caches": _caches(),
    }


def _caches() -> dict[str, str]:
    """`{"L1d": "32K", "L2": "1024K", ...}` of the first CPU, or {} where sysfs does not say."""
    caches = {}
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            level, kind, size = ((index / name).read_text().strip() for name in ("level", "type", "size"))
        except OSError:
            continue
        caches[f"L{level}" + {"Data": "d", "Instruction": "i"}.get(kind, "")] = size
    return caches


def fingerprint() -> str:
    """A digest (12 hex digits) of fixed float32 computations on the CPU with torch's current thread count and
    kernels. Uses its own generator: the global RNG, and so the run, is untouched."""
    generator = torch.Generator().manual_seed(0)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator)

    images, filters = randn(4, 3, 32, 32).requires_grad_(), randn(16, 3, 5, 5).requires_grad_()
    up = randn(16, 8, 4, 4).requires_grad_()
    signals, taps = randn(8, 1, 256).requires_grad_(), randn(8, 1, 9).requires_grad_()
    inputs, weights = randn(64, 100).requires_grad_(), randn(50, 100).requires_grad_()
    with torch.enable_grad():
        feature = F.conv2d(images, filters, stride=2, padding=2)  # (4, 16, 16, 16)
        upsampled = F.conv_transpose2d(feature, up, stride=2, padding=1)  # (4, 8, 32, 32)
        wave = F.conv1d(signals, taps, stride=2, padding=4)  # (8, 8, 128)
        product = inputs @ weights.T  # (64, 50)
        outputs = [feature, upsampled, wave, product, product.sum(0), upsampled.mean((2, 3))]
        sum(o.square().mean() for o in outputs).backward()
    digest = hashlib.sha256()
    for tensor in [*outputs, images.grad, filters.grad, up.grad, signals.grad, taps.grad, weights.grad]:
        digest.update(tensor.detach().contiguous().numpy().tobytes())
    return digest.hexdigest()[:12]
