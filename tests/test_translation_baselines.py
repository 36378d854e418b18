"""The translation baselines: pix2pix, cyclegan, turbo (and its presets), turbo-sim."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
import torch.nn.functional as F

from aebench.baselines._translation_nets import PatchCritic, ResnetGenerator, UNetGenerator, halvings
from aebench.config import build_config
from aebench.errors import AebenchError
from aebench.model import DataSpec, Model
from aebench.registry import models

HUBBLE = DataSpec(shape=(1, 32, 32), kind="image", value_range=(-1.0, 1.0), pair_shape=(1, 32, 32))
CDP = DataSpec(shape=(1, 32, 32), kind="image", value_range=(0.0, 1.0), pair_shape=(1, 32, 32))
EVENTS = DataSpec(shape=(24,), kind="vector", value_range=(-5.0, 5.0), pair_shape=(24,))
TINY = {"hidden_channels": 4, "n_blocks": 1, "hidden_units": 32}
CASES = [
    ("pix2pix", HUBBLE),
    ("pix2pix", CDP),
    ("cyclegan", HUBBLE),
    ("turbo", HUBBLE),
    ("turbo", CDP),
    ("turbo", EVENTS),
    ("turbo-sim", EVENTS),
]
IDS = [f"{name}-{'vector' if spec.kind == 'vector' else spec.value_range}" for name, spec in CASES]


def build(name: str, spec: DataSpec, seed: int = 0, **overrides) -> Model:
    cls = models.get(name)
    fields = {f.name for f in dataclasses.fields(cls.Config)}
    values = {k: v for k, v in TINY.items() if k in fields} | overrides
    torch.manual_seed(seed)
    return cls(build_config(cls.Config, values), spec)


def make_batch(spec: DataSpec, n: int = 4, seed: int = 1) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    if spec.kind == "vector":
        return {"x": torch.randn(n, *spec.shape, generator=generator), "z": torch.randn(n, *spec.pair_shape)}
    lo, hi = spec.value_range
    x = lo + (hi - lo) * torch.rand(n, *spec.shape, generator=generator)
    z = lo + (hi - lo) * torch.rand(n, *spec.pair_shape, generator=generator)
    return {"x": x, "z": z}


def step(model: Model, batch, optimizers, seed: int) -> dict[str, float]:
    torch.manual_seed(seed)  # dropout and input noise draw from the global generator
    return model.training_step(batch, optimizers)


# --- every model on its data --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, spec", CASES, ids=IDS)
def test_a_training_step_is_finite_and_moves_every_network(name, spec):
    model = build(name, spec)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    losses = model.training_step(make_batch(spec), model.configure_optimizers())
    assert losses and all(isinstance(v, float) and torch.isfinite(torch.tensor(v)) for v in losses.values())
    network = {k: ".".join(k.split(".")[:2]) if k.startswith("critics.") else k.split(".")[0] for k in before}
    moved = {network[k] for k, p in model.named_parameters() if not torch.equal(before[k], p)}
    assert moved == set(network.values())  # every generator and critic


@pytest.mark.parametrize("name, spec", CASES, ids=IDS)
def test_translations_have_the_paired_shapes_and_stay_in_range(name, spec):
    model = build(name, spec).eval()
    batch = make_batch(spec, n=3)
    with torch.no_grad():
        z, x = model.translate(batch["x"]), model.translate_back(batch["z"])
    assert z.shape == (3, *spec.pair_shape) and x.shape == (3, *spec.shape)
    if spec.kind == "image":  # generators end in tanh mapped onto the value range
        lo, hi = spec.value_range
        assert lo <= min(z.min(), x.min()) and max(z.max(), x.max()) <= hi


@pytest.mark.parametrize("name, spec", CASES, ids=IDS)
def test_a_resumed_model_continues_exactly(name, spec, tmp_path):
    """state_dict (with the image pools) + optimizer states + the global seed give the same next step."""
    batches = [make_batch(spec, seed=s) for s in (1, 2, 3)]
    small_pool = {"pool_size": 2} if name in ("cyclegan", "turbo") else {}  # smaller than the batch: swaps happen
    model = build(name, spec, **small_pool)
    optimizers = model.configure_optimizers()
    for i, batch in enumerate(batches[:2]):
        step(model, batch, optimizers, seed=i)
    torch.save({"model": model.state_dict(), "opt": {k: o.state_dict() for k, o in optimizers.items()}}, tmp_path / "c")
    state = torch.load(tmp_path / "c")

    clone = build(name, spec, seed=99, **small_pool)
    clone.load_state_dict(state["model"])
    clone_optimizers = clone.configure_optimizers()
    for key, optimizer in clone_optimizers.items():
        optimizer.load_state_dict(state["opt"][key])
    assert step(clone, batches[2], clone_optimizers, seed=7) == step(model, batches[2], optimizers, seed=7)
    model.eval(), clone.eval()
    with torch.no_grad():
        for capability, inputs in (("translate", batches[0]["x"]), ("translate_back", batches[0]["z"])):
            outputs = []
            for network in (clone, model):
                torch.manual_seed(11)  # turbo-sim keeps its input noise at test time, as its authors do
                outputs.append(getattr(network, capability)(inputs))
            torch.testing.assert_close(*outputs, rtol=0, atol=0)


def test_models_refuse_data_they_cannot_handle():
    for name in ("pix2pix", "cyclegan"):
        with pytest.raises(AebenchError, match="images"):
            build(name, EVENTS)
    with pytest.raises(AebenchError, match="vectors"):
        build("turbo-sim", HUBBLE)
    with pytest.raises(AebenchError, match="32×32"):  # the 70×70 PatchGAN
        build("pix2pix", DataSpec(shape=(1, 16, 16), pair_shape=(1, 16, 16)))
    with pytest.raises(AebenchError, match="paired"):
        build("turbo", DataSpec(shape=(1, 32, 32)))
    with pytest.raises(AebenchError, match="signal"):
        build("turbo", DataSpec(shape=(1, 64), kind="signal", pair_shape=(1, 64)))
    with pytest.raises(AebenchError, match="identity"):
        build("cyclegan", DataSpec(shape=(1, 32, 32), pair_shape=(3, 32, 32)))
    one_way = build("pix2pix", HUBBLE, both_directions=False)
    assert not hasattr(one_way, "generator_x")
    with pytest.raises(AebenchError, match="both_directions"):
        one_way.translate_back(make_batch(HUBBLE)["z"])


def test_image_nets_adapt_to_the_image_size_and_match_the_reference_sizes():
    assert (halvings(256, 256), halvings(64, 32), halvings(48, 48)) == (8, 5, 4)
    x = torch.rand(2, 1, 64, 32)
    assert UNetGenerator(1, 2, 64, 32, 2, "batch", 0.5, (0.0, 1.0))(x).shape == (2, 2, 64, 32)
    assert ResnetGenerator(1, 1, 64, 32, 2, 1, "instance", 0.0, (-1.0, 1.0))(x).shape == (2, 1, 64, 32)
    assert PatchCritic(1, 2, "batch", 64, 32)(x).shape == (2, 1, 6, 2)  # H/8 - 2 patches per side

    # Parameter counts printed by the reference pix2pix/CycleGAN code for RGB at hidden 64.
    def thousands(m):
        return round(sum(p.numel() for p in m.parameters()) / 1e3)

    assert thousands(UNetGenerator(3, 3, 256, 256, 64, "batch", 0.5, (-1.0, 1.0))) == 54_414  # unet_256
    assert thousands(ResnetGenerator(3, 3, 256, 256, 64, 9, "instance", 0.0, (-1.0, 1.0))) == 11_378
    assert thousands(PatchCritic(6, 64, "batch", 256, 256)) == 2_769  # pix2pix's conditional critic
    assert thousands(PatchCritic(3, 64, "instance", 256, 256)) == 2_765  # CycleGAN's


def test_turbo_sim_has_the_published_architecture_and_weights():
    model = models.get("turbo-sim")(models.get("turbo-sim").Config(), EVENTS)
    shapes = lambda net: [tuple(m.weight.shape) for m in net if isinstance(m, torch.nn.Linear)]  # noqa: E731
    assert shapes(model.encoder) == [(256, 24), (128, 256), (64, 128), (24, 64)]
    assert shapes(model.decoder) == [(64, 24), (128, 64), (256, 128), (24, 256)]
    # The ẑ critic has weight 0: like the published code, it is not built (nor trained).
    assert sorted(model.critics) == ["x_hat", "x_tilde", "z_tilde"]
    assert all(shapes(c) == [(256, 24), (128, 256), (64, 128), (1, 64)] for c in model.critics.values())
    assert {k: model.lambdas[k] for k in ("z_tilde_dist", "x_hat_dist", "z_hat_dist", "x_tilde_adv")} == {
        "z_tilde_dist": 10.0,
        "x_hat_dist": 10.0,
        "z_hat_dist": 100.0,
        "x_tilde_adv": 10.0,
    }
    assert (model.lambdas["z_tilde_gp"], model.lambdas["x_hat_gp"], model.lambdas["x_tilde_gp"]) == (1000, 1000, 10)
    optimizer = model.configure_optimizers()["generator"]
    assert optimizer.defaults["betas"] == (0.9, 0.7) and optimizer.defaults["weight_decay"] == 1e-3


def test_learning_rate_is_constant_then_decays_linearly():
    model = build("pix2pix", HUBBLE)
    optimizers = model.configure_optimizers()
    scheduler = model.configure_schedulers(optimizers, total_steps=10)["generator"]
    lrs = []
    for _ in range(10):
        lrs.append(optimizers["generator"].param_groups[0]["lr"])
        optimizers["generator"].step()
        scheduler.step()
    expected = [2e-4 * (1 - max(0, s - 5) / 6) for s in range(10)]  # pix2pix's rule: 1 - max(0, e - n) / (n_d + 1)
    torch.testing.assert_close(torch.tensor(lrs), torch.tensor(expected))
    sim = build("turbo-sim", EVENTS)
    assert sim.configure_schedulers(sim.configure_optimizers(), total_steps=10) == {}  # constant, as published


# --- presets: TURBO reduces to the reference models ---------------------------------------------------------------
def renamed(state: dict, names: dict[str, str]) -> dict:
    """`state` with each key's prefix renamed: {"generator_z": "encoder"} maps generator_z.* to encoder.*."""
    out = {}
    for key, value in state.items():
        prefix = next(p for p in names if key.startswith(p + "."))
        out[names[prefix] + key[len(prefix) :]] = value
    return out


