"""ALAE, the adversarial latent auto-encoder (Pidhorskyi, Adjeroh & Doretto, CVPR 2020), in its MNIST variant with
MLPs. A mapping F turns prior draws z ~ N(0, I) into latents w, a generator G turns w into images, an encoder E
turns images into latents, and a discriminator D scores latents: the GAN's discriminator is D∘E, and the
auto-encoder reconstructs in the latent space, w ≈ E(G(w)). Each batch takes the paper's three steps (Algorithm 1),
each at the weights the previous one left:

    I   (E, D):  softplus(D(E(G(F(z))))) + softplus(−D(E(x))) + γ/2 ‖∇_x D(E(x))‖²     (R1 on real data)
    II  (F, G):  softplus(−D(E(G(F(z)))))                                             (non-saturating)
    III (E, G):  ‖F(z) − E(G(F(z)))‖²                                                (mean over the latent)

As the authors' code (github.com/podgorskiy/ALAE: losses.py, model.py, net.py, train_alae.py, configs/mnist_fc.yaml):
γ = 10 (r1_gamma of discriminator_logistic_simple_gp, which training uses unchanged); E: 784 → 1024 → 1024 → w, G:
w → 1024 → 1024 → 784, LeakyReLU(0.2) after every layer of E (its last too) and every hidden layer of G (EncoderFC,
GeneratorFC); F: pixel norm of z, then 6 layers of width |w| with LeakyReLU(0.2) (MAPPING_LAYERS 6, MappingF); D: 3
linear layers of width |w| to one score (MappingD: no activations between them); |w| = 50 (LATENT_SPACE_SIZE);
Adam with β = (0, 0.99) (defaults.py) and lr 0.002 (BASE_LEARNING_RATE), batch 128 there. In step III the target
F(z) is fixed and F is not updated (the paper's algorithm: E and G only; the code also moves F through G's input).

The equalised learning rate as the code's implicit variant (lreq.py, custom_adam.py): every weight starts
N(0, 2 / fan_in), biases at 0, and Adam's step on a weight is scaled by √2 / √fan_in · lrmul, on a bias by lrmul, with
lrmul 0.1 in F and D and 1 in E and G (without it, lr 0.002 on 1024-wide layers diverged: reconstruction MSE 0.17 at
step 0, 0.40 at step 300 on mnist-sharpness).

Samples, codes and reconstructions come from moving averages of the four nets, as the code's (train_alae.py: after
every step `model_s.lerp(model, 1 − β)` with β = 0.5^(batch / 10,000), i.e. the old weights' share halves every
10,000 training images; save_sample and the evaluations use model_s): the trained weights of a GAN's generator
jitter from step to step, and that jitter shows as speckle in single-step samples. `ema_half_life` = 0 samples from
the trained weights instead. Differences: Adam's usual bias correction (with β₁ = 0 only the second moment's
matters, which the code keeps too); no truncation trick (the code's dlatent average is used for its figures only).
The MLPs read any data shape flattened, and G's output is linear (clipped to the data range by `decode`).
`latent_dim` is |w| (the suite's tasks may set it, e.g. mnist-sharpness's 8); `hidden_units` is the E and G width.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aebench.baselines._dcgan import frozen
from aebench.model import Batch, DataSpec, Model, ModelConfig
from aebench.registry import models


@dataclass
class ALAEConfig(ModelConfig):
    latent_dim: int = 50  # |z| = |w|
    hidden_units: int = 1024  # widths of E's and G's two hidden layers
    mapping_layers: int = 6  # F
    discriminator_layers: int = 3  # D
    r1_gamma: float = 10.0
    lr: float = 0.002
    betas: tuple[float, float] = (0.0, 0.99)
    ema_half_life: float = 10_000.0  # training images over which the averaged nets' old weights halve; 0: none


def equalised_linear(n_in: int, n_out: int) -> nn.Linear:
    """A linear layer initialised as the code's lreq.Linear: weights N(0, 2 / fan_in), zero bias."""
    layer = nn.Linear(n_in, n_out)
    nn.init.normal_(layer.weight, std=math.sqrt(2 / n_in))
    nn.init.zeros_(layer.bias)
    return layer


def leaky_mlp(sizes: list[int], last_activation: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [equalised_linear(a, b), nn.LeakyReLU(0.2)]
    return nn.Sequential(*(layers if last_activation else layers[:-1]))


def equalised_groups(net: nn.Module, lr: float, lrmul: float) -> list[dict]:
    """Adam parameter groups whose steps are those of the code's LREQAdam on `net`'s linear layers."""
    groups = []
    for layer in net.modules():
        if isinstance(layer, nn.Linear):
            groups.append({"params": [layer.weight], "lr": lr * lrmul * math.sqrt(2 / layer.in_features)})
            groups.append({"params": [layer.bias], "lr": lr * lrmul})
    return groups


class Mapping(nn.Module):
    """F: (B, |z|) → (B, |w|), pixel norm then LeakyReLU layers."""

    def __init__(self, latent_dim: int, n_layers: int):
        super().__init__()
        self.net = leaky_mlp([latent_dim] * (n_layers + 1), last_activation=True)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z * torch.rsqrt(z.pow(2).mean(1, keepdim=True) + 1e-8))


