"""mnist-sharpness: how sharp are a generative model's MNIST digits? (PIE paper, sharpness table.)

Samples from the model's prior are scored by the PIE sharpness (variance of the Laplace response, averaged over
images) and by FID, KID and k-NN precision/recall in the feature space of a digit classifier trained on the real
training split; models that reconstruct are also scored by reconstruction MSE on the test digits. See README.md
for the protocol.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from aebench.errors import AebenchError, NonFiniteOutput
from aebench.images import save_png
from aebench.metrics import (
    COPYING_COLUMNS,
    DataCopying,
    FrechetInceptionDistance,
    KernelInceptionDistance,
    MeanSquaredError,
    PrecisionRecallDensityCoverage,
    Sharpness,
    copying_evaluation,
    split_features,
    worst_copies,
)
from aebench.model import DataSpec, Model
from aebench.registry import tasks
from aebench.task import Budget, Evaluation, MetricSpec, Task, TaskData
from aebench.trained_features import TrainedExtractorConfig

from .claims import CLAIMS, PUBLISHED
from .corruptions import LADDER
from .data import SPEC, load_embedded, load_idx
from .features import DIGIT_CNN, DigitCNNExtractor

FEATURE_METRICS = ("fid", "kid", "precision", "recall")  # measured in the mnist-digit-cnn feature space
EVAL_BATCH = 500  # samples per model.sample call: bounded memory on any device
PAPER_NETS = {"arch": "wae-paper", "hidden": 128}  # the paper's VAE and WAE: the WAE paper's MNIST nets


def precision_recall() -> PrecisionRecallDensityCoverage:
    """k-NN precision and recall with k 3, as the PRDC paper's precision/recall."""
    return PrecisionRecallDensityCoverage(k_pr=3)


