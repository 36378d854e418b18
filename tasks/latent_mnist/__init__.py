"""latent-mnist: how useful are an auto-encoder's latent codes of MNIST digits downstream? (ACAI paper, section 4.)

A trained model encodes every training and test digit; its frozen codes are scored by a linear probe (a softmax
layer fitted on the training codes, accuracy on the test codes), by k-means clustering accuracy (the authors'
whitened k-means with Hungarian matching) and by retrieval precision@10 (test codes querying the training codes).
With latent-lines (interpolation) it makes the ACAI paper's latent-quality protocol. See README.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from aebench.images import save_png
from aebench.metrics import ClusteringAccuracy, LinearProbeAccuracy, MeanSquaredError, Metric, RetrievalPrecisionAtK
from aebench.metrics.representation import RETRIEVAL_K
from aebench.model import DataSpec, Model
from aebench.registry import tasks
from aebench.task import Budget, Evaluation, MetricSpec, Task, TaskData, checked_output

from .claims import CLAIMS
from .data import SPEC, load

EVAL_BATCH = 500  # images per encode/decode call
LATENT = 32  # the paper's smaller MNIST latent: 4 × 4 × 2 (latent_width 4, latent 2)


@dataclass(frozen=True)
class LatentBudget(Budget):
    """A budget with the k-means protocol's size: `kmeans_inits` random starts (the authors' n_init is 1,000)."""

    kmeans_inits: int = 1000


def linear_probe(n_classes: int) -> LinearProbeAccuracy:
    return LinearProbeAccuracy(n_classes)


def kmeans(n_classes: int, budget: Budget) -> ClusteringAccuracy:
    """k-means with k the number of classes and the budget's number of random starts."""
    return ClusteringAccuracy(n_classes, n_init=getattr(budget, "kmeans_inits", LatentBudget.kmeans_inits))


PAPER_NOTE = ("GPU; the authors' MNIST runs (runs/*.sh, lib/train.py): batch 64, 2^24 samples (total_kimg 2^14), "
              "Adam lr 1e-4, their nets (arch acai-paper: depth 16, a 4 × 4 latent map) for the models that take "
              "them; k-means with 1,000 inits. Not run yet")  # fmt: skip
# The authors' encoder and decoder (baselines/_acai_nets.py) for every model with an `arch`; the others keep theirs.
PAPER_NETS = {"hidden": 16, "lr": 1e-4, "arch": "acai-paper", "latent_width": 4}


