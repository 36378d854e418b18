"""latent-mnist: the authors' mnist32 data, a tiny real run of the ae baseline scored by the representation metrics,
the reference rows, the budgets' k-means size in the record, and clear errors for bad data directories."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from aebench.errors import AebenchError
from aebench.task import TaskData
from aebench.tasks.latent_mnist import LatentBudget, LatentMnist
from aebench.tasks.latent_mnist.data import SPEC, to_mnist32
from toy import train_briefly

BUDGET = LatentBudget(steps=30, batch_size=32, eval_samples=200, kmeans_inits=3)


@pytest.fixture(scope="module")
def data(smoke_cache) -> TaskData:
    """The embedded digits, cut to 800 training and 200 test digits so that every test is seconds."""
    full = LatentMnist(smoke_cache).load(None)
    return TaskData({k: v[:800] for k, v in full.train.items()}, {k: v[:200] for k, v in full.test.items()}, full.spec,
                    full.source, full.info)  # fmt: skip


def test_mnist32_is_the_digit_padded_with_background_in_minus_one_to_one(smoke_cache):
    from aebench.mnist import load_embedded

    digits = load_embedded(smoke_cache)
    data = LatentMnist(smoke_cache).load(None)
    assert data.train["x"].shape == (4000, 1, 32, 32) and data.test["x"].shape == (1000, 1, 32, 32)
    assert data.spec == SPEC == LatentMnist(smoke_cache).data_spec()
    assert torch.equal(data.train["y"], digits.train["y"]) and torch.equal(data.test["y"], digits.test["y"])
    x = data.test["x"]
    assert x.min() == -1.0 and x.max() == 1.0
    border = torch.ones(32, 32, dtype=torch.bool)
    border[2:30, 2:30] = False
    assert (x[:, 0, border] == -1).all()  # the 2-pixel frame is background
    assert torch.allclose(x[:, :, 2:30, 2:30], 2 * digits.test["x"] - 1)
    assert torch.equal(to_mnist32(torch.zeros(1, 1, 28, 28)), torch.full((1, 1, 32, 32), -1.0))
    assert data.info["sha256"]["test"] != digits.info["sha256"]["test"]


def test_a_bad_data_dir_names_the_task(tmp_path):
    with pytest.raises(AebenchError, match="latent-mnist: data directory .* does not exist"):
        LatentMnist(tmp_path).load(tmp_path / "nowhere")


def test_a_tiny_ae_run_is_scored_and_beats_its_shuffled_codes(data, tmp_path):
    task = LatentMnist(tmp_path)
    model, losses = train_briefly("ae", data, BUDGET.steps, BUDGET.batch_size, latent_dim=8, hidden=8)
    assert losses[-1] < losses[0]
    result = task.evaluate(model, data, BUDGET, torch.Generator())
    values = result.metrics
    assert set(values) == {m.name for m in task.metrics} and not result.unavailable
    assert all(0 <= values[name] <= 1 for name in ("linear_probe_accuracy", "clustering_accuracy", "precision_at_k"))
    assert np.isfinite(values["mse"]) and len(values["linear_probe_accuracy"].items) == 200
    assert result.details["latent_dim"] == 8 and result.details["kmeans_inits"] == 3
    assert result.details == {**result.details, "train_codes": 800, "test_codes": 200}
    # 30 steps already carry the digits' classes above chance (0.1; measured 0.50 and 0.32), and the same codes
    # scored against shuffled training labels do not.
    assert values["linear_probe_accuracy"] > 0.3 and values["precision_at_k"] > 0.2
    again = task.evaluate(model, data, BUDGET, torch.Generator())
    assert again.metrics == values  # deterministic: the same codes, probe, k-means and neighbours
    shuffled = dataclasses.replace(data, train={**data.train, "y": data.train["y"][torch.randperm(800)]})
    assert task.evaluate(model, shuffled, BUDGET, torch.Generator()).metrics["linear_probe_accuracy"] < 0.25
    task.save_samples(model, data, tmp_path / "samples.png", torch.Generator())
    assert (tmp_path / "samples.png").read_bytes()[:4] == b"\x89PNG"


def test_reference_rows_score_pixels_and_their_principal_components(data, tmp_path):
    rows = LatentMnist(tmp_path).references(data, BUDGET, torch.Generator())
    assert set(rows) == {"raw pixels", "PCA of the pixels (32 components)"}
    pixels, pca = rows["raw pixels"], rows["PCA of the pixels (32 components)"]
    assert pixels.details["latent_dim"] == 1024 and pca.details["latent_dim"] == 32
    assert pixels.metrics["mse"] is None and pixels.unavailable["mse"] == "not a model"
    for row in rows.values():  # pixels carry the digit: far above chance
        assert row.metrics["linear_probe_accuracy"] > 0.7 and row.metrics["precision_at_k"] > 0.7


def test_budgets_carry_the_kmeans_size_into_the_record():
    budgets = LatentMnist.budgets
    assert [budgets[name].kmeans_inits for name in ("smoke", "quick", "paper", "paper-256")] == [10, 100, 1000, 1000]
    assert dataclasses.asdict(budgets["paper"])["kmeans_inits"] == 1000  # what the runner records
    assert budgets["paper-256"].model_overrides["latent_dim"] == 256 and budgets["paper-256"].table == "paper-256"
