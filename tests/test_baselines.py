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
            assert z.shape == (4, model.config.latent_dim)
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
