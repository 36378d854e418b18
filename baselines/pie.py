"""PIE: Pseudo-Invertible Encoder (Beitler, Sosnovik, Smeulders).

A normalising flow F whose blocks each end in a split: the kept part z goes on, the discarded part r is modelled as
N(g(z), ε²I) by a small network g. Encoding keeps only the final z (latent_dim numbers); decoding (and so
reconstruction) runs F backwards with every r set to its mean g(z), x = F⁻¹([z, g(z)]). Sampling follows the paper:
z ~ N(0, I) and every r ~ N(g(z), ε²I), x = F⁻¹([z, r]) (`sample_r = "gaussian"`; `"mean"` decodes r = g(z)
instead). Samples are returned unclamped: the paper's sharpness (0.49, above real digits' 0.18) is largely this
high-frequency content, which a clamp to [0, 1] partly removes; tasks clamp where they need to. The loss is the
exact negative log-density of (z, r_1, ..., r_k) under N(0, I) × Π N(g, ε²I), pulled back through F by the change
of variables.

Architecture (paper's MNIST model): `conv_blocks` blocks of [squeeze → K × (Householder 1×1 conv, affine coupling)
→ keep half the channels], then linear blocks [K × (Householder linear map, affine coupling) → keep
linear_dims[i] numbers] ending at latent_dim, then the paper's third linear block, K flow steps on the latent_dim
kept numbers without a split (`final_block`). For 28×28: (1,28,28) → (4,14,14) keep 2 → (8,7,7) keep 4 → 196 →
64 → latent_dim → latent_dim.

Images whose H or W is not divisible by 2**conv_blocks are padded at the bottom/right. In training the padding is
uniform noise of width 1 (density 1, so the loss stays an upper bound on −log p(x)); in encoding it is zero (the
noise's mean), and decoding crops it away.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from aebench.errors import AebenchError
from aebench.model import Batch, DataSpec, Model, ModelConfig
from aebench.registry import models


@dataclass
class PIEConfig(ModelConfig):
    latent_dim: int = 8  # the sharpness table uses 8; the paper's largest MNIST model 10
    linear_dims: tuple[int, ...] = (64,)  # kept sizes of the linear blocks before the last; sizes ≥ the input skipped
    conv_blocks: int = 2  # each squeezes (C,H,W) → (4C,H/2,W/2) and keeps half the channels
    steps_per_block: int = 3  # K: (reflection, coupling) pairs per block
    reflections: int = 3  # Householder reflections per invertible 1×1 conv / linear map
    conv_hidden: int = 32  # channels of the conv coupling nets and of g
    linear_hidden: int = 128  # units of the MLP coupling nets and of g
    max_log_scale: float = 2.0  # couplings scale by exp(m·tanh(a/m)) ∈ [e^-m, e^m]: bounded, so stable
    eps2: float = 0.01  # ε²: variance of the discarded r around g(z) (paper: 0.01, 0.1, 1.0)
    # How `sample` sets the discarded r: drawn from N(g(z), ε²I) as in the paper, or at the mean g(z).
    sample_r: Literal["gaussian", "mean"] = "gaussian"
    final_block: bool = True  # the paper's third linear block: K steps on the latent, no split (needs latent_dim ≥ 2)
    dequantisation: float = 1 / 256  # width of the uniform noise added in training (1/256 for 8-bit data; 0 = off)
    lr: float = 1e-3
    grad_clip: float = 100.0  # max gradient norm of the per-dimension loss (typical norms 50–200; guards spikes)

    def __post_init__(self) -> None:
        if self.latent_dim < 1 or self.steps_per_block < 1 or self.conv_blocks < 0 or self.reflections < 0:
            raise ValueError("latent_dim and steps_per_block must be ≥ 1, conv_blocks and reflections ≥ 0")
        if self.eps2 <= 0 or self.max_log_scale <= 0 or self.lr <= 0 or self.grad_clip <= 0:
            raise ValueError("eps2, max_log_scale, lr and grad_clip must be positive")
        if not 0 <= self.dequantisation < 1:
            raise ValueError(f"dequantisation must be in [0, 1), got {self.dequantisation}")


# --- invertible layers: forward(x) -> (y, log|det ∂y/∂x| per example), inverse(y) -> x ---------------------------


class Squeeze(nn.Module):
    """Space-to-depth: each 2×2 patch becomes 4 channels, (B, C, H, W) → (B, 4C, H/2, W/2). A permutation."""

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        b, c, h, w = x.shape
        y = x.view(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(b, 4 * c, h // 2, w // 2)
        return y, x.new_zeros(b)

    def inverse(self, y: Tensor) -> Tensor:
        b, c4, h, w = y.shape
        return y.view(b, c4 // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3).reshape(b, c4 // 4, 2 * h, 2 * w)


class Flatten(nn.Module):
    """(B, C, H, W) → (B, C·H·W), between the conv and the linear blocks."""

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.shape = shape

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x.flatten(1), x.new_zeros(x.shape[0])

    def inverse(self, y: Tensor) -> Tensor:
        return y.view(-1, *self.shape)


class Householder(nn.Module):
    """Orthogonal map W = H_n ⋯ H_1 with H_i = I − 2 v_i v_iᵀ/‖v_i‖², on channels (1×1 conv) or features.

    Orthogonal, so log|det W| = 0 and W⁻¹ = Wᵀ (the reflections applied in reverse order).
    """

    def __init__(self, dim: int, n_reflections: int):
        super().__init__()
        self.v = nn.Parameter(torch.randn(n_reflections, dim))

    @staticmethod
    def _reflect(x: Tensor, v: Tensor) -> Tensor:  # x (..., D), v (D,)
        v = v / v.norm()
        return x - 2 * (x @ v).unsqueeze(-1) * v

    def _reflect_all(self, x: Tensor, vs: list[Tensor]) -> Tensor:
        h = x.movedim(1, -1)  # channels last: (B, H, W, C) or (B, D)
        for v in vs:
            h = self._reflect(h, v)
        return h.movedim(-1, 1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self._reflect_all(x, list(self.v)), x.new_zeros(x.shape[0])

    def inverse(self, y: Tensor) -> Tensor:
        return self._reflect_all(y, list(self.v)[::-1])


def small_net(n_in: int, n_out: int, hidden: int, conv: bool) -> nn.Sequential:
    """3-layer conv net or MLP with a zero-initialised last layer (so couplings start as the identity, g as 0)."""
    if conv:
        net = nn.Sequential(
            nn.Conv2d(n_in, hidden, 3, padding=1), nn.ReLU(),
            nn.Conv2d(hidden, hidden, 1), nn.ReLU(),
            nn.Conv2d(hidden, n_out, 3, padding=1),
        )  # fmt: skip
    else:
        net = nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                            nn.Linear(hidden, n_out))  # fmt: skip
    nn.init.zeros_(net[-1].weight)
    nn.init.zeros_(net[-1].bias)
    return net


class AffineCoupling(nn.Module):
    """y1 = s1(x2)⊙x1 + b1(x2), y2 = s2(y1)⊙x2 + b2(y1): both halves (of channels / features) updated in turn."""

    def __init__(self, dim: int, hidden: int, conv: bool, max_log_scale: float):
        super().__init__()
        self.d1, d2 = dim // 2, dim - dim // 2
        self.net1 = small_net(d2, 2 * self.d1, hidden, conv)
        self.net2 = small_net(self.d1, 2 * d2, hidden, conv)
        self.max_log_scale = max_log_scale

    def _log_scale_shift(self, net: nn.Module, h: Tensor) -> tuple[Tensor, Tensor]:
        raw_log_s, shift = net(h).chunk(2, dim=1)
        m = self.max_log_scale
        return m * torch.tanh(raw_log_s / m), shift  # soft clamp: identity near 0, bounded by ±m

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x1, x2 = x[:, : self.d1], x[:, self.d1 :]
        log_s1, b1 = self._log_scale_shift(self.net1, x2)
        y1 = x1 * log_s1.exp() + b1
        log_s2, b2 = self._log_scale_shift(self.net2, y1)
        y2 = x2 * log_s2.exp() + b2
        return torch.cat([y1, y2], dim=1), log_s1.flatten(1).sum(1) + log_s2.flatten(1).sum(1)

    def inverse(self, y: Tensor) -> Tensor:
        y1, y2 = y[:, : self.d1], y[:, self.d1 :]
        log_s2, b2 = self._log_scale_shift(self.net2, y1)
        x2 = (y2 - b2) * (-log_s2).exp()
        log_s1, b1 = self._log_scale_shift(self.net1, x2)
        x1 = (y1 - b1) * (-log_s1).exp()
        return torch.cat([x1, x2], dim=1)


class Flow(nn.ModuleList):
    """A sequence of invertible layers; log-determinants add up."""

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        logdet = x.new_zeros(x.shape[0])
        for layer in self:
            x, ld = layer(x)
            logdet = logdet + ld
        return x, logdet

    def inverse(self, y: Tensor) -> Tensor:
        for layer in reversed(self):
            y = layer.inverse(y)
        return y


def flow_steps(dim: int, hidden: int, conv: bool, cfg: PIEConfig) -> list[nn.Module]:
    """K × (Householder mixing, affine coupling) on `dim` channels (conv) or features."""
    steps = []
    for _ in range(cfg.steps_per_block):
        steps += [Householder(dim, cfg.reflections), AffineCoupling(dim, hidden, conv, cfg.max_log_scale)]
    return steps


class Split(nn.Module):
    """Keeps the first `kept` channels / features as z; the rest, r, is modelled as N(g(z), ε²I)."""

    def __init__(self, kept: int, discarded: int, hidden: int, conv: bool, eps2: float):
        super().__init__()
        self.kept, self.discarded, self.eps2 = kept, discarded, eps2
        self.g = small_net(kept, discarded, hidden, conv)

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        return h[:, : self.kept], h[:, self.kept :]

    def nll(self, z: Tensor, r: Tensor) -> Tensor:
        """−log N(r | g(z), ε²I) per example."""
        sq = (r - self.g(z)).pow(2).flatten(1).sum(1)
        return 0.5 * sq / self.eps2 + 0.5 * r[0].numel() * math.log(2 * math.pi * self.eps2)

    def join(self, z: Tensor, r: Tensor | None = None, noise: Tensor | None = None) -> Tensor:
        """[z, r]; without r, r = g(z) (pseudo-inverse), plus ε·noise when noise ~ N(0, I) is given (sampling)."""
        if r is None:
            r = self.g(z) if noise is None else self.g(z) + math.sqrt(self.eps2) * noise
        return torch.cat([z, r], dim=1)


# --- the model -------------------------------------------------------------------------------------------------------


@models.register("pie")
class PIE(Model):
    name = "pie"
    description = "Pseudo-Invertible Encoder: a flow with Gaussian-constrained discarded dimensions (Beitler et al.)"
    Config = PIEConfig
    capabilities = frozenset({"encode", "decode", "reconstruct", "sample"})
    supports_amp = False  # log-determinants and ε-scaled residuals are not safe in bf16

    def __init__(self, config: PIEConfig, data: DataSpec):
        super().__init__(config, data)
        if data.kind != "image" or len(data.shape) != 3:
            raise AebenchError(f"pie: needs image data (C, H, W), got kind '{data.kind}' of shape {data.shape}")
        lo, hi = data.value_range
        if not hi > lo:
            raise AebenchError(f"pie: empty value range {data.value_range}")
        cfg = config
        c, h, w = data.shape
        f = 2**cfg.conv_blocks
        self.padded = (c, -(-h // f) * f, -(-w // f) * f)  # H, W rounded up to multiples of 2**conv_blocks
        c, h, w = self.padded

        flows, splits = [], []
        for _ in range(cfg.conv_blocks):  # (c, h, w) → squeeze (4c, h/2, w/2) → keep (2c, h/2, w/2)
            flows.append(Flow([Squeeze(), *flow_steps(4 * c, cfg.conv_hidden, True, cfg)]))
            splits.append(Split(2 * c, 2 * c, cfg.conv_hidden, True, cfg.eps2))
            c, h, w = 2 * c, h // 2, w // 2
        shape = (c, h, w)
        dim = math.prod(shape)
        if cfg.latent_dim >= dim:
            raise AebenchError(f"pie: latent_dim {cfg.latent_dim} must be below the flattened size {dim} of {shape}")
        sizes = [s for s in cfg.linear_dims if cfg.latent_dim < s < dim] + [cfg.latent_dim]
        for i, kept in enumerate(sizes):  # dim → keep `kept`
            reshape = [Flatten(shape)] if i == 0 else []
            flows.append(Flow(reshape + flow_steps(dim, cfg.linear_hidden, False, cfg)))
            splits.append(Split(kept, dim - kept, cfg.linear_hidden, False, cfg.eps2))
            dim = kept
        self.flows, self.splits = nn.ModuleList(flows), nn.ModuleList(splits)
        last = cfg.final_block and cfg.latent_dim >= 2  # a coupling needs two halves
        self.final = Flow(flow_steps(cfg.latent_dim, cfg.linear_hidden, False, cfg) if last else [])
        self.n_dims = math.prod(data.shape)  # the loss per dimension counts real pixels, not padding

    # --- data space ↔ flow space --------------------------------------------------------------------------------
    def _to_flow_space(self, x: Tensor, noise: bool) -> Tensor:
        """(B, C, H, W) in value_range → dequantised, centred in [-0.5, 0.5), padded. Without noise: bin centres."""
        lo, hi = self.data.value_range
        deq = self.config.dequantisation
        x01 = ((x - lo) / (hi - lo)).clamp(0, 1)
        u = torch.rand_like(x01) if noise else torch.full_like(x01, 0.5)
        y = x01 * (1 - deq) + deq * u - 0.5  # for 8-bit data and deq = 1/256: k/256 + U(0, 1/256) - 0.5
        if self.padded == tuple(x.shape[1:]):
            return y
        b, (_, h, w) = x.shape[0], x.shape[1:]
        canvas = torch.rand(b, *self.padded, device=x.device) - 0.5 if noise else x.new_zeros(b, *self.padded)
        canvas[:, :, :h, :w] = y
        return canvas

    def _from_flow_space(self, y: Tensor, clamp: bool = True) -> Tensor:
        lo, hi = self.data.value_range
        deq = self.config.dequantisation
        _, h, w = self.data.shape
        x01 = (y[:, :, :h, :w] + 0.5 - deq / 2) / (1 - deq)
        x = lo + x01 * (hi - lo)
        return x.clamp(lo, hi) if clamp else x

    # --- the flow with its splits -------------------------------------------------------------------------------
    def _forward_flow(self, y: Tensor) -> tuple[Tensor, list[Tensor], Tensor, Tensor]:
        """y (B, *padded) → final z (B, latent_dim), the discarded r's, log|det J|, −Σ log N(r | g(z), ε²I)."""
        h, rs = y, []
        logdet = nll_r = y.new_zeros(y.shape[0])
        for flow, split in zip(self.flows, self.splits):
            h, ld = flow(h)
            h, r = split(h)
            logdet, nll_r = logdet + ld, nll_r + split.nll(h, r)
            rs.append(r)
        h, ld = self.final(h)
        return h, rs, logdet + ld, nll_r

    def _inverse_flow(
        self, z: Tensor, rs: list[Tensor] | None = None, generator: torch.Generator | None = None, noise: bool = False
    ) -> Tensor:
        """F⁻¹([z, r]): every r given (then exact), else drawn from N(g(z), ε²I) if `noise`, else at its mean g(z)."""
        h = self.final.inverse(z)
        for i in reversed(range(len(self.flows))):
            split = self.splits[i]
            eps = None
            if rs is None and noise:
                eps = self.randn(h.shape[0], split.discarded, *h.shape[2:], generator=generator)  # r's shape
            h = self.flows[i].inverse(split.join(h, None if rs is None else rs[i], eps))
        return h

    def nll(self, x: Tensor, noise: bool = False) -> dict[str, Tensor]:
        """Per-example negative log-density terms (nats) of data x (B, C, H, W)."""
        z, _, logdet, nll_r = self._forward_flow(self._to_flow_space(x, noise))
        nll_z = 0.5 * z.pow(2).sum(1) + 0.5 * z.shape[1] * math.log(2 * math.pi)
        return {"loss": nll_z + nll_r - logdet, "nll_z": nll_z, "nll_r": nll_r, "logdet": logdet}

    # --- training ---------------------------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"model": torch.optim.Adam(self.parameters(), lr=self.config.lr)}

    def training_step(self, batch: Batch, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        x = batch["x"].to(self.device)  # (B, C, H, W)
        terms = {k: v.mean() for k, v in self.nll(x, noise=True).items()}
        per_dim = terms["loss"] / self.n_dims  # optimise per dimension: gradient scale independent of image size
        optimizer = optimizers["model"]
        optimizer.zero_grad(set_to_none=True)
        per_dim.backward()
        grad_norm = nn.utils.clip_grad_norm_(self.parameters(), self.config.grad_clip)
        optimizer.step()
        logs = {k: v.item() for k, v in terms.items()} | {"nats_per_dim": per_dim.item(), "grad_norm": grad_norm.item()}
        if self.config.dequantisation > 0:  # a discrete likelihood only if the data have 1/dequantisation levels
            logs["bits_per_dim"] = (per_dim.item() - math.log(self.config.dequantisation)) / math.log(2)
        return logs

    # --- capabilities -----------------------------------------------------------------------------------------
    def encode(self, x: Tensor) -> Tensor:
        z, *_ = self._forward_flow(self._to_flow_space(x.to(self.device), noise=False))
        return z  # (B, latent_dim)

    def decode(self, z: Tensor) -> Tensor:
        return self._from_flow_space(self._inverse_flow(z.to(self.device)))  # (B, C, H, W), clamped to the range

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """z ~ N(0, I), r ~ N(g(z), ε²I) (or r = g(z)), x = F⁻¹([z, r]): (n, C, H, W), not clamped to the range."""
        z = self.randn(n, self.config.latent_dim, generator=generator)
        y = self._inverse_flow(z, generator=generator, noise=self.config.sample_r == "gaussian")
        return self._from_flow_space(y, clamp=False)
