"""VAE-GAN (Larsen, Sønderby, Larochelle & Winther, "Autoencoding beyond pixels using a learned similarity metric",
ICML 2016): a VAE whose reconstruction term is measured in the features Dis_l of a GAN discriminator's l-th layer,
the decoder doubling as the GAN's generator. The paper's Algorithm 1, with x̃ = Dec(z), z ~ Enc(x), and
x_p = Dec(z_p), z_p ~ N(0, I):

    L_prior = KL(q(z|x) ‖ N(0, I))                       (summed over latent dimensions, mean over the batch)
    L_llike = ½ ‖Dis_l(x̃) − Dis_l(x)‖²                   (Gaussian with identity covariance on Dis_l, constant dropped;
                                                          summed over features, mean over the batch)
    L_GAN   = −log D(x) − log(1 − D(x̃)) − log(1 − D(x_p))  (the discriminator's loss, BCE means)

    encoder:        L_prior + L_llike
    decoder:        γ L_llike + L_gen,   L_gen = −log D(x̃) − log D(x_p)
    discriminator:  L_GAN                                (not L_llike: Dis_l is not trained to shrink distances)

Both reconstructions and prior samples go to the discriminator as fakes, as the paper. γ weighs "content" against
"style" in the decoder's update only (the paper's §2.3: "θ_Dec ← −∇(γ L_llike − L_GAN)"). The paper states no value;
the authors' code (github.com/andersbll/autoencoding_beyond_pixels, model/aegan.py) scales the decoder's gradients by
w for the reconstruction and (1 − w) for the GAN term with w = recon_vs_gan_weight = 1e-5 in celeba_aegan.py (5e-5
the default of aegan.py), with the same per-sample sums: γ = w / (1 − w) ≈ 1e-5 is this model's default. The GAN
loss does not reach the encoder (the code's ScaleGradient(0) on z). Dis_l is the output of the discriminator's last
convolution before its non-linearity (the code's recon_depth 9: its fourth, deepest convolution, before batch norm).

Differences from the paper's code, for the suite: the generator term is the non-saturating −log D (the code's
decoder descends log(1 − D)), real and fake terms are unweighted (the code weighs real 0.66 to fake 0.34), there is
no equilibrium margin that skips updates (margin 0.35 around 0.68 there), Adam instead of RMSProp, and the suite's
small conv nets (_nets.py; a discriminator of the encoder's shape without batch norm, so that mixed batches score
alike). All three nets step once per batch from the same weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from aebench.baselines._dcgan import backward_into, bce, frozen
from aebench.baselines._nets import ConvDecoder, ConvEncoder
from aebench.model import Batch, DataSpec, Model, ModelConfig
from aebench.registry import models


@dataclass
class VAEGANConfig(ModelConfig):
    latent_dim: int = 8
    hidden: int = 32  # channels of the first conv stage of all three nets; doubled at each later stage
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    gamma: float = 1e-5  # γ: weight of L_llike against the GAN term in the decoder's update (authors' code)


class FeatureDiscriminator(nn.Module):
    """(B, C, H, W) → (B, 1) logits, with `features(x)` = Dis_l, the last convolution's output (flattened)."""

    def __init__(self, data: DataSpec, hidden: int):
        super().__init__()
        body = ConvEncoder(data, hidden, 1)  # stride-2 convs + LeakyReLU, then one linear layer
        self.convs = nn.Sequential(*list(body.convs)[:-1])  # the last LeakyReLU moves to the head
        self.head = nn.Sequential(nn.LeakyReLU(0.2), nn.Flatten(1), body.fc)

    def features(self, x: Tensor) -> Tensor:
        return self.convs(x).flatten(1)  # (B, F): Dis_l(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.convs(x))  # (B, 1)


@models.register("vae-gan")
class VAEGAN(Model):
    name = "vae-gan"
    description = "VAE-GAN: conv VAE whose reconstruction is a distance in discriminator features (Larsen et al.)"
    Config = VAEGANConfig
    capabilities = {"encode", "decode", "reconstruct", "sample"}

    def __init__(self, config: VAEGANConfig, data: DataSpec):
        super().__init__(config, data)
        d = config.latent_dim
        self.encoder = ConvEncoder(data, config.hidden, 2 * d)  # mean and log-variance
        self.decoder = ConvDecoder(data, config.hidden, d)  # output inside the data range
        self.discriminator = FeatureDiscriminator(data, config.hidden)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        return {
            name: torch.optim.Adam(getattr(self, name).parameters(), lr=c.lr, betas=c.betas)
            for name in ("encoder", "decoder", "discriminator")
        }

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mean, logvar = self.encoder(x).chunk(2, dim=1)  # (B, D) each
        return mean, logvar

    def losses(self, x: Tensor, noise: Tensor, prior: Tensor) -> dict[str, Tensor]:
        """The paper's terms on a batch x, reparameterisation noise and prior draws (B, D), at the current weights."""
        mean, logvar = self.posterior(x)
        z = mean + torch.exp(0.5 * logvar) * noise
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).sum(1).mean()
        x_tilde, x_prior = self.decoder(z), self.decoder(prior)
        with frozen(self.discriminator):  # Dis_l is a fixed metric for the VAE
            llike = 0.5 * (self.discriminator.features(x_tilde) - self.discriminator.features(x)).pow(2).sum(1).mean()
            x_gan = self.decoder(z.detach())  # the GAN term does not reach the encoder
            generator = bce(self.discriminator(x_gan), True) + bce(self.discriminator(x_prior), True)
        d_loss = (
            bce(self.discriminator(x), True)
            + bce(self.discriminator(x_tilde.detach()), False)
            + bce(self.discriminator(x_prior.detach()), False)
        )
        return {
            "encoder": kl + llike,
            "decoder": self.config.gamma * llike + generator,
            "discriminator": d_loss,
            "kl": kl,
            "llike": llike,
            "generator": generator,
        }

    def training_step(self, batch: Batch, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        x = batch["x"]  # (B, C, H, W)
        noise = torch.randn(len(x), self.config.latent_dim, device=x.device)
        prior = torch.randn(len(x), self.config.latent_dim, device=x.device)
        terms = self.losses(x, noise, prior)
        nets = ("encoder", "decoder", "discriminator")
        for i, name in enumerate(nets):  # each net's gradient from its own loss only, all from the same weights
            optimizers[name].zero_grad(set_to_none=True)
            backward_into(terms[name], getattr(self, name).parameters(), retain_graph=i < len(nets) - 1)
        for name in nets:
            optimizers[name].step()
        values = torch.stack([t.detach().float() for t in terms.values()]).tolist()  # one device sync
        return dict(zip(terms, values))

    def encode(self, x: Tensor) -> Tensor:
        return self.posterior(x)[0]  # (B, D): the posterior mean

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(z)  # (B, C, H, W)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return self.decode(self.randn(n, self.config.latent_dim, generator=generator))
