"""The GAN baselines (gan, acgan, wgan-gp, wgan-div): training steps, penalties against hand computations, acGAN's
class conditioning, reproducible sampling, save/load, every variant learning the 8-Gaussians toy (mode coverage),
and the errors for data they cannot handle."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from aebench.baselines.wgan_gp import gradient_penalty
from aebench.config import build_config
from aebench.errors import AebenchError
from aebench.model import DataSpec, Model
from aebench.registry import models

GANS = ["gan", "acgan", "wgan-gp", "wgan-div"]
RGB16 = DataSpec(shape=(3, 16, 16), value_range=(-1.0, 1.0), n_classes=2)


def build(name: str, data: DataSpec = RGB16, **overrides) -> Model:
    torch.manual_seed(0)
    cls = models.get(name)
    return cls(build_config(cls.Config, {"latent_dim": 8, "hidden_channels": 8, **overrides}), data)


def batch(data: DataSpec = RGB16, n: int = 8, seed: int = 1) -> dict[str, Tensor]:
    generator = torch.Generator().manual_seed(seed)
    low, high = data.value_range
    x = low + (high - low) * torch.rand(n, *data.shape, generator=generator)
    return {"x": x, "y": torch.randint(0, data.n_classes or 1, (n,), generator=generator)}


def discriminator(model: Model) -> nn.Module:
    return model.critic if hasattr(model, "critic") else model.discriminator


@pytest.mark.parametrize("name", GANS)
def test_a_training_step_is_finite_and_updates_generator_and_discriminator(name):
    model = build(name)
    g_before = [p.detach().clone() for p in model.generator.parameters()]
    d_before = [p.detach().clone() for p in discriminator(model).parameters()]
    losses = model.training_step(batch(), model.configure_optimizers())
    assert {"d_loss", "g_loss"} <= losses.keys()
    assert all(isinstance(v, float) and torch.isfinite(torch.tensor(v)) for v in losses.values()), losses
    assert any(not torch.equal(b, p) for b, p in zip(g_before, model.generator.parameters()))
    assert any(not torch.equal(b, p) for b, p in zip(d_before, discriminator(model).parameters()))
    assert all(p.requires_grad for p in discriminator(model).parameters())  # unfrozen after the generator step


@pytest.mark.parametrize("name", GANS)
@pytest.mark.parametrize("shape, value_range", [((1, 28, 28), (0.0, 1.0)), ((3, 64, 64), (-1.0, 1.0))])
def test_samples_have_the_data_shape_and_stay_in_the_value_range(name, shape, value_range):
    data = DataSpec(shape=shape, value_range=value_range, n_classes=10)
    model = build(name, data, hidden_channels=4)  # in training mode BatchNorm scales the activations to ~1
    with torch.no_grad():
        # A large generator output weight pushes tanh into saturation: the samples must still stay in range.
        last = [m for m in model.generator.modules() if isinstance(m, nn.ConvTranspose2d)][-1]
        last.weight.mul_(1000)
        x = model.sample(4, torch.Generator().manual_seed(0))
    assert x.shape == (4, *shape)
    assert value_range[0] <= x.min() < x.max() <= value_range[1]
    assert x.min() < value_range[0] + 0.01 and x.max() > value_range[1] - 0.01  # tanh's range spans the whole range


@pytest.mark.parametrize("name", GANS)
def test_sample_is_reproducible_from_the_generator_and_varies_with_it(name):
    model = build(name).eval()
    with torch.no_grad():
        a = model.sample(5, torch.Generator().manual_seed(3))
        b = model.sample(5, torch.Generator().manual_seed(3))
        c = model.sample(5, torch.Generator().manual_seed(4))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.allclose(a, c)


@pytest.mark.parametrize("name", GANS)
def test_save_load_round_trip_is_exact(name, tmp_path):
    model = build(name)
    model.training_step(batch(), model.configure_optimizers())
    model.eval()
    torch.save(model.state_dict(), tmp_path / "model.pt")
    clone = type(model)(model.config, RGB16).eval()
    clone.load_state_dict(torch.load(tmp_path / "model.pt"))
    with torch.no_grad():
        torch.testing.assert_close(
            model.sample(6, torch.Generator().manual_seed(5)),
            clone.sample(6, torch.Generator().manual_seed(5)),
            rtol=0,
            atol=0,
        )
        if name == "acgan":
            labels = torch.tensor([0, 1, 1, 0])
            a = model.sample_class(labels, torch.Generator().manual_seed(6))
            b = clone.sample_class(labels, torch.Generator().manual_seed(6))
            torch.testing.assert_close(a, b, rtol=0, atol=0)


# --- the penalties against hand computations ----------------------------------------------------------------------


class Linear(nn.Module):
    """D(x) = w·x + b: ∇D = w everywhere."""

    def __init__(self, n: int):
        super().__init__()
        self.w = nn.Parameter(torch.randn(n, generator=torch.Generator().manual_seed(7)) * 0.05)
        self.b = nn.Parameter(torch.tensor(0.3))

    def forward(self, x: Tensor) -> Tensor:
        return (x.flatten(1) @ self.w + self.b)[:, None]  # (B, 1)


class Quadratic(nn.Module):
    """D(x) = ½ Σ a·x²: ∇D(x) = a·x, different for every x."""

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.a = nn.Parameter(torch.rand(shape, generator=torch.Generator().manual_seed(8)) * 0.2)

    def forward(self, x: Tensor) -> Tensor:
        return 0.5 * (self.a * x.pow(2)).flatten(1).sum(dim=1, keepdim=True)  # (B, 1)


def real_fake_alpha(n: int = 6) -> tuple[Tensor, Tensor, Tensor]:
    generator = torch.Generator().manual_seed(9)
    real = torch.rand(n, *RGB16.shape, generator=generator) * 2 - 1
    fake = torch.rand(n, *RGB16.shape, generator=generator) * 2 - 1
    return real, fake, torch.rand(n, 1, 1, 1, generator=generator)


def test_wgan_gp_penalty_equals_the_hand_computation():
    model = build("wgan-gp")
    real, fake, alpha = real_fake_alpha()
    model.critic = Linear(real[0].numel())
    loss, penalty, wasserstein = model.critic_loss(real, fake, alpha)
    w = model.critic.w.detach()
    torch.testing.assert_close(penalty, 10.0 * (w.norm() - 1) ** 2)  # λ(‖w‖ − 1)², whatever the interpolates
    torch.testing.assert_close(wasserstein, (real.flatten(1) - fake.flatten(1)).mean(0) @ w)
    torch.testing.assert_close(loss, penalty - wasserstein)

    # A critic whose gradient varies: the penalty is taken at x̂ = α·real + (1 − α)·fake, one α per sample.
    critic = Quadratic(RGB16.shape)
    x_hat = alpha * real + (1 - alpha) * fake
    norms = (critic.a.detach() * x_hat).flatten(1).norm(dim=1)  # (B,)
    torch.testing.assert_close(gradient_penalty(critic, real, fake, alpha), ((norms - 1) ** 2).mean())


def test_wgan_div_penalty_equals_the_hand_computation():
    model = build("wgan-div")
    real, fake, alpha = real_fake_alpha()
    model.critic = Linear(real[0].numel())
    loss, penalty, wasserstein = model.critic_loss(real, fake)
    w = model.critic.w.detach()
    # (k/2)·(E_real‖∇D‖^p + E_fake‖∇D‖^p) with ∇D = w on both: k·‖w‖^p, k = 2, p = 6.
    torch.testing.assert_close(penalty, 2 / 2 * (w.norm() ** 6 + w.norm() ** 6))
    torch.testing.assert_close(wasserstein, (real.flatten(1) - fake.flatten(1)).mean(0) @ w)
    torch.testing.assert_close(loss, penalty - wasserstein)

    # A critic whose gradient varies: the norms at the real and at the fake images, not at interpolates.
    model.critic = Quadratic(RGB16.shape)
    a = model.critic.a.detach()
    p = 6
    expected = (
        2 / 2 * ((a * real).flatten(1).norm(dim=1).pow(p).mean() + (a * fake).flatten(1).norm(dim=1).pow(p).mean())
    )
    torch.testing.assert_close(model.critic_loss(real, fake)[1], expected)


def test_the_penalties_push_the_critic_gradient_towards_their_targets():
    """The penalty's own gradient: GP pulls ‖w‖ > 1 down and ‖w‖ < 1 up; the div penalty always pulls ‖w‖ down."""
    real, fake, alpha = real_fake_alpha()
    for name, scale, sign in [("wgan-gp", 3.0, -1), ("wgan-gp", 0.2, 1), ("wgan-div", 0.2, -1)]:
        model = build(name)
        model.critic = Linear(real[0].numel())
        with torch.no_grad():
            model.critic.w.mul_(scale / model.critic.w.norm())
        penalty = model.critic_loss(real, fake, alpha)[1] if name == "wgan-gp" else model.critic_loss(real, fake)[1]
        (grad,) = torch.autograd.grad(penalty, model.critic.w)
        direction = -(grad @ model.critic.w.detach())  # d‖w‖/dt along gradient descent, up to a positive factor
        assert torch.sign(direction) == sign, (name, scale)


