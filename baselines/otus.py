"""OTUS: Optimal-Transport-based Unfolding and Simulation (Howard, Mandt, Whiteson, Yang; Sci. Rep. 2022).

A sliced-Wasserstein auto-encoder whose latent space is the parton level: a stochastic encoder q(z|x) maps a
detector-level event x to z̃ (unfolding, `translate`), a stochastic decoder p(x|z) maps a parton-level event back
(the simulation, `translate_back`). Both are ResNet-style MLPs that take standard normal noise concatenated to
their input. The loss is

    MSE(x, x̃)  +  λ_z · SW₂²(z̃, z)  +  λ_x · SW₂²(p(x|z), x),    x̃ ~ p(x | z̃), z̃ ~ q(z | x),

with SW₂² the mean over `projections` random unit directions (fresh each step) of the squared 1-D W₂ between the
projected samples. The MSE is the mean over features and events. λ_z = 20 and 1000 projections as in the paper;
λ_x = 0 by default (the data-space term is the paper's optional extra; at 0 it is not computed), set it > 0 to
train the simulation path directly against the detector-level distribution, with the real z batch as its input.

Unpaired: the SW terms compare sets of events, never pairs. By default (`unpaired`) they compare the z̃ of the
batch's first half with the z of its second half, so the set an event's z̃ is matched to never holds its own z;
the reconstruction uses the whole batch. Pairs are not used, as in the paper.

Decoder fine-tuning, as the authors' notebook (experiments/ppttbar/ppttbar.ipynb, `decoder_finetuning_config`):
in the last `finetune_fraction` of the run only the decoder trains, on τ·SW₂²(x, p(x|z)) alone (β = 0, λ = 0,
τ = `finetune_tau`), with a fresh Adam at `finetune_lr` (1e-4): the optimizer's moments are cleared at the switch,
as their new `optim.Adam(model.decoder.parameters(), lr=1e-4)`. The model learns the run's length from
`configure_schedulers` (the runner passes the budget's steps) and counts its steps in a buffer, so a resumed run
switches at the same step; without a known length (0) there is no fine-tuning.

The published recipe against this file (yiboyang/otus, ppttbar.ipynb and utilityFunctions/): batch 20,000 of x and
an independent 20,000 of z (two DataLoaders shuffled apart: the `paper-otus` budget's batch of 40,000 split in
halves), Adam 1e-3, λ = 20, β = 1, τ = 0, 1,000 projections (`TRAIN_NUM_SLICES`), 1,000 epochs, then the fine-tuning
above for 10 epochs; the anchor terms ν_e = ν_d = 0 (off in ppttbar) and no soft constraint (ρ = 0): as here. Not
reproduced here: their networks see raw GeV standardised per feature inside the model (`raw_io`), have batch-norm
ResNet blocks, a residual connection from input to output, 18 noise inputs, and compute each particle's energy from
its momentum and a fixed mass (0, or 4.7 GeV for b quarks); their reconstruction loss drops events outside the
detector thresholds (`threshold_check`). Our losses are in the task's units (for hep-turbosim, GeV over one scalar,
so proportional to theirs).

Batch size: SW₂² between two minibatches is biased upwards by their sampling noise, which shrinks with the batch;
the paper trains with 20,000 events per batch, and small batches blur the distributions it can match.

Noise: training draws the encoder/decoder noise and the projection directions from torch's global RNG (on the
model's device); `translate` and `translate_back` draw fresh noise from it too, so they are reproducible only
when the caller seeds it (the runner does).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aebench.errors import AebenchError
from aebench.model import Batch, DataSpec, Model, ModelConfig
from aebench.registry import models


def vector_sizes(data: DataSpec, model: str) -> tuple[int, int]:
    """(D_x, D_z) of vector data with a paired counterpart; anything else is bad input for these models."""
    if data.kind != "vector" or len(data.shape) != 1 or data.pair_shape is None or len(data.pair_shape) != 1:
        raise AebenchError(
            f"{model} needs paired vector data (shape (D,), pair_shape (D',)), got {data.kind} data "
            f"{data.shape} with pair_shape {data.pair_shape}"
        )
    return data.shape[0], data.pair_shape[0]


class ResidualMLP(nn.Module):
    """(B, d_in) → (B, d_out): a linear layer to `width`, `depth - 1` residual blocks h + relu(W h), a linear head."""

    def __init__(self, d_in: int, d_out: int, width: int, depth: int):
        super().__init__()
        self.stem = nn.Linear(d_in, width)
        self.blocks = nn.ModuleList(nn.Linear(width, width) for _ in range(depth - 1))
        self.head = nn.Linear(width, d_out)

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu(self.stem(x))  # (B, width)
        for block in self.blocks:
            h = h + F.relu(block(h))
        return self.head(h)  # (B, d_out)


class NoisyMLP(ResidualMLP):
    """A ResidualMLP that concatenates `noise_dim` standard normal numbers to its input: a conditional sampler."""

    def __init__(self, d_in: int, d_out: int, width: int, depth: int, noise_dim: int):
        super().__init__(d_in + noise_dim, d_out, width, depth)
        self.noise_dim = noise_dim

    def forward(self, x: Tensor) -> Tensor:
        noise = torch.randn(len(x), self.noise_dim, device=x.device, dtype=x.dtype)  # global RNG
        return super().forward(torch.cat([x, noise], dim=1))


def random_unit_directions(count: int, dim: int, device: torch.device) -> Tensor:
    """(count, dim) directions uniform on the sphere, from torch's global RNG."""
    return F.normalize(torch.randn(count, dim, device=device), dim=1)