def assert_same_steps(reference, turbo, spec, names: dict[str, str], losses: dict[str, str]):
    """Two training steps of both models from the same weights give the same losses."""
    turbo.load_state_dict(renamed(reference.state_dict(), names))
    opt_ref, opt_turbo = reference.configure_optimizers(), turbo.configure_optimizers()
    for i in range(2):
        batch = make_batch(spec, seed=10 + i)
        got, want = step(turbo, batch, opt_turbo, seed=i), step(reference, batch, opt_ref, seed=i)
        assert set(got) == set(losses.values()) and set(want) == set(losses)
        torch.testing.assert_close({k: got[v] for k, v in losses.items()}, want, rtol=1e-5, atol=1e-6)


def test_turbo_pix2pix_preset_equals_pix2pix():
    spec = DataSpec(shape=(1, 64, 64), kind="image", value_range=(-1.0, 1.0), pair_shape=(1, 64, 64))  # has dropout
    reference = build("pix2pix", spec, seed=0)
    turbo = build("turbo", spec, seed=1, preset="pix2pix")
    assert (turbo.config.z_tilde_dist, turbo.config.generator, turbo.config.gan_mode) == (100.0, "unet", "vanilla")
    names = {"generator_z": "encoder", "generator_x": "decoder", "critic_z": "critics.z_tilde"}
    names["critic_x"] = "critics.x_tilde"
    losses = {"gan_z": "z_tilde_adv", "l1_z": "z_tilde_dist", "critic_z": "critic_z_tilde", "generator": "generator"}
    losses |= {"gan_x": "x_tilde_adv", "l1_x": "x_tilde_dist", "critic_x": "critic_x_tilde"}
    assert_same_steps(reference, turbo, spec, names, losses)