# --- acGAN's conditioning ---------------------------------------------------------------------------------------


def test_acgan_class_conditional_samples_follow_the_class():
    """Class 0 = dark images, class 1 = bright ones: after a short run, sample_class(0) is darker than (1)."""
    data = DataSpec(shape=(1, 16, 16), value_range=(-1.0, 1.0), n_classes=2)
    model = build("acgan", data, lr=2e-3)
    optimizers = model.configure_optimizers()
    generator = torch.Generator().manual_seed(0)
    for _ in range(60):
        y = torch.randint(0, 2, (32,), generator=generator)
        x = torch.where(y == 1, 0.6, -0.6)[:, None, None, None] + 0.2 * torch.randn(
            32, *data.shape, generator=generator
        )
        model.training_step({"x": x.clamp(-1, 1), "y": y}, optimizers)
    model.eval()
    with torch.no_grad():
        dark = model.sample_class(torch.zeros(64, dtype=torch.long), torch.Generator().manual_seed(1))
        bright = model.sample_class(torch.ones(64, dtype=torch.long), torch.Generator().manual_seed(1))
        mixed = model.sample(200, torch.Generator().manual_seed(2))
    assert dark.mean() < 0 < bright.mean() and bright.mean() - dark.mean() > 0.5, (dark.mean(), bright.mean())
    # sample() draws both classes: its image means fall on both sides.
    means = mixed.mean(dim=(1, 2, 3))
    assert 0.25 < (means > 0).float().mean() < 0.75