SORT_ROWS = 16  # rows whose sort keys are made and sorted at a time (see `argsort_rows`)


def argsort_rows(p: np.ndarray, threads: int = 1) -> np.ndarray:
    """The permutation sorting each row of p (L, N), equal values in the order of their positions: the same on every
    CPU. numpy's default argsort picks its kernel by the CPU's vector extensions (AVX-512, AVX2, none), and the
    kernels order equal values differently; SW₂²'s gradient sends each projection its partner by rank, so with ties
    (about 3 a row of 20,000 float32 projections) an OTUS run trained differently on an AVX2 machine than on an
    AVX-512 one. float32 rows are sorted as unique 64-bit keys (the float's bits made order-preserving, then the
    position), which any sort orders alike; other dtypes use numpy's stable sort.

    The keys are made and sorted `SORT_ROWS` rows at a time, which keeps them in the cache: 2–3× faster than whole
    at OTUS's 1,000 × 20,000 (0.65–0.95 s against 1.4–2.1 s on one thread of the development machine). With
    `threads` > 1 the chunks are sorted in that many threads (numpy's sort releases the GIL). Each row's order is
    fixed by its unique keys, so chunks and threads never change the result."""
    if p.dtype != np.float32 or p.shape[-1] >= 2**32:
        return np.argsort(p, axis=-1, kind="stable")
    rows = np.ascontiguousarray(p).reshape(-1, p.shape[-1])
    order = np.empty(rows.shape, dtype=np.int64)
    positions = np.arange(rows.shape[1], dtype=np.uint64)

    def sort_chunk(start: int) -> None:
        bits = rows[start : start + SORT_ROWS].view(np.uint32)
        # Unsigned order equals float order once negatives have every bit flipped and positives only the sign bit
        # (-0.0 then sorts before +0.0; both give the same loss and gradient).
        flip = (bits >> np.uint32(31)) * np.uint32(0x7FFFFFFF) | np.uint32(0x80000000)
        keys = (bits ^ flip).astype(np.uint64) << np.uint64(32)
        keys |= positions
        keys.sort(axis=-1)
        order[start : start + SORT_ROWS] = keys & np.uint64(0xFFFFFFFF)

    starts = range(0, rows.shape[0], SORT_ROWS)
    if threads > 1 and len(starts) > 1:
        with ThreadPoolExecutor(min(threads, len(starts))) as pool:
            list(pool.map(sort_chunk, starts))
    else:
        for start in starts:
            sort_chunk(start)
    return order.reshape(p.shape)


def sorted_rows(p: Tensor) -> Tensor:
    """p (L, N) sorted along its rows, differentiable. On the CPU numpy sorts (3–4× faster than torch's sort on one
    thread, the cost of a step at OTUS's batches) in torch's number of threads; values and gradients are those of a
    stable `p.sort(dim=1, stable=True).values`, on any CPU and with any number of threads (`argsort_rows`)."""
    if p.device.type != "cpu":
        return p.sort(dim=1).values
    if not p.requires_grad:
        return torch.from_numpy(np.sort(p.detach().numpy(), axis=1))
    return p.gather(1, torch.from_numpy(argsort_rows(p.detach().numpy(), torch.get_num_threads())))


def sliced_wasserstein_squared(a: Tensor, b: Tensor, directions: Tensor) -> Tensor:
    """SW₂² of two equal-size samples (N, D) along unit `directions` (L, D): the mean over directions of the
    squared 1-D W₂ of the projections, i.e. of the mean squared difference of their sorted values (the authors'
    `sliced_wd` with p = 2). Differentiable; aebench.metrics.sliced_wasserstein gives its square root for the same
    directions.
    """
    if a.shape != b.shape:
        raise AebenchError(f"sliced Wasserstein loss: samples must have the same shape, got {a.shape} and {b.shape}")
    pa = sorted_rows(directions @ a.T)  # (L, N)
    pb = sorted_rows(directions @ b.T)
    return (pa - pb).pow(2).mean()


@dataclass
class OTUSConfig(ModelConfig):
    hidden_units: int = 64  # width of the encoder and decoder MLPs (paper: hidden [64, 64])
    hidden_layers: int = 2
    noise_dim: int = 16  # standard normal numbers concatenated to each network's input (our choice)
    lambda_z: float = 20.0  # weight of SW₂²(z̃, z), the latent (parton-level) term
    lambda_x: float = 0.0  # weight of SW₂²(p(x|z), x), the optional detector-level term
    projections: int = 1000  # random directions per SW₂² estimate, fresh each step
    finetune_fraction: float = 0.2  # last fraction of the run in which only the decoder trains (budgets set it)
    finetune_tau: float = 1.0  # weight of SW₂²(x, p(x|z)) in fine-tuning (the notebook's τ)
    finetune_lr: float = 1e-4  # the fine-tuning Adam's learning rate
    unpaired: bool = True  # the SW terms match the batch's first half (z̃, x) with its second half's z
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)


