"""The otus, regression and turbo-sim baselines: the SW₂² loss against aebench's metric, training phases, RNG,
reload, learning on a small synthetic paired problem (x = A z + noise, 24-d), and turbo-sim's published objective."""

from __future__ import annotations

import copy
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from aebench.baselines.otus import OTUS, OTUSConfig, argsort_rows, sliced_wasserstein_squared
from aebench.baselines.regression import Regression, RegressionConfig
from aebench.baselines.turbo_sim import TurboSim, TurboSimConfig
from aebench.errors import AebenchError
from aebench.metrics import random_directions, sliced_wasserstein
from aebench.model import DataSpec

D = 24
SPEC = DataSpec(shape=(D,), kind="vector", value_range=(-5.0, 5.0), pair_shape=(D,))
MODELS = {"otus": (OTUS, OTUSConfig), "regression": (Regression, RegressionConfig)}


def synthetic(n: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Skewed z and x = A z + noise, both standardised per feature; A is fixed, the draws depend on `seed`."""
    a = torch.randn(D, D, generator=torch.Generator().manual_seed(1234)) / D**0.5 + torch.eye(D)
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, D, generator=g).exp()  # log-normal: not what a Gaussian-fed net gives for free
    x = z @ a.T + 0.3 * torch.randn(n, D, generator=g)
    return {"x": (x - x.mean(0)) / x.std(0), "z": (z - z.mean(0)) / z.std(0)}


def build(name: str, **overrides):
    """A small model, seeded; otus gets fewer projections to keep the tests fast."""
    cls, config = MODELS[name]
    small = {"hidden_units": 16, **({"projections": 50} if name == "otus" else {})}
    torch.manual_seed(0)
    return cls(config(**{**small, **overrides}), SPEC)


def test_differentiable_sw_equals_the_metric_on_the_same_directions():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(300, 5, generator=g, dtype=torch.float64), torch.rand(300, 5, generator=g, dtype=torch.float64)
    directions = random_directions(5, 200, seed=3)
    ours = sliced_wasserstein_squared(a, b, directions)
    assert float(ours) == pytest.approx(sliced_wasserstein(a, b, projections=200, seed=3) ** 2, rel=1e-12)
    small = a[:20].clone().requires_grad_(True)  # continuous data: no ties, so the sort is locally a permutation
    assert torch.autograd.gradcheck(lambda t: sliced_wasserstein_squared(t, b[:20], directions), (small,))
    with pytest.raises(AebenchError):
        sliced_wasserstein_squared(a, b[:10], directions)


def tied_projections(seed: int = 0) -> np.ndarray:
    """(40, 3000) float32 values on a 0.01 grid: hundreds of ties a row, both signs, no -0.0."""
    values = np.round(np.random.default_rng(seed).standard_normal((40, 3000)), 2).astype(np.float32)
    return values + np.float32(0.0)


def test_ties_in_the_sw_sort_are_broken_by_position_so_the_gradient_is_that_of_a_stable_sort():
    special = tied_projections()
    special[0, :4] = [np.inf, -np.inf, 1e-45, -1e-45]  # infinities and subnormals keep their float order
    assert np.array_equal(argsort_rows(special), np.argsort(special, axis=1, kind="stable"))
    p = tied_projections()
    a = torch.from_numpy(p[:, :200].T.copy()).requires_grad_(True)  # (200, 40): projections along the unit axes
    b = torch.from_numpy(p[:, 200:400].T.copy())
    sliced_wasserstein_squared(a, b, torch.eye(40)).backward()
    reference = a.detach().clone().requires_grad_(True)
    stable = reference.T.sort(dim=1, stable=True).values  # what the gradient must be: ranks by a stable sort
    (stable - b.T.sort(dim=1).values).pow(2).mean().backward()
    assert torch.equal(a.grad, reference.grad)


def test_the_sw_sort_gives_one_permutation_whatever_its_chunks_and_threads():
    p = np.concatenate([tied_projections(), tied_projections(1)[:7]])  # 47 rows: chunks of 16, 16, 15
    stable = np.argsort(p, axis=1, kind="stable")
    for threads in (1, 2, 5):
        assert np.array_equal(argsort_rows(p, threads), stable)
    assert np.array_equal(argsort_rows(p[0], 2), stable[0])  # one row
    assert np.array_equal(argsort_rows(p.reshape(47, 30, 100), 3), np.argsort(p.reshape(47, 30, 100), kind="stable"))


def test_the_sw_sort_gives_one_permutation_whatever_vector_kernels_numpy_picks():
    """numpy's own argsort orders ties differently with its AVX-512, AVX2 and baseline kernels (seen on the
    development machine); an OTUS run must not depend on which of them a CPU offers."""
    script = (
        "import hashlib, sys, numpy as np; sys.path.insert(0, sys.argv[1]); "
        "from test_hep_baselines import tied_projections; from aebench.baselines.otus import argsort_rows; "
        "print(hashlib.sha256(argsort_rows(tied_projections()).tobytes()).hexdigest())"
    )
    native = __import__("hashlib").sha256(argsort_rows(tied_projections()).tobytes()).hexdigest()
    env = {**os.environ, "NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512_ICL AVX512_SPR"}  # baseline kernels
    out = subprocess.run([sys.executable, "-c", script, os.path.dirname(__file__)], env=env, check=True,
                         capture_output=True, text=True).stdout.split()[-1]  # fmt: skip
    assert out == native


@pytest.mark.parametrize("name", MODELS)
def test_non_vector_or_unpaired_data_is_refused(name):
    cls, config = MODELS[name]
    for spec in (DataSpec(shape=(1, 28, 28)), DataSpec(shape=(D,), kind="vector")):
        with pytest.raises(AebenchError, match="paired vector data"):
            cls(config(), spec)


@pytest.mark.parametrize("name", MODELS)
def test_a_step_is_finite_and_changes_the_weights_and_outputs_have_the_right_shapes(name):
    model = build(name)
    before = [p.detach().clone() for p in model.parameters()]
    losses = model.training_step(synthetic(64), model.configure_optimizers())
    assert losses and all(isinstance(v, float) and torch.isfinite(torch.tensor(v)) for v in losses.values())
    assert all(not torch.equal(b, p) for b, p in zip(before, model.parameters()))  # both directions train
    with torch.no_grad():
        assert model.translate(torch.randn(7, D)).shape == (7, D)
        assert model.translate_back(torch.randn(7, D)).shape == (7, D)


def test_otus_never_looks_at_the_partners_of_the_events_it_encodes():
    model = build("otus", lambda_x=1.0)
    batch = synthetic(64)
    batch["z"][:32] = float("nan")  # the z of the first half, whose x the SW terms encode
    losses = model.training_step(batch, model.configure_optimizers())
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values()), losses


def test_decoder_fine_tuning_trains_only_the_decoder_from_the_right_step():
    model = build("otus", finetune_fraction=0.5)
    optimizers = model.configure_optimizers()
    model.configure_schedulers(optimizers, total_steps=4)  # steps 2 and 3 are decoder-only
    batch = synthetic(64)
    for step in range(4):
        encoder = [p.detach().clone() for p in model.encoder.parameters()]
        decoder = [p.detach().clone() for p in model.decoder.parameters()]
        losses = model.training_step(batch, optimizers)
        assert losses["decoder_only"] == float(step >= 2)
        assert all(not torch.equal(b, p) for b, p in zip(decoder, model.decoder.parameters()))
        encoder_moved = [not torch.equal(b, p) for b, p in zip(encoder, model.encoder.parameters())]
        assert all(encoder_moved) if step < 2 else not any(encoder_moved)


def test_a_resumed_otus_run_continues_exactly_through_the_phase_switch():
    batches = [synthetic(64, seed) for seed in range(6)]
    model = build("otus", finetune_fraction=0.5)
    optimizers = model.configure_optimizers()
    model.configure_schedulers(optimizers, total_steps=6)
    for batch in batches[:2]:
        model.training_step(batch, optimizers)
    state = {"model": model.state_dict(), "optimizer": optimizers["model"].state_dict(), "rng": torch.get_rng_state()}
    state = copy.deepcopy(state)  # a checkpoint is a copy: state_dict() shares the live tensors
    rest = [model.training_step(batch, optimizers) for batch in batches[2:]]

    clone = build("otus", finetune_fraction=0.5)
    clone_optimizers = clone.configure_optimizers()
    clone.configure_schedulers(clone_optimizers, total_steps=0)  # the checkpoint's buffers must win
    clone.load_state_dict(state["model"])
    clone_optimizers["model"].load_state_dict(state["optimizer"])
    torch.set_rng_state(state["rng"])
    assert [clone.training_step(batch, clone_optimizers) for batch in batches[2:]] == rest
    assert [r["decoder_only"] for r in rest] == [0.0, 1.0, 1.0, 1.0]
    for a, b in zip(model.state_dict().values(), clone.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("name", MODELS)
def test_save_load_round_trip_and_randomness(name, tmp_path):
    model = build(name)
    model.training_step(synthetic(64), model.configure_optimizers())
    torch.save(model.state_dict(), tmp_path / "model.pt")
    clone = build(name)
    clone.load_state_dict(torch.load(tmp_path / "model.pt"))
    x = synthetic(32, seed=9)["x"]

    def draw(m, capability: str, seed: int) -> torch.Tensor:
        torch.manual_seed(seed)  # otus draws its noise from torch's global RNG
        with torch.no_grad():
            return getattr(m, capability)(x)

    for capability in ("translate", "translate_back"):
        torch.testing.assert_close(draw(model, capability, 0), draw(clone, capability, 0), rtol=0, atol=0)
        differs = not torch.equal(draw(model, capability, 0), draw(model, capability, 1))
        assert differs == (name == "otus"), f"{name}.{capability}: stochastic is {differs}"


@pytest.mark.parametrize(
    "name, overrides, steps",
    [("otus", {}, 400), ("otus", {"lambda_x": 1.0}, 200), ("regression", {}, 200)],
    ids=["otus", "otus-lambda_x", "regression"],
)
def test_training_brings_both_directions_close_to_the_target_distributions(name, overrides, steps):
    model = build(name, hidden_units=64, **overrides)  # the paper's width
    data, test = synthetic(8192), synthetic(2048, seed=1)
    optimizers = model.configure_optimizers()
    model.configure_schedulers(optimizers, total_steps=steps)

    def scores() -> dict[str, float]:
        torch.manual_seed(5)
        with torch.no_grad():
            simulated, unfolded = model.translate_back(test["z"]), model.translate(test["x"])
        return {
            "sw_x": sliced_wasserstein(simulated, test["x"], 200),
            "sw_z": sliced_wasserstein(unfolded, test["z"], 200),
            "mse_x": float((simulated - test["x"]).pow(2).mean()),
            "mse_z": float((unfolded - test["z"]).pow(2).mean()),
        }

    before = scores()
    generator = torch.Generator().manual_seed(0)
    for _ in range(steps):
        rows = torch.randint(0, 8192, (512,), generator=generator)
        model.training_step({k: v[rows] for k, v in data.items()}, optimizers)
    after = scores()
    # Untrained ≈ 0.82 both ways; two independent 2048-event samples of x are ≈ 0.2 apart on these directions.
    assert after["sw_x"] < 0.45 * before["sw_x"] and after["sw_z"] < 0.45 * before["sw_z"], (before, after)
    if name == "regression":  # per-event accuracy: only the paired model is asked for it (OTUS never sees pairs)
        assert after["mse_x"] < 0.1 * before["mse_x"] and after["mse_z"] < 0.2 * before["mse_z"], (before, after)


# --- turbo-sim: the published objective --------------------------------------------------------------------------
def turbo_sim_after_one_step(objective: str, x: torch.Tensor, z: torch.Tensor) -> TurboSim:
    """One step of a seeded turbo-sim with every critic off, so that only the distance terms train."""
    torch.manual_seed(0)
    model = TurboSim(TurboSimConfig(objective=objective, z_tilde_adv=0.0, x_hat_adv=0.0, x_tilde_adv=0.0), SPEC)
    model.training_step({"x": x, "z": z}, model.configure_optimizers())
    return model


def test_published_code_trains_only_the_z_cycle():
    """The authors' `_compute_loss` trains 100·MSE(z, ẑ) (ẑ = E(D(z))) and the critics only: without critics a
    step does not depend on x at all, while the paper's equations (paired z̃, cycle x̂) do."""
    batch = synthetic(64)
    other_x = synthetic(64, seed=5)["x"]
    for objective, depends_on_x in (("published-code", False), ("paper-equations", True)):
        a = turbo_sim_after_one_step(objective, batch["x"], batch["z"]).state_dict()
        b = turbo_sim_after_one_step(objective, other_x, batch["z"]).state_dict()
        same = all(torch.equal(a[key], b[key]) for key in a)
        assert same != depends_on_x, objective