def test_acgan_sample_draws_the_classes_from_the_generator():
    model = build("acgan").eval()
    with torch.no_grad():
        a = model.sample(5, torch.Generator().manual_seed(3))
        generator = torch.Generator().manual_seed(3)
        labels = torch.randint(0, 2, (5,), generator=generator)
        b = model.sample_class(labels, generator)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


# --- the plain GAN on a toy -------------------------------------------------------------------------------------


def test_gan_trains_finitely_on_a_two_mode_toy():
    data = DataSpec(shape=(1, 16, 16), value_range=(0.0, 1.0))
    model = build("gan", data)
    optimizers = model.configure_optimizers()
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        modes = torch.randint(0, 2, (16, 1, 1, 1), generator=generator).float()  # all-black or all-white images
        x = (modes + 0.05 * torch.randn(16, *data.shape, generator=generator)).clamp(0, 1)
        losses = model.training_step({"x": x}, optimizers)
        assert all(torch.isfinite(torch.tensor(v)) for v in losses.values()), losses
    with torch.no_grad():
        assert torch.isfinite(model.eval().sample(8, torch.Generator().manual_seed(0))).all()


@pytest.mark.parametrize("name, steps", [("gan", 40), ("wgan-gp", 20), ("wgan-div", 20)])
def test_the_generator_moves_towards_the_data(name, steps):
    """Data of brightness 0.5 in [-1, 1]; the untrained generator gives ~0. A sign error in either player's loss
    would leave the samples near 0 or push them away."""
    data = DataSpec(shape=(1, 16, 16), value_range=(-1.0, 1.0))
    model = build(name, data, lr=2e-3)
    optimizers = model.configure_optimizers()
    generator = torch.Generator().manual_seed(0)
    for _ in range(steps):
        x = 0.5 + 0.1 * torch.randn(16, *data.shape, generator=generator)
        model.training_step({"x": x}, optimizers)
    with torch.no_grad():
        brightness = model.eval().sample(64, torch.Generator().manual_seed(1)).mean()
    assert brightness > 0.25, brightness


# --- errors -------------------------------------------------------------------------------------------------------


def test_bad_data_and_labels_raise_clear_errors():
    with pytest.raises(AebenchError, match="n_classes"):
        build("acgan", DataSpec(shape=(3, 16, 16), value_range=(-1.0, 1.0)))
    for shape, kind in [((3, 12, 12), "image"), ((3, 100, 100), "image"), ((24,), "image"), ((1, 128), "signal")]:
        with pytest.raises(AebenchError, match="DCGAN"):
            build("gan", DataSpec(shape=shape, kind=kind))
    model = build("acgan")
    with pytest.raises(AebenchError, match="labels"):
        model.sample_class(torch.tensor([0, 2]))
    with pytest.raises(AebenchError, match="labels"):
        model.sample_class(torch.tensor([0.0, 1.0]))
    with pytest.raises(AebenchError, match="'y'"):
        model.training_step({"x": batch()["x"]}, model.configure_optimizers())


