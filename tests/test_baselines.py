"""Every registered baseline, on every kind of example data it accepts: one finite training step, a save/load
round trip, capabilities of the right shape."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from aebench.config import build_config
from aebench.errors import AebenchError
from aebench.model import DataSpec, Model
from aebench.registry import models

# Example data of each kind a task may hand a model: digits with labels, colour images with labels, and the
# paired data of the translation tasks (images, event vectors, 1-D traces).
EXAMPLES: dict[str, DataSpec] = {
    "digits": DataSpec(shape=(1, 28, 28), value_range=(0.0, 1.0), n_classes=10),
    "rgb": DataSpec(shape=(3, 32, 32), value_range=(-1.0, 1.0), n_classes=3),
    "paired-images": DataSpec(shape=(1, 32, 32), value_range=(-1.0, 1.0), pair_shape=(1, 32, 32)),
    "paired-vectors": DataSpec(shape=(24,), kind="vector", value_range=(-5.0, 5.0), pair_shape=(24,)),
    "paired-signals": DataSpec(shape=(1, 128), kind="signal", value_range=(-5.0, 5.0), pair_shape=(1, 128)),
}


def tiny_config(cls: type[Model]):
    """The model's defaults, shrunk where the config has the usual size fields."""
    small = {"latent_dim": 4, "hidden": 8, "hidden_channels": 8, "hidden_units": 32, "steps_per_block": 1}
    fields = {f.name for f in dataclasses.fields(cls.Config)}
    return build_config(cls.Config, {k: v for k, v in small.items() if k in fields})


def accepted_examples() -> list[tuple[str, str]]:
    """(model, example) for each example data kind the model accepts; it refuses the others with AebenchError."""
    pairs = []
    for name in models.names():
        cls = models.get(name)
        for example, spec in EXAMPLES.items():
            try:
                cls(tiny_config(cls), spec)
            except AebenchError:
                continue
            pairs.append((name, example))
    return pairs


CASES = accepted_examples()


@pytest.fixture(params=CASES, ids=[f"{m}-{e}" for m, e in CASES])
def case(request) -> tuple[Model, DataSpec]:
    name, example = request.param
    torch.manual_seed(0)
    cls = models.get(name)
    return cls(tiny_config(cls), EXAMPLES[example]), EXAMPLES[example]


def batch(spec: DataSpec, n: int = 8) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    low, high = spec.value_range

    def uniform(shape: tuple[int, ...]) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, *shape, generator=generator)

    out = {"x": uniform(spec.shape)}
    if spec.pair_shape is not None:
        out["z"] = uniform(spec.pair_shape)
    if spec.n_classes is not None:
        out["y"] = torch.randint(0, spec.n_classes, (n,), generator=generator)
    return out


def call(model: Model, capability: str, spec: DataSpec, data: dict[str, torch.Tensor]) -> torch.Tensor:
    """The capability applied to example inputs (a fixed generator for `sample`)."""
    if capability == "sample":
        return model.sample(3, torch.Generator().manual_seed(5))
    if capability == "decode":
        z = model.encode(data["x"]) if "encode" in model.capabilities else model.randn(4, model.config.latent_dim)
        return model.decode(z)
    if capability == "translate_back":
        return model.translate_back(data["z"])
    return getattr(model, capability)(data["x"])


def latent_size(model: Model) -> int:
    """The length of `encode`'s output: `latent_dim`, or what a model without one (vq-vae's code map) says."""
    return getattr(model, "latent_size", None) or model.config.latent_dim


def test_every_baseline_accepts_some_example_data():
    assert {name for name, _ in CASES} == set(models.names())


def test_a_training_step_gives_finite_losses_and_changes_the_weights(case):
    model, spec = case
    before = [p.detach().clone() for p in model.parameters()]
    losses = model.training_step(batch(spec), model.configure_optimizers())
    assert losses and all(isinstance(v, float) and torch.isfinite(torch.tensor(v)) for v in losses.values())
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))