def test_published_code_logs_its_terms_and_decouples_the_pairs():
    torch.manual_seed(0)
    model = TurboSim(TurboSimConfig(), SPEC)
    losses = model.training_step(synthetic(64), model.configure_optimizers())
    assert "z_tilde_dist" not in losses and "x_hat_dist" not in losses  # computed by theirs, never trained
    expected = 100 * losses["z_hat_dist"] + losses["z_tilde_adv"] + losses["x_hat_adv"] + 10 * losses["x_tilde_adv"]
    assert losses["generator"] == pytest.approx(expected, rel=1e-5)
    with pytest.raises(AebenchError, match="objective"):
        TurboSim(TurboSimConfig(objective="nonsense"), SPEC)
    with pytest.raises(AebenchError, match="published-code is the authors' WGAN-GP setup"):
        TurboSim(TurboSimConfig(gan_mode="lsgan"), SPEC)


@pytest.mark.parametrize("objective", ["published-code", "paper-equations"])
def test_turbo_sim_keeps_its_noise_at_test_time(objective):
    torch.manual_seed(0)
    model = TurboSim(TurboSimConfig(objective=objective), SPEC).eval()
    x = synthetic(32)["x"]
    with torch.no_grad():
        torch.manual_seed(1)
        first = model.translate(x)
        torch.manual_seed(2)
        assert not torch.equal(first, model.translate(x))  # as the authors' evaluation: eval() keeps the noise
        torch.manual_seed(1)
        assert torch.equal(first, model.translate(x))  # reproducible from the global RNG
        model.config.test_noise = False
        assert torch.equal(model.translate(x), model.encoder(x)) and torch.equal(model.translate_back(x),
                                                                                  model.decoder(x))  # fmt: skip