# --- the 8-Gaussians toy (Gulrajani et al. 2017, Fig. 1; their gan_toy.py) -----------------------------------------
# Eight Gaussians of σ 0.02 on a circle of radius √2. The models train on the MLP nets they build for vector data.
TOY = DataSpec(shape=(2,), kind="vector", value_range=(-2.0, 2.0), n_classes=8)
_ANGLES = torch.arange(8) * (2 * math.pi / 8)
CENTRES = math.sqrt(2) * torch.stack([_ANGLES.cos(), _ANGLES.sin()], dim=1)  # (8, 2)
TOY_STD, NEAR = 0.02, 0.1  # a sample within NEAR (5σ) of a centre is of that mode
TOY_SAMPLES = 2000
# Steps, batch and config per model: MLPs of 64 units, runs of seconds. WGAN-GP takes the toy recipe of gan_toy.py
# (λ 0.1: "smaller lambda seems to help for toy tasks"; betas (0.5, 0.9)) at lr 2e-4 instead of 1e-4, WGAN-div the
# notes' Adam; neither gets 7 modes in this budget at lr 1e-4 (measured). gan and acgan at lr 1e-3.
TOY_RUNS = {
    "gan": (1000, 64, {"lr": 1e-3}),
    "acgan": (1000, 64, {"lr": 1e-3}),
    "wgan-gp": (1500, 128, {"gp_weight": 0.1, "lr": 2e-4, "betas": (0.5, 0.9)}),
    "wgan-div": (1500, 128, {"lr": 2e-4, "betas": (0.5, 0.999)}),
}
# Modes each must cover: the WGANs all but one at most; the plain GAN is known to drop modes (the notes' point).
MIN_MODES = {"gan": 3, "acgan": 7, "wgan-gp": 7, "wgan-div": 7}


def eight_gaussians(n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    modes = torch.randint(0, 8, (n,), generator=generator)
    return CENTRES[modes] + TOY_STD * torch.randn(n, 2, generator=generator), modes


def toy_modes(samples: Tensor, min_share: float = 0.02) -> tuple[int, float, Tensor]:
    """(modes holding at least min_share of the samples within NEAR of their centre, share of samples near any
    centre, (n,) nearest mode of each sample or -1 if none is near)."""
    distance, nearest = torch.cdist(samples, CENTRES).min(dim=1)
    near = distance < NEAR
    counts = torch.bincount(nearest[near], minlength=8)
    covered = int((counts >= min_share * len(samples)).sum())
    return covered, float(near.float().mean()), torch.where(near, nearest, -1)


@pytest.fixture(scope="module")
def toy_models() -> dict[str, Model]:
    """Each GAN variant trained once on the toy (shared by the tests below); ~1 minute for the four on a loaded core."""
    trained, threads = {}, torch.get_num_threads()
    torch.set_num_threads(1)  # such small nets run fastest on one thread, and the same on every machine
    try:
        for name, (steps, batch_size, config) in TOY_RUNS.items():
            model = build(name, TOY, latent_dim=2, hidden_channels=64, **config)
            optimizers = model.configure_optimizers()
            generator = torch.Generator().manual_seed(1)
            for _ in range(steps):
                x, modes = eight_gaussians(batch_size, generator)
                model.training_step({"x": x, "y": modes}, optimizers)
            trained[name] = model.eval()
    finally:
        torch.set_num_threads(threads)
    return trained


def test_the_mode_count_tells_a_collapsed_sampler_from_the_data():
    x, _ = eight_gaussians(TOY_SAMPLES, torch.Generator().manual_seed(0))
    assert toy_modes(x)[:2] == (8, 1.0)
    assert toy_modes(x[toy_modes(x)[2] == 3])[0] == 1  # one mode only
    assert toy_modes(x * 0.5)[:2] == (0, 0.0)  # the right shape at the wrong place


@pytest.mark.slow
@pytest.mark.parametrize("name", GANS)
def test_every_gan_covers_the_eight_gaussians(name, toy_models):
    with torch.no_grad():
        samples = toy_models[name].sample(TOY_SAMPLES, torch.Generator().manual_seed(2))
    covered, near, _ = toy_modes(samples)
    assert covered >= MIN_MODES[name] and near > 0.25, (name, covered, near)


@pytest.mark.slow
def test_acgan_puts_each_class_on_its_own_mode(toy_models):
    labels = torch.arange(8).repeat_interleave(100)
    with torch.no_grad():
        samples = toy_models["acgan"].sample_class(labels, torch.Generator().manual_seed(3))
    _, _, nearest = toy_modes(samples)
    hits = nearest[nearest >= 0] == labels[nearest >= 0]
    assert (nearest >= 0).float().mean() > 0.3 and hits.float().mean() > 0.9