def test_turbo_cyclegan_preset_equals_cyclegan_including_its_image_pools():
    reference = build("cyclegan", HUBBLE, seed=0, pool_size=3)  # a pool smaller than the batch: swaps happen
    turbo = build("turbo", HUBBLE, seed=1, preset="cyclegan", pool_size=3)
    names = {"generator_z": "encoder", "generator_x": "decoder", "critic_z": "critics.z_tilde"}
    names |= {"critic_x": "critics.x_tilde", "pool_z": "pools.z_tilde", "pool_x": "pools.x_tilde"}
    losses = {"gan_z": "z_tilde_adv", "gan_x": "x_tilde_adv", "cycle_x": "x_hat_dist", "cycle_z": "z_hat_dist"}
    losses |= {"identity_z": "identity_z", "identity_x": "identity_x", "generator": "generator"}
    losses |= {"critic_z": "critic_z_tilde", "critic_x": "critic_x_tilde"}
    assert_same_steps(reference, turbo, HUBBLE, names, losses)


PRIOR = DataSpec(shape=(6,), kind="vector", value_range=(-3.0, 3.0), pair_shape=(2,))  # x data, z ~ N(0, I) prior


def test_turbo_aae_preset_is_the_adversarial_autoencoder_objective():
    model = build("turbo", PRIOR, preset="aae", hidden_units=16)
    assert sorted(model.critics) == ["z_tilde"]
    batch = make_batch(PRIOR, n=8)
    E, D, C = copy.deepcopy(model.encoder), copy.deepcopy(model.decoder), copy.deepcopy(model.critics["z_tilde"])
    with torch.no_grad():
        code = E(batch["x"])
        reconstruction = F.mse_loss(D(code), batch["x"])
        fool = F.binary_cross_entropy_with_logits(C(code), torch.ones(8, 1))
        critic = 0.5 * (
            F.binary_cross_entropy_with_logits(C(batch["z"]), torch.ones(8, 1))
            + F.binary_cross_entropy_with_logits(C(code), torch.zeros(8, 1))
        )
    losses = model.training_step(batch, model.configure_optimizers())
    want = {"x_hat_dist": reconstruction, "z_tilde_adv": fool, "generator": reconstruction + fool}
    torch.testing.assert_close(
        {k: torch.tensor(losses[k]) for k in [*want, "critic_z_tilde"]}, want | {"critic_z_tilde": critic}
    )