@tasks.register("mnist-sharpness")
class MnistSharpness(Task):
    name = "mnist-sharpness"
    # 2: KID and k-NN precision/recall columns. 3: PIE samples r ~ N(g(z), ε²I) as the paper (was r = g(z)) and
    # gains its third linear block; a "Sharpness (unclamped)" column; the WAE paper's nets for ae/vae/wae at the
    # paper budgets; copying scores (issue 21).
    version = "3"
    description = "Sharpness (PIE), FID and reconstruction MSE of MNIST digits sampled from an 8-dim latent"
    requires = frozenset({"sample"})
    claims = CLAIMS  # the paper's qualitative claims (claims.py), checked by `aebench claims`
    published = PUBLISHED  # the paper's numbers (claims.py), shown beside ours by `aebench report`
    ladder = LADDER
    metrics = (
        MetricSpec("sharpness", True, "Sharpness", "mean variance of the Laplace response of generated digits",
                   Sharpness),
        MetricSpec("sharpness_unclamped", True, "Sharpness (unclamped)", "the same, on samples not clamped to [0, 1]",
                   Sharpness),
        MetricSpec("fid", False, "FID", "Fréchet distance to the test digits, mnist-digit-cnn features",
                   FrechetInceptionDistance),
        MetricSpec("kid", False, "KID", "kernel inception distance to the test digits, mnist-digit-cnn features",
                   KernelInceptionDistance, output=0),
        MetricSpec("precision", True, "Precision", "k-NN precision (k 3) against the test digits: fidelity",
                   precision_recall, "precision"),
        MetricSpec("recall", True, "Recall", "k-NN recall (k 3) of the test digits: diversity", precision_recall,
                   "recall"),
        MetricSpec("mse", False, "Reconstruction MSE", "per-pixel MSE of reconstructed test digits in [0, 1]",
                   MeanSquaredError),
        # Against the training digits, mnist-digit-cnn: aebench.metrics.copying_evaluation fits the DataCopying.
        *(MetricSpec(*column, metric=DataCopying, output=column[0]) for column in COPYING_COLUMNS),
    )  # fmt: skip
    real_data = "the four MNIST IDX files (train-images-idx3-ubyte, ..., t10k-labels-idx1-ubyte; .gz or not)"
    model_overrides = {"latent_dim": 8}  # the PIE table samples an 8-dim latent
    budgets = {
        "smoke": Budget(
            steps=300, batch_size=64, eval_samples=1000, checkpoint_every=300,
            note="CPU smoke test: checks that everything runs; the numbers mean nothing",
        ),
        "quick": Budget(
            steps=3000, batch_size=128, eval_samples=10_000, checkpoint_every=1000,
            note="a few minutes on CPU: orderings start to show; not converged",
        ),
        "paper": Budget(
            steps=23_500, batch_size=128, eval_samples=10_000, checkpoint_every=2500,
            note="GPU; 10,000 samples as in the paper; ae, vae and wae on the WAE paper's MNIST nets (arch "
            "wae-paper, hidden 128: ~15 s a step on one CPU thread). REFERENCE.md does not state the paper's epochs: "
            "23,500 steps are ~50 epochs of the 60k MNIST training set at batch 128",
            model_overrides={name: PAPER_NETS for name in ("ae", "vae", "wae")},
        ),
        "paper-cpu": Budget(
            steps=23_500, batch_size=128, eval_samples=10_000, checkpoint_every=2500,
            note="the paper budget on a CPU: the WAE paper's nets at 1/8 of their widths (hidden 16: channels "
            "16-32-64-128, decoder 128-64-32), ~0.3-0.8 s a step on one thread; PIE as in paper",
            model_overrides={name: {**PAPER_NETS, "hidden": 16} for name in ("ae", "vae", "wae")},
        ),
    }  # fmt: skip

    def __init__(self, cache_dir: Path, extractor_config: TrainedExtractorConfig | None = None):
        super().__init__(cache_dir)
        self.extractor_config = extractor_config or DIGIT_CNN
        self._extractors: dict[str, DigitCNNExtractor] = {}  # by data hash: evaluate and references share

    def load(self, data_dir: Path | None, budget: Budget | None = None) -> TaskData:
        return load_embedded(self.cache_dir) if data_dir is None else load_idx(Path(data_dir))

    def data_spec(self, budget: Budget | None = None) -> DataSpec:
        return SPEC

    def extractor(self, data: TaskData) -> DigitCNNExtractor:
        """The FID feature extractor for `data`, trained once and cached on disk (see features.py)."""
        key = data.content_hash()
        if key not in self._extractors:
            self._extractors[key] = DigitCNNExtractor.for_data(data, self.cache_dir, self.extractor_config)
        return self._extractors[key]

    def evaluate(self, model: Model, data: TaskData, budget: Budget, generator: torch.Generator) -> Evaluation:
        test = data.test["x"]
        n_fid = min(budget.eval_samples, len(test))
        extractor = self.extractor(data).to(model.device)
        built = self.build_metrics("sharpness", "sharpness_unclamped", "fid", extractor=extractor)
        sharpness, sharpness_unclamped, fid = built["sharpness"], built["sharpness_unclamped"], built["fid"]
        fid.update(test, real=True)
        done = 0
        with torch.no_grad():
            while done < budget.eval_samples:
                n = min(EVAL_BATCH, budget.eval_samples - done)
                raw = _checked(model.sample(n, generator), n, data, f"{_name(model)}: sample()", clamp=False)
                sharpness_unclamped.update(raw)
                x = raw.clamp(*data.spec.value_range)
                sharpness.update(x)
                if done < n_fid:
                    fid.update(x[: n_fid - done], real=False)
                done += n
        metrics: dict[str, float | None] = {
            "sharpness": sharpness.value(),
            "sharpness_unclamped": sharpness_unclamped.value(),
            **self._feature_scores(fid),
        }
        unavailable = {}
        if "reconstruct" in model.capabilities:
            metrics["mse"] = self._reconstruction_mse(model, data)
        else:
            metrics["mse"] = None
            unavailable["mse"] = f"{_name(model)} has no 'reconstruct' capability"
        copying = copying_evaluation(extractor, data.train["x"], *fid.features())
        metrics.update(copying.metrics)
        unavailable.update(copying.unavailable)
        described = {name: _fid_description(extractor, n_fid, len(test)) for name in FEATURE_METRICS}
        return Evaluation(metrics, unavailable, {**described, **copying.extractors}, copying.details)

    def references(self, data: TaskData, budget: Budget, generator: torch.Generator) -> dict[str, Evaluation]:
        """The paper's "True" column: the real test digits, and real training digits for FID."""
        test, train = data.test["x"], data.train["x"]
        n_fid = min(budget.eval_samples, len(test), len(train))
        extractor = self.extractor(data)
        fid = self.build_metrics("fid", extractor=extractor)["fid"]
        fid.update(test, real=True)
        fid.update(train[torch.randperm(len(train), generator=generator)[:n_fid]], real=False)
        copying = copying_evaluation(extractor, train, fid.features()[0])  # half the test digits against the other
        return {
            "True (real test digits)": Evaluation(
                metrics={
                    "sharpness": self.build_metrics("sharpness")["sharpness"].value_of(test),
                    # real digits lie in [0, 1]: the clamp changes nothing
                    "sharpness_unclamped": self.build_metrics("sharpness_unclamped")["sharpness_unclamped"].value_of(
                        test
                    ),
                    **self._feature_scores(fid),
                    "mse": None,
                    **copying.metrics,
                },
                unavailable={"mse": "not a model", **copying.unavailable},
                extractors={
                    **{name: _fid_description(extractor, n_fid, len(test)) for name in FEATURE_METRICS},
                    **copying.extractors,
                },
                details=copying.details,
            )
        }

    def save_samples(self, model: Model, data: TaskData, path: Path, generator: torch.Generator) -> None:
        """An 8×8 grid of samples; below it the 8 of them nearest a training digit (mnist-digit-cnn features) over
        those training digits (copies look alike); then, for reconstructing models, 8 test digits over their
        reconstructions."""
        with torch.no_grad():
            rows = [_checked(model.sample(64, generator), 64, data, f"{_name(model)}: sample()")]
            extractor, train = self.extractor(data).to(model.device), data.train["x"]
            copies, nearest = worst_copies(split_features(extractor, train), extractor.features(rows[0]).cpu())
            rows.append(torch.cat([rows[0][copies], train[nearest]]))  # one line of samples over one of digits
            if "reconstruct" in model.capabilities:
                real = data.test["x"][:8]
                recon = model.reconstruct(real.to(model.device))
                rows += [real, _checked(recon, 8, data, f"{_name(model)}: reconstruct()")]
        save_png(path, _mosaic(rows))

    def _feature_scores(self, fid: FrechetInceptionDistance) -> dict[str, float]:
        """FID, KID and k-NN precision/recall from the features `fid` gathered (extracted once for all four)."""
        real, fake = fid.features()
        # The cubic kernel wants order-one features; KID and PRDC take the features themselves (no extractor).
        needs = {"subset_size": min(1000, len(real), len(fake)), "scale": fid.extractor.feature_rms}
        built = self.build_metrics("kid", "precision", "recall", **needs)
        kid, manifold = built["kid"], built["precision"]
        for metric in (kid, manifold):
            metric.update(real, real=True)
            metric.update(fake, real=False)
        kid_mean, _ = kid.value()
        pr = manifold.value()
        return {"fid": fid.value(), "kid": kid_mean, "precision": pr["precision"], "recall": pr["recall"]}

    def _reconstruction_mse(self, model: Model, data: TaskData) -> float:
        mse = self.build_metrics("mse")["mse"]
        with torch.no_grad():
            for x in data.test["x"].split(EVAL_BATCH):
                recon = _checked(model.reconstruct(x.to(model.device)), len(x), data, f"{_name(model)}: reconstruct()")
                mse.update(recon, x)
        return mse.value()