def test_save_load_round_trip_reproduces_outputs(case, tmp_path):
    model, spec = case
    model.training_step(batch(spec), model.configure_optimizers())
    model.eval()
    with torch.no_grad():
        model.after_training([batch(spec, 16)])
    torch.save(model.state_dict(), tmp_path / "model.pt")
    clone = type(model)(model.config, spec)
    clone.load_state_dict(torch.load(tmp_path / "model.pt"))
    clone.eval()
    data = batch(spec, 4)
    with torch.no_grad():
        for capability in sorted(model.capabilities):
            # Stochastic translations draw from torch's global generator: the same seed for both models.
            torch.manual_seed(7)
            a = call(model, capability, spec, data)
            torch.manual_seed(7)
            b = call(clone, capability, spec, data)
            torch.testing.assert_close(a, b, rtol=0, atol=0, msg=f"{capability} differs after reload")


def test_capabilities_return_the_right_shapes(case):
    model, spec = case
    model.eval()
    data = batch(spec, 4)
    x = data["x"]
    with torch.no_grad():
        if "encode" in model.capabilities:
            z = model.encode(x)
            assert z.shape == (4, latent_size(model))
            if "decode" in model.capabilities:
                assert model.decode(z).shape == x.shape
        if "reconstruct" in model.capabilities:
            assert model.reconstruct(x).shape == x.shape
        if "translate" in model.capabilities:
            assert model.translate(x).shape == (4, *spec.pair_shape)
        if "translate_back" in model.capabilities:
            assert model.translate_back(data["z"]).shape == x.shape
        if "sample" in model.capabilities:
            samples = model.sample(5, torch.Generator().manual_seed(0))
            assert samples.shape == (5, *spec.shape) and torch.isfinite(samples).all()
            torch.testing.assert_close(samples, model.sample(5, torch.Generator().manual_seed(0)))


def test_configs_are_typed_dataclasses_with_defaults():
    for name, cls in models.items():
        config = cls.Config()  # every field has a default
        assert dataclasses.is_dataclass(config), name


