"""galaxy-generation: do generative models produce all three kinds of galaxy, and do they look real?

The "Revisiting Autoencoders" comparison of VAE, GAN, acGAN, WGAN-GP and WGAN-div on RGB galaxy images of three
classes (barred spiral, elliptical, spiral), where the plain GAN is said to collapse. Samples are scored in the
feature space of a galaxy classifier trained on the real training images (`galaxy-cnn`): FID, KID, k-NN
precision/recall/density/coverage, and the share of each class among the samples, which exposes mode collapse.
Class-conditional models (a `sample_class(labels, generator)` method, as acGAN has) are also scored by how often
the classifier recognises the class they were asked for. See README.md for the protocol.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

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
    Metric,
    PrecisionRecallDensityCoverage,
    Sharpness,
    copying_evaluation,
    split_features,
    worst_copies,
)
from aebench.model import DataSpec, Model
from aebench.registry import extractors, tasks
from aebench.report import MetricBars, ReportSpec
from aebench.task import Budget, Evaluation, MetricSpec, Task, TaskData
from aebench.trained_features import TrainedExtractorConfig, TrainedImageExtractor

from .claims import CLAIMS
from .corruptions import LADDER
from .data import GALAXY10_FILE, load_embedded, load_galaxy10
from .data import spec as galaxy_spec
from .render import CLASSES, RenderConfig

EVAL_BATCH = 250  # samples per model call: bounded memory on any device
K_RECALL, K_DENSITY = 3, 5  # k of the k-NN precision/recall and density/coverage
LABELS = {"barred_spiral": "barred spiral", "elliptical": "elliptical", "spiral": "spiral"}
FEATURE_METRICS = ("fid", "kid", "precision", "recall", "density", "coverage")  # in galaxy-cnn (class features)
AE_METRICS = tuple(f"{name}_ae" for name in FEATURE_METRICS)  # the same in galaxy-ae (texture and shape)
SHARE_METRICS = ("class_coverage", *(f"share_{c}" for c in CLASSES))
CONDITIONAL_METRICS = ("cond_accuracy", *(f"cond_accuracy_{c}" for c in CLASSES))

# Three stride-2 stages (64 → 8 px); on the embedded galaxies ~99% test accuracy in ~30 s on one CPU thread.
GALAXY_CNN = TrainedExtractorConfig(objective="classifier", channels=(16, 32, 64), feature_dim=128, epochs=10)


# The same three stages as an auto-encoder (mirrored decoder, MSE): its 128-d bottleneck must keep what the pixels
# need, texture and shape included, where the classifier keeps what tells the three classes apart.
GALAXY_AE = TrainedExtractorConfig(objective="autoencoder", channels=(16, 32, 64), feature_dim=128, epochs=10)


@extractors.register("galaxy-cnn")
class GalaxyCNN(TrainedImageExtractor):
    name = "galaxy-cnn"
    description = "penultimate features (ReLU) of a 3-conv galaxy classifier trained on the real training galaxies"


@extractors.register("galaxy-ae")
class GalaxyAE(TrainedImageExtractor):
    name = "galaxy-ae"
    description = "bottleneck of a 3-conv auto-encoder (MSE) trained on the real training galaxies: texture and shape"


class ClassShares(Metric):
    """Each class's share among generated galaxies (the classifier's verdicts) over its share among the training
    galaxies, capped at 1: a faithful sampler reproduces the class proportions it learnt from. `update` takes the
    predicted labels; `compute` gives {"share_<class>", ..., "class_coverage"}, the last the smallest share."""

    name = "class-shares"
    higher_is_better = True
    description = "per class: generated share / training share, capped at 1; class coverage: the smallest"

    def __init__(self, train_labels: Tensor, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.train_rate = torch.bincount(train_labels, minlength=len(CLASSES)).double() / len(train_labels)
        self.add_state("counts", torch.zeros(len(CLASSES), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, predicted: Tensor) -> None:
        self.counts += torch.bincount(predicted.cpu(), minlength=len(CLASSES))

    def compute(self) -> dict[str, Tensor]:
        shares = (self.counts.double() / self.counts.sum() / self.train_rate.clamp_min(1e-12)).clamp(max=1.0)
        return {**{f"share_{c}": shares[i] for i, c in enumerate(CLASSES)}, "class_coverage": shares.min()}


class ConditionalAccuracy(Metric):
    """How often the classifier finds the asked-for class in class-conditional samples: `update(predicted,
    labels)`; `compute` gives {"cond_accuracy_<class>", ..., "cond_accuracy"}, the last the mean over classes."""

    name = "conditional-accuracy"
    higher_is_better = True
    description = "per class: the share of samples asked for that class that the classifier assigns to it"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("hits", [], dist_reduce_fx="cat")
        self.add_state("labels", [], dist_reduce_fx="cat")

    def update(self, predicted: Tensor, labels: Tensor) -> None:
        self.hits.append((predicted.cpu() == labels.cpu()).double())
        self.labels.append(labels.cpu())

    def compute(self) -> dict[str, Tensor]:
        hits, labels = self.gathered("hits"), self.gathered("labels")
        accuracy = {f"cond_accuracy_{c}": float(hits[labels == i].mean()) for i, c in enumerate(CLASSES)}
        accuracy["cond_accuracy"] = float(np.mean(list(accuracy.values())))
        return {key: torch.tensor(value, dtype=torch.float64) for key, value in accuracy.items()}


def galaxy_prdc() -> PrecisionRecallDensityCoverage:
    """k-NN precision/recall with k 3 and density/coverage with k 5 (Naeem et al.)."""
    return PrecisionRecallDensityCoverage(k_pr=K_RECALL, k_dc=K_DENSITY)


def _feature_specs(suffix: str, space: str) -> tuple[MetricSpec, ...]:
    """FID, KID and the k-NN scores of samples against the test galaxies in one feature space; `Task.build_metrics`
    shares one PRDC object among the four k-NN columns of one call, so each space is built by a call of its own."""
    what = {
        "precision": "k-NN precision (k 3): share of samples on the real manifold",
        "recall": "k-NN recall (k 3): share of test galaxies on the samples' manifold",
        "density": "k-NN density (k 5, Naeem et al.); 1 for real data, may pass 1",
        "coverage": "k-NN coverage (k 5): test galaxies with a sample nearby",
    }
    label = " (AE)" if suffix else ""
    return (
        MetricSpec(f"fid{suffix}", False, f"FID{label}", f"Fréchet distance to the test galaxies, {space} features",
                   FrechetInceptionDistance),
        MetricSpec(f"kid{suffix}", False, f"KID{label}", f"kernel inception distance to the test galaxies, {space} "
                   "features", KernelInceptionDistance, output=0),
        *(MetricSpec(f"{name}{suffix}", True, f"{name.capitalize()}{label}", f"{text}, {space} features", galaxy_prdc,
                     name) for name, text in what.items()),
    )  # fmt: skip


# CPU budgets: DCGAN networks at a quarter of their width (a WGAN step is then ~10× cheaper), and the conv VAE and
# AAE, whose width field is `hidden`, at a quarter of their own (32 → 8). Records made before the VAE entry say
# "nothing for vae" in the leaderboard header: their VAE ran at full width.
NARROW = {"hidden_channels": 16, "vae": {"hidden": 8}, "aae": {"hidden": 8}}
PAPER_SIZE = 128  # the notes' galaxies are 128×128×3 (their MLP VAE reads 49,152 values); CPU budgets render 64×64


@tasks.register("galaxy-generation")
class GalaxyGeneration(Task):
    name = "galaxy-generation"
    version = "2"  # 2: copying scores (C_T, authenticity, near-duplicates) against the training galaxies
    description = "FID/KID, precision/recall, class coverage (mode collapse) of RGB galaxies of three classes"
    requires = frozenset({"sample"})
    claims = CLAIMS  # the paper's qualitative claims (claims.py), checked by `aebench claims`
    ladder = LADDER
    report = ReportSpec(
        samples="Samples of each model (first seed); the class-conditional models draw a row per class.",
        plots=(
            MetricBars(
                title="Per-class shares of the samples (galaxy-cnn classifier)",
                metrics=SHARE_METRICS,
                caption="min(1, a class's rate among the samples / its rate in training): 1 for every class "
                "is full coverage, a class near 0 is a collapsed mode.",
            ),
            MetricBars(
                title="Conditional accuracy per class",
                metrics=CONDITIONAL_METRICS,
                caption="Share of the samples asked for a class that the classifier assigns to it (conditional "
                "models only).",
            ),
        ),
    )
    metrics = (
        *_feature_specs("", "galaxy-cnn"),
        *_feature_specs("_ae", "galaxy-ae"),
        MetricSpec("class_coverage", True, "Class coverage", "min over classes of share_<class>; 0 = a class missing",
                   ClassShares, "class_coverage"),
        *(
            MetricSpec(f"share_{c}", True, f"Share {LABELS[c]}", f"min(1, {LABELS[c]} rate of samples / in training)",
                       ClassShares, f"share_{c}")
            for c in CLASSES
        ),
        MetricSpec("cond_accuracy", True, "Cond. accuracy", "mean over classes of cond_accuracy_<class>",
                   ConditionalAccuracy, "cond_accuracy"),
        *(
            MetricSpec(f"cond_accuracy_{c}", True, f"Cond. acc. {LABELS[c]}", f"samples asked to be {LABELS[c]}s "
                       "that the classifier calls so", ConditionalAccuracy, f"cond_accuracy_{c}")
            for c in CLASSES
        ),
        MetricSpec("sharpness", True, "Sharpness", "PIE sharpness of the grey (channel-mean) images in [0, 1]",
                   Sharpness),
        # Against the training galaxies, galaxy-cnn: aebench.metrics.copying_evaluation fits the DataCopying.
        *(MetricSpec(*column, metric=DataCopying, output=column[0]) for column in COPYING_COLUMNS),
    )  # fmt: skip
    real_data = f"{GALAXY10_FILE} (Galaxy10 DECaLS: 'images' (N, 256, 256, 3) uint8 and 'ans' (N,) labels 0–9)"
    budgets = {
        "smoke": Budget(
            steps=40, batch_size=16, eval_samples=300, checkpoint_every=40, model_overrides=NARROW,
            note="CPU smoke test with narrow networks: checks that everything runs; the numbers mean nothing",
        ),
        "quick": Budget(
            steps=1000, batch_size=32, eval_samples=900, checkpoint_every=250, model_overrides=NARROW,
            note="CPU, narrow networks (16 base channels), ~1 to 10 minutes per model: GAN collapse starts to show; "
            "not converged",
        ),
        "quick-2000": Budget(
            steps=2000, batch_size=32, eval_samples=900, checkpoint_every=250, model_overrides=NARROW,
            note="quick at twice its length: WGAN-GP (the paper's Adam) produces one class until ~1,500 steps and all "
            "three by 2,000 (README)",
        ),
        "paper": Budget(
            steps=30_000, batch_size=64, eval_samples=5000, checkpoint_every=2500,
            note="GPU, 128×128 galaxies as in the notes. REFERENCE.md gives no training length: 30,000 steps are "
            "~215 epochs of the merged Galaxy10 training split (~8,900 galaxies) at batch 64",
        ),
    }  # fmt: skip

    def __init__(
        self,
        cache_dir: Path,
        render_config: RenderConfig | None = None,
        extractor_config: TrainedExtractorConfig | None = None,
        ae_config: TrainedExtractorConfig | None = None,
    ):
        super().__init__(cache_dir)
        self.render_config = render_config or RenderConfig()  # its size also sets the size of the real data
        self.extractor_config = extractor_config or GALAXY_CNN
        self.ae_config = ae_config or GALAXY_AE
        self._extractors: dict[tuple[str, str], TrainedImageExtractor] = {}  # by (space, data hash: once per TaskData)

    def data_spec(self, budget: Budget | None = None) -> DataSpec:
        return galaxy_spec(self.render_config.size)

    def load(self, data_dir: Path | None, budget: Budget | None = None) -> TaskData:
        if data_dir is None:
            return load_embedded(self.cache_dir, dataclasses.replace(self.render_config, size=self.size_for(budget)))
        data = load_galaxy10(Path(data_dir), self.cache_dir, size=self.size_for(budget), merge=True)
        n_test = len(data.test["x"])
        if n_test <= K_DENSITY:  # before any training: the k-NN metrics would fail only after it
            raise AebenchError(
                f"galaxy-generation: {data.source.split(': ', 1)[-1]} leaves {n_test} test galaxies of the merged "
                f"classes; density and coverage (k = {K_DENSITY}) need at least {K_DENSITY + 1}"
            )
        return data

    def size_for(self, budget: Budget | None) -> int:
        """Image side for a budget: the notes' 128 px at `paper`, the render config's (64 by default) otherwise."""
        return PAPER_SIZE if budget is not None and budget == self.budgets["paper"] else self.render_config.size

    def extractor(self, data: TaskData) -> GalaxyCNN:
        """The classifier and feature space of `data`, trained once on its training galaxies and cached on disk."""
        train, test = data.train, data.test
        key = ("cnn", data.content_hash())
        if key not in self._extractors:
            self._extractors[key] = GalaxyCNN.for_images(
                train["x"], test["x"], self.cache_dir, self.extractor_config, train["y"], test["y"]
            )
        return self._extractors[key]

    def ae_extractor(self, data: TaskData) -> GalaxyAE:
        """The auto-encoder feature space of `data` (no labels), trained once on its training galaxies and cached."""
        key = ("ae", data.content_hash())
        if key not in self._extractors:
            self._extractors[key] = GalaxyAE.for_images(data.train["x"], data.test["x"], self.cache_dir, self.ae_config)
        return self._extractors[key]

    def evaluate(self, model: Model, data: TaskData, budget: Budget, generator: torch.Generator) -> Evaluation:
        extractor, ae = self.extractor(data).to(model.device), self.ae_extractor(data).to(model.device)
        sharpness, features, ae_features, predicted = self.build_metrics("sharpness")["sharpness"], [], [], []
        with torch.no_grad():
            for n in _batches(budget.eval_samples):
                x = _checked(model.sample(n, generator), n, data, f"{_name(model)}: sample()")
                sharpness.update(grey(x))
                features.append(extractor.features(x).cpu())
                ae_features.append(ae.features(x).cpu())
                predicted.append(extractor.predict(x))
            conditional = self._conditional(model, data, budget, generator, extractor)
        fake = {"cnn": torch.cat(features), "ae": torch.cat(ae_features)}
        row = self._evaluation(data, fake, torch.cat(predicted), sharpness, conditional)
        test_features = split_features(extractor, data.test["x"])
        return _merged(row, copying_evaluation(extractor, data.train["x"], test_features, fake["cnn"]))

    def references(self, data: TaskData, budget: Budget, generator: torch.Generator) -> dict[str, Evaluation]:
        """Real vs real: training galaxies scored as if a model had sampled them; for the conditional metrics, the
        classifier's accuracy on the labelled test galaxies (what a perfect conditional model would reach)."""
        extractor, ae = self.extractor(data), self.ae_extractor(data)
        train = data.train["x"][torch.randperm(len(data.train["x"]), generator=generator)[: budget.eval_samples]]
        test_x, test_y = data.test["x"], data.test["y"]
        conditional = self._per_class_accuracy(extractor.predict(test_x), test_y)
        sharpness = self.build_metrics("sharpness")["sharpness"]
        sharpness.update(grey(train))
        fake = {"cnn": extractor.features(train).cpu(), "ae": ae.features(train).cpu()}
        row = self._evaluation(data, fake, extractor.predict(train), sharpness, conditional)
        # Training galaxies would be copies by definition: the copying columns score half the test galaxies against
        # the other half.
        held_out = copying_evaluation(extractor, data.train["x"], split_features(extractor, test_x))
        return {"Real (training vs test galaxies)": _merged(row, held_out)}

    def save_samples(self, model: Model, data: TaskData, path: Path, generator: torch.Generator) -> None:
        """Three rows of 8 generated galaxies, one per class (barred spiral, elliptical, spiral), then a gap and
        three rows of real test galaxies in the same order. A class-conditional model is asked for each class;
        otherwise 96 samples are sorted by the classifier's verdict and a short row (grey slots) shows a class
        the model rarely or never produces. Last, the 8 samples nearest a training galaxy (galaxy-cnn features)
        over those training galaxies: copies look alike."""
        columns, n_classes = 8, len(CLASSES)
        with torch.no_grad():
            if hasattr(model, "sample_class"):
                labels = torch.arange(n_classes).repeat_interleave(columns)
                x = model.sample_class(labels.to(model.device), generator)
                x = _checked(x, len(labels), data, f"{_name(model)}: sample_class()")
                generated = [x[labels == c] for c in range(n_classes)]
            else:
                x = _checked(model.sample(12 * columns, generator), 12 * columns, data, f"{_name(model)}: sample()")
                verdict = self.extractor(data).to(model.device).predict(x)
                generated = [x[verdict == c][:columns] for c in range(n_classes)]
        real = [data.test["x"][data.test["y"] == c][:columns] for c in range(n_classes)]
        extractor, train = self.extractor(data).to(model.device), data.train["x"]
        with torch.no_grad():
            copies, nearest = worst_copies(split_features(extractor, train), extractor.features(x).cpu(), columns)
        blocks = [generated, real, [x[copies], train[nearest]]]
        save_png(path, _mosaic(blocks, data.spec.shape, columns))

    # --- helpers --------------------------------------------------------------------------------------------------
    def _conditional(
        self, model: Model, data: TaskData, budget: Budget, generator: torch.Generator, extractor: GalaxyCNN
    ) -> dict[str, float] | str:
        """Per-class accuracy of class-conditional samples, or why there is none."""
        if not hasattr(model, "sample_class"):
            return f"{_name(model)} is not class-conditional (no sample_class method)"
        n_classes = len(CLASSES)
        per_class = max(1, budget.eval_samples // n_classes)
        labels = torch.arange(n_classes).repeat_interleave(per_class)
        predicted = []
        for batch in labels.split(EVAL_BATCH):
            x = model.sample_class(batch.to(model.device), generator)
            predicted.append(extractor.predict(_checked(x, len(batch), data, f"{_name(model)}: sample_class()")))
        return self._per_class_accuracy(torch.cat(predicted), labels)

    def _evaluation(
        self,
        data: TaskData,
        fake_features: dict[str, Tensor],
        fake_predicted: Tensor,
        sharpness: Sharpness,
        conditional: dict[str, float] | str,
    ) -> Evaluation:
        """Scores of generated (or reference) galaxies from their features in each space ("cnn", "ae"), their
        classifier labels, sharpness and conditional accuracy."""
        test = data.test["x"]
        extractor, ae = self.extractor(data), self.ae_extractor(data)
        n_fake, n_classes = len(fake_predicted), len(CLASSES)
        metrics = self._feature_metrics("", extractor, extractor.features(test).cpu(), fake_features["cnn"])
        metrics.update(self._feature_metrics("_ae", ae, ae.features(test).cpu(), fake_features["ae"]))
        # A faithful sampler reproduces the class proportions of the training galaxies it learnt from.
        train_rate = torch.bincount(data.train["y"], minlength=n_classes).double() / len(data.train["y"])
        fake_rate = torch.bincount(fake_predicted, minlength=n_classes).double() / n_fake
        metrics.update(
            self.build_metrics("class_coverage", train_labels=data.train["y"])["class_coverage"].value_of(
                fake_predicted
            )
        )
        unavailable = {}
        if isinstance(conditional, str):
            metrics.update(dict.fromkeys(CONDITIONAL_METRICS))
            unavailable.update(dict.fromkeys(CONDITIONAL_METRICS, conditional))
        else:
            metrics.update(conditional)
        metrics["sharpness"] = sharpness.value()

        described = {**extractor.describe(), "n_generated": n_fake, "n_real": len(test)}
        rates = {
            "generated_class_rates": dict(zip(CLASSES, np.round(fake_rate.numpy(), 4).tolist())),
            "training_class_rates": dict(zip(CLASSES, np.round(train_rate.numpy(), 4).tolist())),
        }
        described_extractors = {name: described for name in FEATURE_METRICS}
        described_ae = {**ae.describe(), "n_generated": n_fake, "n_real": len(test)}
        described_extractors.update({name: described_ae for name in AE_METRICS})
        described_extractors.update({name: {**described, **rates} for name in SHARE_METRICS})
        # Also when unavailable, so that leaderboards keep one galaxy-cnn column per conditional metric.
        described_extractors.update({name: described for name in CONDITIONAL_METRICS})
        return Evaluation(metrics, unavailable, described_extractors)

    def _feature_metrics(
        self, suffix: str, extractor: TrainedImageExtractor, real: Tensor, fake: Tensor
    ) -> dict[str, float]:
        """The columns `fid<suffix>`, `kid<suffix>` and the k-NN scores of fake against real features of one
        extractor."""
        # KID's kernel (x·y/D + 1)³ assumes features of order 1, as Inception's are; galaxy-cnn's ReLU features are
        # ~6 on average, so both sides are divided by the extractor's RMS feature on its training galaxies. No
        # extractor is passed: the metrics take the features themselves.
        names = [f"{name}{suffix}" for name in FEATURE_METRICS]
        needs = {"subset_size": min(1000, len(real), len(fake)), "scale": extractor.feature_rms}
        built = self.build_metrics(*names, **needs)
        fid, kid, manifold = built[f"fid{suffix}"], built[f"kid{suffix}"], built[f"precision{suffix}"]
        for metric in (fid, kid, manifold):
            metric.update(real, real=True)
            metric.update(fake, real=False)
        kid_mean, _ = kid.value()
        scores = {"fid": fid.value(), "kid": kid_mean, **manifold.value()}
        return {f"{name}{suffix}": scores[name] for name in FEATURE_METRICS}

    def _per_class_accuracy(self, predicted: Tensor, labels: Tensor) -> dict[str, float]:
        return self.build_metrics("cond_accuracy")["cond_accuracy"].value_of(predicted, labels)


def _merged(row: Evaluation, more: Evaluation) -> Evaluation:
    return Evaluation(
        {**row.metrics, **more.metrics},
        {**row.unavailable, **more.unavailable},
        {**row.extractors, **more.extractors},
        {**row.details, **more.details},
    )


def grey(x: Tensor) -> Tensor:
    """(N, 3, H, W) in [-1, 1] → (N, 1, H, W) channel mean in [0, 1], as the PIE sharpness expects."""
    return (x.mean(dim=1, keepdim=True) + 1) / 2


def _batches(total: int) -> list[int]:
    return [min(EVAL_BATCH, total - start) for start in range(0, total, EVAL_BATCH)]


def _checked(x: Tensor, n: int, data: TaskData, what: str) -> Tensor:
    """Model output as float32 on the CPU, clamped to the data range; wrong shapes and NaN are clear errors."""
    expected = (n, *data.spec.shape)
    if tuple(x.shape) != expected:
        raise AebenchError(f"{what} returned shape {tuple(x.shape)}, expected {expected}")
    x = x.detach().float().cpu()
    if not torch.isfinite(x).all():
        raise NonFiniteOutput(f"{what} returned NaN or infinite values")
    return x.clamp(*data.spec.value_range)  # pixels outside [-1, 1] cannot be shown, nor should they score


def _name(model: Model) -> str:
    return model.name or type(model).__name__


def _mosaic(blocks: list[list[Tensor]], shape: tuple[int, ...], columns: int, pad: int = 2) -> np.ndarray:
    """Blocks of rows of (n ≤ columns, 3, H, W) images in [-1, 1] → one RGB array; empty slots are mid-grey."""
    _, h, w = shape
    width = columns * (w + pad) + pad
    lines = []
    for rows in blocks:
        for images in rows:
            line = np.ones((h + pad, width, 3), dtype=np.float32)
            pictures = ((images + 1) / 2).permute(0, 2, 3, 1).numpy()  # (n, H, W, 3) in [0, 1]
            for j in range(columns):
                line[pad:, pad + j * (w + pad) : pad + j * (w + pad) + w] = pictures[j] if j < len(pictures) else 0.5
            lines.append(line)
        lines.append(np.ones((3 * pad, width, 3), dtype=np.float32))  # white gap between blocks
    return np.concatenate(lines).clip(0, 1)