def _checked(x: Tensor, n: int, data: TaskData, what: str, clamp: bool = True) -> Tensor:
    """Model output as float32 on the CPU, clamped to the data range unless `clamp` is False; wrong shapes and NaN
    are clear errors."""
    expected = (n, *data.spec.shape)
    if tuple(x.shape) != expected:
        raise AebenchError(f"{what} returned shape {tuple(x.shape)}, expected {expected}")
    x = x.detach().float().cpu()
    if not torch.isfinite(x).all():
        raise NonFiniteOutput(f"{what} returned NaN or infinite values")
    return x.clamp(*data.spec.value_range) if clamp else x  # pixels outside [0, 1] cannot be shown


def _fid_description(extractor: DigitCNNExtractor, n_generated: int, n_real: int) -> dict:
    return {**extractor.describe(), "n_generated": n_generated, "n_real": n_real}


def _name(model: Model) -> str:
    return model.name or type(model).__name__


def _mosaic(rows: list[Tensor], columns: int = 8, pad: int = 2) -> np.ndarray:
    """Images (N, 1, H, W) of each group → one grey array, `columns` per line, groups separated by a gap."""
    lines = []
    for group in rows:
        images = group[:, 0].numpy()
        _, h, w = images.shape
        for start in range(0, len(images), columns):
            line = np.ones((h + pad, columns * (w + pad) + pad), dtype=np.float32)
            for j, image in enumerate(images[start : start + columns]):
                line[pad:, pad + j * (w + pad) : pad + j * (w + pad) + w] = image
            lines.append(line)
        lines.append(np.ones((2 * pad, lines[-1].shape[1]), dtype=np.float32))  # gap between groups
    return np.concatenate(lines)