@models.register("alae")
class ALAE(Model):
    name = "alae"
    description = "ALAE (MNIST MLP variant): mapping F, generator G, encoder E, latent discriminator D; R1 10"
    Config = ALAEConfig
    capabilities = {"encode", "decode", "reconstruct", "sample"}

    def __init__(self, config: ALAEConfig, data: DataSpec):
        super().__init__(config, data)
        n, w, h = math.prod(data.shape), config.latent_dim, config.hidden_units
        self.mapping = Mapping(w, config.mapping_layers)
        self.generator = leaky_mlp([w, h, h, n], last_activation=False)
        self.encoder = leaky_mlp([n, h, h, w], last_activation=True)
        self.discriminator = nn.Sequential(  # linear layers, as MappingD
            *(equalised_linear(w, w) for _ in range(config.discriminator_layers - 1)), equalised_linear(w, 1)
        )
        # The moving averages of the four nets (the code's model_s), which sample, encode and decode. Not trained.
        trained = {"mapping": self.mapping, "generator": self.generator, "encoder": self.encoder,
                   "discriminator": self.discriminator}  # fmt: skip
        self.averaged = nn.ModuleDict({name: copy.deepcopy(net) for name, net in trained.items()})
        self.averaged.requires_grad_(False)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config

        def adam(groups: list[dict]) -> torch.optim.Optimizer:
            return torch.optim.Adam(groups, lr=c.lr, betas=c.betas)

        # As the authors' code: one optimizer for E and D, one for F and G (lrmul 0.1 in F and D); step III moves E
        # and G only (F and D get no gradient there, and Adam skips them).
        return {
            "encoder": adam(
                equalised_groups(self.encoder, c.lr, 1.0) + equalised_groups(self.discriminator, c.lr, 0.1)
            ),
            "generator": adam(equalised_groups(self.mapping, c.lr, 0.1) + equalised_groups(self.generator, c.lr, 1.0)),
        }

    def n_parameters(self) -> int:
        """The trained weights (the averaged copies are as many again)."""
        return sum(p.numel() for name, p in self.named_parameters() if not name.startswith("averaged."))

    def generate(self, w: Tensor, net: nn.Module | None = None) -> Tensor:
        """G(w) as images (B, ...), linear output; `net` in place of the trained G (its moving average)."""
        return (self.generator if net is None else net)(w).view(len(w), *self.data.shape)

    def latent(self, x: Tensor, net: nn.Module | None = None) -> Tensor:
        """E(x), (B, |w|); `net` in place of the trained E."""
        return (self.encoder if net is None else net)(x.flatten(1))

    def inference_net(self, name: str) -> nn.Module:
        """The net that samples, encodes and decodes: the moving average, or the trained net without one."""
        return self.averaged[name] if self.config.ema_half_life > 0 else getattr(self, name)

    @torch.no_grad()
    def update_averages(self, batch_size: int) -> None:
        """The code's `model_s.lerp(model, 1 − β)`, β = 0.5^(batch / half-life), over every weight of the four nets."""
        if self.config.ema_half_life <= 0:
            return
        beta = 0.5 ** (batch_size / self.config.ema_half_life)
        for name, averaged in self.averaged.items():
            for mean, weight in zip(averaged.parameters(), getattr(self, name).parameters()):
                mean.lerp_(weight, 1.0 - beta)

    def score(self, x: Tensor) -> Tensor:
        return self.discriminator(self.latent(x))[:, 0]  # (B,): D(E(x))

    def discriminator_loss(self, x: Tensor, z: Tensor) -> dict[str, Tensor]:
        """Step I at the current weights."""
        with torch.no_grad():
            fake = self.generate(self.mapping(z))
        real = x.detach().requires_grad_(True)
        real_score = self.score(real)
        (grad,) = torch.autograd.grad(real_score.sum(), real, create_graph=True)
        r1 = grad.pow(2).flatten(1).sum(1).mean()
        adversarial = F.softplus(self.score(fake)).mean() + F.softplus(-real_score).mean()
        return {"d_loss": adversarial + 0.5 * self.config.r1_gamma * r1, "r1": r1}

    def generator_loss(self, z: Tensor) -> Tensor:
        """Step II at the current weights."""
        with frozen(self.encoder), frozen(self.discriminator):
            return F.softplus(-self.score(self.generate(self.mapping(z)))).mean()

    def latent_loss(self, z: Tensor) -> Tensor:
        """Step III at the current weights."""
        with torch.no_grad():
            w = self.mapping(z)
        return (w - self.latent(self.generate(w))).pow(2).mean()

    def training_step(self, batch: Batch, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        x = batch["x"]
        d = self.config.latent_dim
        z1, z2, z3 = (torch.randn(len(x), d, device=x.device) for _ in range(3))  # a fresh draw per step
        enc, gen = optimizers["encoder"], optimizers["generator"]
        enc.zero_grad(set_to_none=True)
        terms = self.discriminator_loss(x, z1)
        self.backward(terms["d_loss"])
        enc.step()
        gen.zero_grad(set_to_none=True)
        terms["g_loss"] = self.generator_loss(z2)
        self.backward(terms["g_loss"])
        gen.step()
        enc.zero_grad(set_to_none=True)
        gen.zero_grad(set_to_none=True)
        terms["latent_mse"] = self.latent_loss(z3)
        self.backward(terms["latent_mse"])
        enc.step()
        gen.step()
        self.update_averages(len(x))
        values = torch.stack([t.detach().float() for t in terms.values()]).tolist()  # one device sync
        return dict(zip(terms, values))

    def encode(self, x: Tensor) -> Tensor:
        return self.latent(x, self.inference_net("encoder"))  # (B, |w|)

    def decode(self, w: Tensor) -> Tensor:
        return self.generate(w, self.inference_net("generator")).clamp(*self.data.value_range)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return self.decode(self.inference_net("mapping")(self.randn(n, self.config.latent_dim, generator=generator)))