@tasks.register("latent-mnist")
class LatentMnist(Task):
    name = "latent-mnist"
    version = "1"
    description = "Linear-probe, k-means and retrieval accuracy of frozen latent codes of MNIST digits (ACAI paper)"
    requires = frozenset({"encode", "decode"})
    claims = CLAIMS  # the paper's qualitative claims (claims.py), checked by `aebench claims`
    metrics = (
        MetricSpec("linear_probe_accuracy", True, "Linear probe", "test accuracy of a softmax layer fitted on the "
                   "frozen training codes", linear_probe),
        MetricSpec("clustering_accuracy", True, "k-means", "test accuracy of k-means (k 10) on whitened codes, "
                   "clusters matched with digits (Hungarian)", kmeans),
        MetricSpec("precision_at_k", True, f"Precision@{RETRIEVAL_K}", f"share of a test digit's {RETRIEVAL_K} "
                   "nearest training codes (Euclidean) of its class", RetrievalPrecisionAtK),
        MetricSpec("mse", False, "Reconstruction MSE", "per-pixel MSE of reconstructed test digits, pixels in [-1, 1]",
                   MeanSquaredError),
    )  # fmt: skip
    real_data = "the four MNIST IDX files (train-images-idx3-ubyte, ..., t10k-labels-idx1-ubyte; .gz or not)"
    model_overrides = {"latent_dim": LATENT}
    budgets = {
        "smoke": LatentBudget(
            steps=40, batch_size=64, eval_samples=200, checkpoint_every=40, kmeans_inits=10,
            note="CPU smoke test: checks that everything runs; the numbers mean nothing",
        ),
        "quick": LatentBudget(
            steps=3000, batch_size=64, eval_samples=10_000, checkpoint_every=1000, kmeans_inits=100,
            note="a few minutes a model on one CPU thread (48 epochs of the 4,000 embedded digits); k-means with 100 "
            "inits (the authors' 1,000 cost 10× more); not converged",
            model_overrides={"hidden": 16},
        ),
        "paper": LatentBudget(
            steps=262_144, batch_size=64, eval_samples=10_000, checkpoint_every=10_000, kmeans_inits=1000,
            note=f"{PAPER_NOTE}; latent 32 (4 × 4 × 2)", model_overrides=PAPER_NETS,
        ),
        "paper-256": LatentBudget(
            steps=262_144, batch_size=64, eval_samples=10_000, checkpoint_every=10_000, kmeans_inits=1000,
            note=f"{PAPER_NOTE}; latent 256 (4 × 4 × 16)", table="paper-256",
            model_overrides={**PAPER_NETS, "latent_dim": 256},
        ),
    }  # fmt: skip

    def load(self, data_dir: Path | None, budget: Budget | None = None) -> TaskData:
        return load(None if data_dir is None else Path(data_dir), self.cache_dir)

    def data_spec(self, budget: Budget | None = None) -> DataSpec:
        return SPEC

    def evaluate(self, model: Model, data: TaskData, budget: Budget, generator: torch.Generator) -> Evaluation:
        test = scored_test(data, budget)
        with torch.no_grad():
            train_codes, test_codes = encode(model, data.train["x"]), encode(model, test["x"])
            mse = self.build_metrics("mse")["mse"]
            for x, z in zip(test["x"].split(EVAL_BATCH), test_codes.split(EVAL_BATCH)):
                mse.update(decode(model, z, data), x)
        evaluation = score(self.code_metrics(data, budget), train_codes, data.train["y"], test_codes, test["y"], budget)
        evaluation.metrics["mse"] = mse.value()
        evaluation.details["latent_dim"] = int(train_codes.shape[1])
        return evaluation

    def references(self, data: TaskData, budget: Budget, generator: torch.Generator) -> dict[str, Evaluation]:
        """The pixels themselves as codes, and their principal components as many as the models' latent."""
        test = scored_test(data, budget)
        train_pixels, test_pixels = data.train["x"].flatten(1), test["x"].flatten(1)
        size = int(budget.model_overrides.get("latent_dim", self.model_overrides["latent_dim"]))
        rows = {"raw pixels": (train_pixels, test_pixels), f"PCA of the pixels ({size} components)":
                pca_codes(train_pixels, test_pixels, size)}  # fmt: skip
        out = {}
        for name, (train_codes, test_codes) in rows.items():
            evaluation = score(self.code_metrics(data, budget), train_codes, data.train["y"], test_codes, test["y"],
                               budget)  # fmt: skip
            evaluation.metrics["mse"] = None
            evaluation.unavailable["mse"] = "not a model"
            evaluation.details["latent_dim"] = int(train_codes.shape[1])
            out[name] = evaluation
        return out

    def code_metrics(self, data: TaskData, budget: Budget) -> list[Metric]:
        """Fresh objects of the three metrics of codes (every column but mse)."""
        names = [m.name for m in self.metrics if m.name != "mse"]
        return list(self.build_metrics(*names, n_classes=data.spec.n_classes, budget=budget).values())

    def save_samples(self, model: Model, data: TaskData, path: Path, generator: torch.Generator) -> None:
        """16 test digits (first row) over their reconstructions (second row), twice."""
        x = data.test["x"][:32]
        with torch.no_grad():
            recon = decode(model, encode(model, x), data)
        h, w = data.spec.shape[1:]
        pad = 2
        rows = [x[:16], recon[:16], x[16:], recon[16:]]
        picture = np.ones((len(rows) * (h + pad) + pad, 16 * (w + pad) + pad), np.float32)
        for r, row in enumerate(rows):
            for k, image in enumerate(row[:, 0].numpy()):
                top, left = pad + r * (h + pad), pad + k * (w + pad)
                picture[top : top + h, left : left + w] = image
        save_png(path, picture, vmin=-1.0, vmax=1.0)


def scored_test(data: TaskData, budget: Budget) -> dict[str, Tensor]:
    """The first `eval_samples` test digits (all of them at the quick and paper budgets)."""
    n = min(budget.eval_samples, len(data.test["y"]))
    return {key: value[:n] for key, value in data.test.items()}


def score(metrics: list[Metric], train_codes: Tensor, train_labels: Tensor, test_codes: Tensor, test_labels: Tensor,
          budget: Budget) -> Evaluation:  # fmt: skip
    """The representation metrics of codes (`LatentMnist.code_metrics`): probe and k-means fitted on the training
    codes, all scored on the test codes; retrieval queries the training codes with the test codes."""
    inits = getattr(budget, "kmeans_inits", LatentBudget.kmeans_inits)
    values: dict[str, float | None] = {}
    for metric in metrics:
        metric.update(train_codes, train_labels, True)
        metric.update(test_codes, test_labels, False)
        values[metric.name] = metric.value()
    details = {"train_codes": len(train_codes), "test_codes": len(test_codes), "kmeans_inits": inits,
               "retrieval_k": RETRIEVAL_K}  # fmt: skip
    return Evaluation(values, details=details)


def _name(model: Model) -> str:
    return model.name or type(model).__name__


def encode(model: Model, x: Tensor) -> Tensor:
    """model.encode in batches, flattened to (N, D) codes."""
    out = []
    for batch in x.split(EVAL_BATCH):
        z = model.encode(batch.to(model.device))
        out.append(checked_output(z, (len(batch), *z.shape[1:]), f"{_name(model)}: encode()").flatten(1))
    return torch.cat(out)


def decode(model: Model, z: Tensor, data: TaskData) -> Tensor:
    what = f"{_name(model)}: decode()"
    return torch.cat([checked_output(model.decode(b.to(model.device)), (len(b), *data.spec.shape), what,
                                     data.spec.value_range) for b in z.split(EVAL_BATCH)])  # fmt: skip


def pca_codes(train: Tensor, test: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """The training pixels' first `size` principal components (float64 SVD), for both splits."""
    train, test = train.double(), test.double()
    mean = train.mean(dim=0)
    _, _, vt = torch.linalg.svd(train - mean, full_matrices=False)
    return (train - mean) @ vt[:size].T, (test - mean) @ vt[:size].T