@models.register("otus")
class OTUS(Model):
    name = "otus"
    description = "OTUS: stochastic SW auto-encoder with the parton level as latent space (Howard et al. 2022)"
    Config = OTUSConfig
    capabilities = {"translate", "translate_back"}
    supports_amp = False  # tiny MLPs gain nothing from bf16, and the sorted differences of SW₂² want float32

    def __init__(self, config: OTUSConfig, data: DataSpec):
        super().__init__(config, data)
        d_x, d_z = vector_sizes(data, self.name)
        if config.hidden_units < 1 or config.hidden_layers < 1 or config.noise_dim < 0 or config.projections < 1:
            raise AebenchError("otus: hidden_units, hidden_layers and projections must be ≥ 1, noise_dim ≥ 0")
        if not 0 <= config.finetune_fraction < 1:
            raise AebenchError(f"otus: finetune_fraction must be in [0, 1), got {config.finetune_fraction}")
        width, depth = config.hidden_units, config.hidden_layers
        self.encoder = NoisyMLP(d_x, d_z, width, depth, config.noise_dim)  # q(z|x)
        self.decoder = NoisyMLP(d_z, d_x, width, depth, config.noise_dim)  # p(x|z)
        # Buffers so that a checkpoint carries them and a resumed run enters fine-tuning at the same step.
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self.register_buffer("total_steps", torch.zeros((), dtype=torch.long))  # 0: unknown, no fine-tuning

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"model": torch.optim.Adam(self.parameters(), lr=self.config.lr, betas=self.config.betas)}

    def configure_schedulers(
        self, optimizers: dict[str, torch.optim.Optimizer], total_steps: int
    ) -> dict[str, torch.optim.lr_scheduler.LRScheduler]:
        self.total_steps.fill_(total_steps)  # the run's length fixes when decoder fine-tuning starts
        return {}

    def finetuning_starts(self) -> int | None:
        """The first decoder-only step, or None when the run's length is unknown or the fraction is 0."""
        total = int(self.total_steps)
        tail = round(self.config.finetune_fraction * total)
        return total - tail if total > 0 and tail > 0 else None

    def training_step(self, batch: Batch, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        x, z = batch["x"], batch["z"]  # (B, D_x), (B, D_z)
        if len(x) < 4:
            raise AebenchError(f"otus: a batch needs at least 4 events for its SW terms, got {len(x)}")
        start = self.finetuning_starts()
        decoder_only = start is not None and int(self.step) >= start
        n = len(x) // 2 if self.config.unpaired else len(x)
        x_set, z_set = (x[:n], z[n : 2 * n]) if self.config.unpaired else (x, z)  # disjoint events when unpaired
        optimizer = optimizers["model"]
        if decoder_only:
            if int(self.step) == start:  # a fresh Adam for the decoder, as the notebook's
                optimizer.state.clear()
            for group in optimizer.param_groups:
                group["lr"] = self.config.finetune_lr
            sw_x = self.sliced_wasserstein(self.decoder(z_set), x_set)
            loss, terms = self.config.finetune_tau * sw_x, {"sw_x": sw_x}
        else:
            z_tilde = self.encoder(x)  # (B, D_z)
            mse = F.mse_loss(self.decoder(z_tilde), x)
            sw_z = self.sliced_wasserstein(z_tilde[:n], z_set)
            loss = mse + self.config.lambda_z * sw_z
            terms = {"mse": mse, "sw_z": sw_z}
            if self.config.lambda_x > 0:  # not even logged at 0: on CPU the sorts dominate a step's time
                terms["sw_x"] = self.sliced_wasserstein(self.decoder(z_set), x_set)
                loss = loss + self.config.lambda_x * terms["sw_x"]
        optimizer.zero_grad(set_to_none=True)  # encoder grads stay None in fine-tuning: Adam skips them
        loss.backward()
        optimizer.step()
        self.step += 1
        values = torch.stack([loss, *terms.values()]).detach().tolist()  # one device sync
        return {**dict(zip(("loss", *terms), values)), "decoder_only": float(decoder_only)}

    def sliced_wasserstein(self, a: Tensor, b: Tensor) -> Tensor:
        """SW₂² of two (n, D) samples along `projections` fresh random directions."""
        return sliced_wasserstein_squared(a, b, random_unit_directions(self.config.projections, a.shape[1], a.device))

    def translate(self, x: Tensor) -> Tensor:
        return self.encoder(x)  # (B, D_z): one draw of z̃ ~ q(z|x)

    def translate_back(self, z: Tensor) -> Tensor:
        return self.decoder(z)  # (B, D_x): one draw of x̃ ~ p(x|z), the simulation
