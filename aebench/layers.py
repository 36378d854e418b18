"""Network layers that work around CPU kernels known to compute wrong results.

`ConvTranspose1d`: on x86-64 CPUs whose best vector unit is AVX2 (not AVX-512), oneDNN 3.x picks its
`brgconv_strided:avx2` deconvolution for a 1-D transposed convolution with `output_padding` when the weight requires
grad (prop kind `forward_training`, which PyTorch asks for even under `no_grad`). That kernel leaves the first
output samples unwritten for some shapes (e.g. 64 → 32 channels, length 62 → 125): they hold whatever the
allocator returned, so two identical calls differ (by up to 1.3 on unit-scale data) and both are wrong against a
float64 reference. Reproduce on any AVX-512 machine with `ONEDNN_MAX_CPU_ISA=AVX2` (tests/test_determinism.py).

The same output is the full transposed convolution (no padding) cropped by `padding` on the left: that shape takes
another kernel, which is correct and deterministic. The layer keeps `nn.ConvTranspose1d`'s parameters and
state-dict keys, so checkpoints and parameter counts are unchanged.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class ConvTranspose1d(nn.ConvTranspose1d):
    """`nn.ConvTranspose1d`, computed as the unpadded transposed convolution and then cropped."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.padding_mode != "zeros":
            raise ValueError("ConvTranspose1d supports only padding_mode='zeros' (as nn.ConvTranspose1d)")

    def forward(self, x: Tensor, output_size: list[int] | None = None) -> Tensor:
        output_padding = self._output_padding(
            x, output_size, self.stride, self.padding, self.kernel_size, 1, self.dilation
        )[0]
        full = F.conv_transpose1d(x, self.weight, self.bias, self.stride, 0, 0, self.groups, self.dilation)
        left = self.padding[0]
        if output_padding > left:  # the crop cannot grow the output; such shapes take nn.ConvTranspose1d's path
            return super().forward(x, output_size)
        length = full.shape[-1] - 2 * left + output_padding  # what nn.ConvTranspose1d returns
        return full[..., left : left + length]
