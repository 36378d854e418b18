"""VQ-VAE (van den Oord, Vinyals & Kavukcuoglu, "Neural Discrete Representation Learning", NeurIPS 2017): a conv
encoder's output map z_e(x) (B, D, h, w) is snapped, position by position, to its nearest of K codebook vectors e_k;
the decoder sees the snapped map z_q(x). The gradient skips the snap (straight-through: z_e + sg(z_q − z_e)).

    loss = ‖x − D(z_q)‖²  +  β ‖z_e − sg(e)‖²                                 (codebook: EMA, the default)
    loss = ‖x − D(z_q)‖²  +  ‖sg(z_e) − e‖²  +  β ‖z_e − sg(e)‖²              (codebook: "loss", the paper's eq. 3)

β = 0.25 (§3.2: the paper uses it in all its experiments and finds results robust from 0.1 to 2.0). Every squared
norm is a mean over its elements. The EMA codebook is the paper's appendix A.1 with decay γ = 0.99: per code
i, with n_i the batch's vectors snapped to it and Σ_j z_e,j their sum,

    N_i ← γ N_i + (1 − γ) n_i,    m_i ← γ m_i + (1 − γ) Σ_j z_e,j,    e_i ← m_i / N_i.

N starts at 1 and m at the initial codebook, so an unused code keeps its place (m_i / N_i is unchanged) rather than
flying off (N = 0 and the Laplace smoothing of the Sonnet code). The codebook starts as K encoder outputs of the
first training batch, drawn at random (a data-dependent start, not the paper's: from Sonnet's U(−1/K, 1/K) every code
but one or two stayed unused on the 8×8 blobs of the tests in one seed of three, relative quantisation error 1.0
against 0.13 to 0.19; with it, see tests/test_family_baselines.py). K = 512
as the paper's image models; D = 16 and two stride-2 convolutions (28×28 → a 7×7 code map) are this suite's choice
for small images (the paper does not run MNIST). The decoder's output is linear, as the suite's `ae` (`decode`
clips it to the data range).

Sampling needs a prior over code maps: the paper fits a PixelCNN to the codes of the trained VQ-VAE. Here a small
PixelCNN (van den Oord et al. 2016: a 7×7 mask-A convolution, then `prior_layers` residual 3×3 mask-B
convolutions, a 1×1 head to K logits; causal in raster order) is trained alongside, at every step, by cross-entropy
on the batch's current code indices (detached), with its own optimizer: one run's step budget covers both, and at
the end the prior has followed the codes as they settled. `sample` draws a code map position by position from it
(a CPU generator makes the draws reproducible) and decodes it.

The latent of `encode`/`decode` is the quantised map z_q, flattened (B, D·h·w): `decode` snaps its input to the
codebook first, so decode(encode(x)) = reconstruct(x), and a mix of two codes decodes as its nearest codes. The
config has no `latent_dim`: the code map's size follows from the image (`latent_size`), and a task's `latent_dim`
override does not reach this model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aebench.baselines._nets import image_shape
from aebench.errors import AebenchError
from aebench.model import Batch, DataSpec, Model, ModelConfig
from aebench.registry import models


@dataclass
class VQVAEConfig(ModelConfig):
    hidden: int = 32  # channels of the first conv stage (64 at the second)
    embedding_dim: int = 16  # D: the size of one code vector
    codebook_size: int = 512  # K
    commitment: float = 0.25  # β
    codebook: Literal["ema", "loss"] = "ema"
    decay: float = 0.99  # γ of the EMA codebook
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    prior_hidden: int = 32  # channels of the PixelCNN prior
    prior_layers: int = 3  # its residual mask-B layers
    prior_lr: float = 1e-3


class MaskedConv2d(nn.Conv2d):
    """A PixelCNN convolution: position (r, c) sees the rows above and the positions left of it in its row, and
    itself too for mask "B" (mask "A", the first layer, excludes it)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, mask: Literal["A", "B"]):
        super().__init__(c_in, c_out, kernel, padding=kernel // 2)
        centre = kernel // 2
        m = torch.ones(kernel, kernel)
        m[centre, centre + (mask == "B") :] = 0
        m[centre + 1 :] = 0
        self.register_buffer("mask", m[None, None], persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


class PixelCNNPrior(nn.Module):
    """(B, h, w) code indices → (B, K, h, w) logits of each position given the positions before it."""

    def __init__(self, n_codes: int, hidden: int, n_layers: int):
        super().__init__()
        self.embed = nn.Embedding(n_codes, hidden)
        self.first = MaskedConv2d(hidden, hidden, 7, "A")
        self.layers = nn.ModuleList(MaskedConv2d(hidden, hidden, 3, "B") for _ in range(n_layers))
        self.head = nn.Conv2d(hidden, n_codes, 1)

    def forward(self, codes: Tensor) -> Tensor:
        h = self.first(self.embed(codes).permute(0, 3, 1, 2))  # (B, hidden, h, w)
        for layer in self.layers:
            h = h + layer(F.relu(h))
        return self.head(F.relu(h))


@models.register("vq-vae")
class VQVAE(Model):
    name = "vq-vae"
    description = "VQ-VAE: conv encoder snapped to a 512-code EMA codebook (β 0.25), PixelCNN prior over the code map"
    Config = VQVAEConfig
    capabilities = {"encode", "decode", "reconstruct", "sample"}

    def __init__(self, config: VQVAEConfig, data: DataSpec):
        super().__init__(config, data)
        c, h, w = image_shape(data)
        if h % 4 or w % 4:
            raise AebenchError(f"vq-vae: image sides must be multiples of 4 (two stride-2 convolutions), got {h}×{w}")
        if config.codebook not in ("ema", "loss"):
            raise AebenchError(f"vq-vae: unknown codebook '{config.codebook}' (known: ema, loss)")
        k, d, ch = config.codebook_size, config.embedding_dim, config.hidden
        self.grid = (h // 4, w // 4)
        self.encoder = nn.Sequential(  # (B, C, H, W) → (B, D, H/4, W/4)
            nn.Conv2d(c, ch, 4, 2, 1), nn.ReLU(), nn.Conv2d(ch, 2 * ch, 4, 2, 1), nn.ReLU(), nn.Conv2d(2 * ch, d, 1)
        )
        self.decoder = nn.Sequential(  # (B, D, H/4, W/4) → (B, C, H, W), linear output
            nn.Conv2d(d, 2 * ch, 3, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(2 * ch, ch, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(ch, c, 4, 2, 1),
        )  # fmt: skip
        codebook = torch.zeros(k, d)  # set from the first batch's encoder outputs (`start_codebook`)
        self.register_buffer("codebook_started", torch.tensor(False))
        if config.codebook == "ema":
            self.register_buffer("codebook", codebook)
            self.register_buffer("ema_count", torch.ones(k))  # N_i
            self.register_buffer("ema_sum", codebook.clone())  # m_i
        else:
            self.codebook = nn.Parameter(codebook)
        self.prior = PixelCNNPrior(k, config.prior_hidden, config.prior_layers)

    @property
    def latent_size(self) -> int:
        """Length of `encode`'s output: the flattened code map, D·h·w."""
        return self.config.embedding_dim * self.grid[0] * self.grid[1]

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        autoencoder = [*self.encoder.parameters(), *self.decoder.parameters()]
        if c.codebook == "loss":
            autoencoder.append(self.codebook)
        return {
            "autoencoder": torch.optim.Adam(autoencoder, lr=c.lr, betas=c.betas),
            "prior": torch.optim.Adam(self.prior.parameters(), lr=c.prior_lr, betas=c.betas),
        }

    # --- quantisation ---------------------------------------------------------------------------------------------
    def nearest(self, z_e: Tensor) -> Tensor:
        """(B, D, h, w) → (B, h, w) index of the nearest code at each position (in float32, also under autocast)."""
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, z_e.shape[1]).float()  # (B·h·w, D)
        with torch.autocast(flat.device.type, enabled=False):
            e = self.codebook.float()
            distances = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ e.T + e.pow(2).sum(1)  # (B·h·w, K)
        return distances.argmin(1).view(z_e.shape[0], *z_e.shape[2:])

    def lookup(self, codes: Tensor) -> Tensor:
        """(B, h, w) indices → (B, D, h, w) code vectors."""
        return self.codebook[codes].permute(0, 3, 1, 2)

    @torch.no_grad()
    def start_codebook(self, z_e: Tensor) -> None:
        """The codebook (and the EMA's m) := K of the batch's encoder output vectors, drawn without replacement when
        there are enough (global RNG: reproducible from the run's seed)."""
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, z_e.shape[1]).float()  # (B·h·w, D)
        k = self.config.codebook_size
        n = len(flat)
        picks = torch.randperm(n, device=flat.device)[:k] if n >= k else torch.randint(n, (k,), device=flat.device)
        self.codebook.copy_(flat[picks])
        if self.config.codebook == "ema":
            self.ema_sum.copy_(flat[picks])
        self.codebook_started.fill_(True)

    @torch.no_grad()
    def update_codebook(self, z_e: Tensor, codes: Tensor) -> None:
        """The paper's EMA step (appendix A.1) from a batch's encoder outputs and their nearest codes."""
        g = self.config.decay
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, z_e.shape[1]).float()  # (B·h·w, D)
        onehot = F.one_hot(codes.reshape(-1), self.config.codebook_size).float()  # (B·h·w, K)
        with torch.autocast(flat.device.type, enabled=False):  # sums of thousands of vectors: float32
            self.ema_count.mul_(g).add_(onehot.sum(0), alpha=1 - g)
            self.ema_sum.mul_(g).add_(onehot.T @ flat, alpha=1 - g)
            self.codebook.copy_(self.ema_sum / self.ema_count[:, None])

    # --- training -------------------------------------------------------------------------------------------------
    def losses(self, x: Tensor) -> tuple[dict[str, Tensor], Tensor, Tensor]:
        """The paper's terms on a batch x at the current weights, with z_e and the codes (for the EMA step)."""
        z_e = self.encoder(x)  # (B, D, h, w)
        codes = self.nearest(z_e.detach())
        e = self.lookup(codes)
        z_q = z_e + (e - z_e).detach()  # straight-through: forward e, gradient to z_e
        mse = (self.decoder(z_q) - x).pow(2).mean()
        commitment = (z_e - e.detach()).pow(2).mean()
        loss = mse + self.config.commitment * commitment
        terms = {"mse": mse, "commitment": commitment}
        if self.config.codebook == "loss":
            terms["codebook"] = (z_e.detach() - e).pow(2).mean()
            loss = loss + terms["codebook"]
        prior_nll = F.cross_entropy(self.prior(codes), codes)  # nats per position
        used = torch.bincount(codes.reshape(-1), minlength=self.config.codebook_size).float()
        p = used / used.sum()
        perplexity = torch.exp(-(p * torch.log(p + 1e-10)).sum())  # how many codes the batch uses, in effect
        return {"loss": loss, **terms, "prior_nll": prior_nll, "perplexity": perplexity}, z_e, codes

    def training_step(self, batch: Batch, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        x = batch["x"]  # (B, C, H, W)
        if not self.codebook_started:
            with torch.no_grad():
                self.start_codebook(self.encoder(x))
        terms, z_e, codes = self.losses(x)
        for name, loss in (("autoencoder", terms["loss"]), ("prior", terms["prior_nll"])):
            optimizers[name].zero_grad(set_to_none=True)
            self.backward(loss)  # the two graphs are disjoint: codes are indices
            optimizers[name].step()
        if self.config.codebook == "ema":
            self.update_codebook(z_e.detach(), codes)
        values = torch.stack([t.detach().float() for t in terms.values()]).tolist()  # one device sync
        return dict(zip(terms, values))

    # --- capabilities ---------------------------------------------------------------------------------------------
    def encode(self, x: Tensor) -> Tensor:
        return self.lookup(self.nearest(self.encoder(x))).flatten(1)  # (B, D·h·w): z_q

    def decode(self, z: Tensor) -> Tensor:
        z_e = z.view(len(z), self.config.embedding_dim, *self.grid)
        return self.decode_codes(self.nearest(z_e))

    def decode_codes(self, codes: Tensor) -> Tensor:
        return self.decoder(self.lookup(codes)).clamp(*self.data.value_range)  # (B, C, H, W)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        h, w = self.grid
        codes = torch.zeros(n, h, w, dtype=torch.long, device=self.device)
        for r in range(h):
            for c in range(w):
                probs = F.softmax(self.prior(codes)[:, :, r, c].float(), dim=1).cpu()  # (n, K)
                codes[:, r, c] = torch.multinomial(probs, 1, generator=generator)[:, 0].to(self.device)
        return self.decode_codes(codes)