def test_fine_tuning_is_the_notebooks_decoder_step():
    """Decoder fine-tuning (ppttbar.ipynb): τ·SW₂²(x, p(x|z)) alone, with a fresh Adam at 1e-4."""
    model = build("otus", finetune_fraction=0.5)
    optimizers = model.configure_optimizers()
    model.configure_schedulers(optimizers, total_steps=4)
    batch = synthetic(64)
    joint = [model.training_step(batch, optimizers) for _ in range(2)]
    assert set(joint[0]) == {"loss", "mse", "sw_z", "decoder_only"}
    decoder_weight = next(model.decoder.parameters())
    assert int(optimizers["model"].state[decoder_weight]["step"]) == 2
    tuned = model.training_step(batch, optimizers)
    assert set(tuned) == {"loss", "sw_x", "decoder_only"} and tuned["loss"] == pytest.approx(tuned["sw_x"])
    assert int(optimizers["model"].state[decoder_weight]["step"]) == 1  # the moments restarted at the switch
    assert all(group["lr"] == 1e-4 for group in optimizers["model"].param_groups)
    assert int(optimizers["model"].state[decoder_weight]["step"]) == 1
    model.training_step(batch, optimizers)
    assert int(optimizers["model"].state[decoder_weight]["step"]) == 2  # cleared once, not every step