def test_backward_passes_run_outside_autocast(case, monkeypatch):
    """The runner's autocast (bf16 on CUDA) must cover forward passes and losses, not backward passes."""
    model, spec = case
    if not model.supports_amp:
        return
    states = []
    original = torch.Tensor.backward

    def recording_backward(self, *args, **kwargs):
        states.append(torch.is_autocast_enabled("cpu"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "backward", recording_backward)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # what the runner does on CUDA, here on the CPU
        model.training_step(batch(spec), model.configure_optimizers())
    assert states and not any(states), f"{type(model).__name__}: a backward pass ran under autocast"


# --- PIE: the paper's sampling and its third linear block ----------------------------------------------------------
def trained_looking_pie(**overrides) -> Model:
    """A PIE whose zero-initialised last layers are perturbed, so that couplings and g are not the identity / 0."""
    cls = models.get("pie")
    torch.manual_seed(0)
    model = cls(build_config(cls.Config, {"steps_per_block": 1, **overrides}), EXAMPLES["digits"])
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


def pie_residuals(model: Model, x: torch.Tensor) -> list[torch.Tensor]:
    """r − g(z) of every split, recovered exactly from unclamped samples x by running the flow forwards."""
    lo, hi = model.data.value_range
    deq = model.config.dequantisation
    y = (x - lo) / (hi - lo) * (1 - deq) + deq / 2 - 0.5  # _from_flow_space inverted, without its clamp
    h, out = y, []
    for flow, split in zip(model.flows, model.splits):
        h, r = split(flow(h)[0])
        out.append(r - split.g(h))
    return out


@pytest.mark.parametrize("eps2", [0.01, 1.0])
def test_pie_samples_draw_r_around_g_with_variance_eps2(eps2):
    """The paper samples r ~ N(g(z), ε²I); decoding r = g(z) (the mean) leaves no spread at all."""
    model = trained_looking_pie(eps2=eps2)
    with torch.no_grad():
        residuals = pie_residuals(model, model.sample(64, torch.Generator().manual_seed(0)))
        for r in residuals:
            assert r.var().item() == pytest.approx(eps2, rel=0.05) and abs(r.mean().item()) < 0.05 * eps2**0.5
        model.config.sample_r = "mean"
        for r in pie_residuals(model, model.sample(64, torch.Generator().manual_seed(0))):
            assert r.abs().max().item() < 1e-4 * eps2**0.5
    assert len(residuals) == 4  # 2 conv blocks, linear blocks to 64 and to latent_dim


def test_pie_samples_are_unclamped_and_decode_is_clamped():
    model = trained_looking_pie(eps2=1.0)
    with torch.no_grad():
        x = model.sample(16, torch.Generator().manual_seed(0))
        assert x.min() < 0 and x.max() > 1  # ε = 1 puts many pixels outside [0, 1]
        decoded = model.decode(model.randn(16, model.config.latent_dim))
        assert decoded.min() >= 0 and decoded.max() <= 1


def test_pie_third_linear_block_keeps_the_latent_and_is_invertible():
    model = trained_looking_pie()
    assert len(model.final) == 2 * model.config.steps_per_block  # (Householder, coupling) × K on the latent
    assert len(trained_looking_pie(final_block=False).final) == 0
    z = torch.randn(5, model.config.latent_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out, logdet = model.final(z)
        assert out.shape == z.shape and (out - z).abs().max() > 1e-2  # not the identity
        torch.testing.assert_close(model.final.inverse(out), z, atol=1e-5, rtol=0)
    jacobian = torch.autograd.functional.jacobian(lambda v: model.final(v[None])[0][0], z[0])  # (D, D)
    assert logdet[0].item() == pytest.approx(torch.linalg.slogdet(jacobian)[1].item(), abs=1e-4)
    # The whole flow is exact when every r is given: x → (z, r's) → x.
    y = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(2)) - 0.5
    with torch.no_grad():
        z, rs, _, _ = model._forward_flow(y)
        torch.testing.assert_close(model._inverse_flow(z, rs), y, atol=1e-5, rtol=0)


# --- the WAE paper's MNIST nets (ae, vae, wae with arch="wae-paper") -----------------------------------------------
def test_wae_paper_nets_have_the_papers_layers():
    from aebench.baselines._wae_nets import WAEPaperDecoder, WAEPaperEncoder

    spec = EXAMPLES["digits"]
    encoder, decoder = WAEPaperEncoder(spec, 128, 8), WAEPaperDecoder(spec, 128, 8)
    convs = [m for m in encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [128, 256, 512, 1024] and all(c.stride == (2, 2) for c in convs)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in encoder.modules()) == 4
    assert encoder.fc.in_features == 1024 * 2 * 2  # "same" padding: 28 → 14 → 7 → 4 → 2
    assert decoder.fc[0].out_features == 1024 * 7 * 7
    ups = [m for m in decoder.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [(u.out_channels, u.stride) for u in ups] == [(512, (2, 2)), (256, (2, 2))]
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in decoder.modules()) == 2
    with pytest.raises(AebenchError, match="multiples of 4"):
        WAEPaperDecoder(DataSpec(shape=(1, 30, 30)), 8, 8)


@pytest.mark.parametrize("name", ["ae", "vae", "wae"])
def test_wae_paper_nets_train_deterministically(name):
    cls = models.get(name)
    spec = EXAMPLES["digits"]

    def one_step() -> tuple[Model, dict]:
        torch.manual_seed(0)
        model = cls(build_config(cls.Config, {"arch": "wae-paper", "hidden": 8}), spec)
        return model, model.training_step(batch(spec), model.configure_optimizers())

    (a, losses_a), (b, losses_b) = one_step(), one_step()
    assert losses_a == losses_b and all(torch.isfinite(torch.tensor(v)) for v in losses_a.values())
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    a.eval()
    with torch.no_grad():
        assert a.encode(batch(spec, 4)["x"]).shape == (4, a.config.latent_dim)
        samples = a.sample(5, torch.Generator().manual_seed(0))
    assert samples.shape == (5, 1, 28, 28) and 0 <= samples.min() and samples.max() <= 1
