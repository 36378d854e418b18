"""Every registered baseline: one finite training step, a save/load round trip, capabilities of the right shape."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from aebench.config import build_config
from aebench.model import DataSpec, Model
from aebench.registry import models

DATA = DataSpec(shape=(1, 28, 28), value_range=(0.0, 1.0), n_classes=10)


def tiny_config(cls: type[Model]):
    """The model's defaults, shrunk where the config has the usual size fields."""
    small = {"latent_dim": 4, "hidden": 8, "hidden_channels": 8, "hidden_units": 32, "steps_per_block": 1}
    fields = {f.name for f in dataclasses.fields(cls.Config)}
    return build_config(cls.Config, {k: v for k, v in small.items() if k in fields})


@pytest.fixture(params=models.names())
def model(request) -> Model:
    torch.manual_seed(0)
    cls = models.get(request.param)
    return cls(tiny_config(cls), DATA)


def batch(n: int = 8) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return {"x": torch.rand(n, *DATA.shape, generator=generator), "y": torch.randint(0, 10, (n,), generator=generator)}


def test_a_training_step_gives_finite_losses_and_changes_the_weights(model):
    before = [p.detach().clone() for p in model.parameters()]
    losses = model.training_step(batch(), model.configure_optimizers())
    assert losses and all(isinstance(v, float) and torch.isfinite(torch.tensor(v)) for v in losses.values())
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))


def test_save_load_round_trip_reproduces_outputs(model, tmp_path):
    model.training_step(batch(), model.configure_optimizers())
    model.eval()
    with torch.no_grad():
        model.after_training([batch(16)])
    torch.save(model.state_dict(), tmp_path / "model.pt")
    clone = type(model)(model.config, DATA)
    clone.load_state_dict(torch.load(tmp_path / "model.pt"))
    clone.eval()
    x = batch(4)["x"]
    with torch.no_grad():
        for capability in sorted(model.capabilities):
            if capability == "sample":
                a = model.sample(3, torch.Generator().manual_seed(5))
                b = clone.sample(3, torch.Generator().manual_seed(5))
            elif capability == "decode":
                z = model.encode(x) if "encode" in model.capabilities else model.randn(4, model.config.latent_dim)
                a, b = model.decode(z), clone.decode(z)
            else:
                a, b = getattr(model, capability)(x), getattr(clone, capability)(x)
            torch.testing.assert_close(a, b, rtol=0, atol=0, msg=f"{capability} differs after reload")


def test_capabilities_return_the_right_shapes(model):
    model.eval()
    x = batch(4)["x"]
    with torch.no_grad():
        if "encode" in model.capabilities:
            z = model.encode(x)
            assert z.shape == (4, model.config.latent_dim)
            if "decode" in model.capabilities:
                assert model.decode(z).shape == x.shape
        if "reconstruct" in model.capabilities:
            assert model.reconstruct(x).shape == x.shape
        if "sample" in model.capabilities:
            samples = model.sample(5, torch.Generator().manual_seed(0))
            assert samples.shape == (5, *DATA.shape) and torch.isfinite(samples).all()
            torch.testing.assert_close(samples, model.sample(5, torch.Generator().manual_seed(0)))


def test_configs_are_typed_dataclasses_with_defaults():
    for name, cls in models.items():
        config = cls.Config()  # every field has a default
        assert dataclasses.is_dataclass(config), name