def test_turbo_gan_preset_is_the_gan_objective_and_leaves_the_encoder_alone():
    model = build("turbo", PRIOR, preset="gan", hidden_units=16)
    assert sorted(model.critics) == ["x_tilde"]
    batch = make_batch(PRIOR, n=8)
    G, C = copy.deepcopy(model.decoder), copy.deepcopy(model.critics["x_tilde"])
    encoder = copy.deepcopy(model.encoder.state_dict())
    with torch.no_grad():
        fake = G(batch["z"])
        fool = F.binary_cross_entropy_with_logits(C(fake), torch.ones(8, 1))
        critic = 0.5 * (
            F.binary_cross_entropy_with_logits(C(batch["x"]), torch.ones(8, 1))
            + F.binary_cross_entropy_with_logits(C(fake), torch.zeros(8, 1))
        )
    losses = model.training_step(batch, model.configure_optimizers())
    assert set(losses) == {"x_tilde_adv", "generator", "critic_x_tilde"}
    torch.testing.assert_close(
        torch.tensor([losses["x_tilde_adv"], losses["critic_x_tilde"]]), torch.stack([fool, critic])
    )
    assert all(torch.equal(encoder[k], v) for k, v in model.encoder.state_dict().items())


def test_a_preset_fills_defaults_and_keeps_explicit_values():
    config = build_config(models.get("turbo").Config, {"preset": "cyclegan", "pool_size": "3"})
    assert (config.pool_size, config.z_tilde_dist, config.x_hat_dist, config.identity) == (3, 0.0, 10.0, 0.5)
    again = build_config(models.get("turbo").Config, dataclasses.asdict(config))  # a checkpoint's identity round trip
    assert again == config
    with pytest.raises(AebenchError, match="preset"):
        build_config(models.get("turbo").Config, {"preset": "stylegan"})


# --- learning -----------------------------------------------------------------------------------------------------
def test_pix2pix_learns_an_identity_translation():
    torch.manual_seed(0)
    blobs = F.avg_pool2d(torch.randn(40, 1, 40, 40), 9, stride=1)  # smooth random images, 32×32
    images = torch.tanh(blobs / blobs.std())
    train, test = images[:32], images[32:]
    model = build("pix2pix", HUBBLE, both_directions=False, lr=1e-3)  # a faster rate than the paper's, for a quick test

    def test_l1():
        model.eval()
        with torch.no_grad():
            error = (model.translate(test) - test).abs().mean().item()
        model.train()
        return error

    before = test_l1()
    optimizers = model.configure_optimizers()
    for i in range(100):
        rows = torch.randint(0, 32, (4,))
        model.training_step({"x": train[rows], "z": train[rows]}, optimizers)
    assert test_l1() < 0.5 * before  # measured: 0.565 → 0.187
