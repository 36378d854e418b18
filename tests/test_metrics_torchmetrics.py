"""aebench's metrics as torchmetrics metrics: forward/update/compute semantics, MetricCollection, DDP, and agreement
with torchmetrics itself where the two share a definition (PSNR per image, MSE, FID, KID) and a documented
difference where they do not (SSIM)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torchmetrics
from skimage.metrics import structural_similarity
from torch import Tensor, nn
from torchmetrics import MetricCollection
from torchmetrics.image.fid import FrechetInceptionDistance as TorchmetricsFID
from torchmetrics.image.kid import KernelInceptionDistance as TorchmetricsKID

from aebench.metrics import (
    BinnedKLDivergence,
    FrechetInceptionDistance,
    ItemMean,
    KernelInceptionDistance,
    MeanSquaredError,
    PeakSignalNoiseRatio,
    PrecisionRecallDensityCoverage,
    Sharpness,
    StructuralSimilarity,
    bin_edges,
    distribution,
    item_interval,
    kernel_inception_distance,
)


def _images(seed: int, n: int = 12, size: int = 16) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(n, 1, size, size, generator=g, dtype=torch.float64)
    prediction = (target + 0.1 * torch.randn(n, 1, size, size, generator=g, dtype=torch.float64)).clamp(0, 1)
    return prediction, target


def _features(seed: int, n: int = 40, dim: int = 6) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    real = torch.randn(n, dim, generator=g, dtype=torch.float64)
    return real, 0.8 * torch.randn(n, dim, generator=g, dtype=torch.float64) + 0.3


def _skimage_ssim(prediction: Tensor, target: Tensor) -> list[float]:
    """scikit-image's SSIM of each grayscale image pair, with the Gaussian window aebench follows."""
    options = {"data_range": 1.0, "gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}
    return [structural_similarity(a, b, **options) for a, b in zip(prediction[:, 0].numpy(), target[:, 0].numpy())]


def test_metrics_are_torchmetrics_metrics_with_declared_reductions():
    psnr = PeakSignalNoiseRatio(data_range=1.0)
    assert isinstance(psnr, torchmetrics.Metric) and psnr.higher_is_better and not psnr.is_differentiable
    assert psnr._reductions["total"] is torchmetrics.utilities.dim_zero_sum
    assert psnr._reductions["items"] is torchmetrics.utilities.dim_zero_cat
    fid = FrechetInceptionDistance()
    assert fid._reductions["real_features"] is torchmetrics.utilities.dim_zero_cat and not fid.higher_is_better


def test_forward_accumulates_and_returns_the_batch_value():
    """torchmetrics' semantics: calling the metric returns the batch's own value and adds the batch to the state."""
    (p1, t1), (p2, t2) = _images(0), _images(1, n=5)
    metric = PeakSignalNoiseRatio(data_range=1.0)
    first = metric(p1, t1)
    assert isinstance(first, Tensor) and float(first) == PeakSignalNoiseRatio(data_range=1.0).value_of(p1, t1)
    second = metric(p2, t2)
    assert float(second) == PeakSignalNoiseRatio(data_range=1.0).value_of(p2, t2)
    whole = PeakSignalNoiseRatio(data_range=1.0)
    whole.update(p1, t1)
    whole.update(p2, t2)
    assert metric.value() == whole.value() and len(metric.value().items) == 17  # both batches, item by item
    assert float(metric.compute()) == whole.value()
    metric.reset()
    assert metric.count == 0 and not metric.items


def test_value_keeps_the_items_of_a_mean_for_the_record_interval():
    prediction, target = _images(2)
    ssim = StructuralSimilarity(data_range=1.0)
    ssim.update(prediction, target)
    value = ssim.value()
    assert isinstance(value, ItemMean) and float(ssim.compute()) == value
    np.testing.assert_allclose(value.items, _skimage_ssim(prediction, target), rtol=0, atol=1e-14)
    assert item_interval(value)["items"] == 12


def test_metric_collection_shares_features_and_flattens_compound_results():
    """In a MetricCollection, FID, KID and PRDC on features share one state (torchmetrics' compute groups) and
    PRDC's four values appear under their own names; KID keeps torchmetrics' (mean, std) tuple."""
    real, fake = _features(3)
    collection = MetricCollection(
        {
            "fid": FrechetInceptionDistance(),
            "kid": KernelInceptionDistance(subsets=5, subset_size=20, seed=1),
            "prdc": PrecisionRecallDensityCoverage(),
        }
    )
    for half in (slice(0, 20), slice(20, 40)):
        collection.update(real[half], real=True)
        collection.update(fake[half], real=False)
    assert [sorted(group) for group in collection.compute_groups.values()] == [["fid", "kid", "prdc"]]
    result = collection.compute()
    assert sorted(result) == ["coverage", "density", "fid", "kid", "precision", "recall"]
    fid = FrechetInceptionDistance()
    fid.update(real, real=True)
    fid.update(fake, real=False)
    assert float(result["fid"]) == fid.value()
    assert tuple(float(x) for x in result["kid"]) == kernel_inception_distance(real, fake, 5, 20, seed=1)
    manifold = distribution.precision_recall_density_coverage(real, fake)
    assert {key: float(result[key]) for key in manifold} == manifold


def test_image_metrics_in_a_collection():
    prediction, target = _images(4)
    collection = MetricCollection({"psnr": PeakSignalNoiseRatio(1.0), "ssim": StructuralSimilarity(1.0)})
    collection.update(prediction, target)
    result = collection.compute()
    assert float(result["psnr"]) == PeakSignalNoiseRatio(1.0).value_of(prediction, target)
    assert float(result["ssim"]) == StructuralSimilarity(1.0).value_of(prediction, target)


# --- against torchmetrics itself ------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_psnr_and_mse_equal_torchmetrics(seed):
    prediction, target = _images(seed)
    per_image = torchmetrics.image.PeakSignalNoiseRatio(data_range=1.0, reduction="none", dim=(1, 2, 3))
    per_image.set_dtype(torch.float64).update(prediction, target)
    expected = per_image.compute()  # (N,) PSNR of each image
    ours = PeakSignalNoiseRatio(data_range=1.0).value_of(prediction, target)
    # torchmetrics turns ln into log10 with a float32 constant 10 / ln(10): 5e-8 relative, whatever the dtype.
    np.testing.assert_allclose(ours.items, expected.numpy(), rtol=1e-7)
    assert ours == pytest.approx(float(expected.mean()), rel=1e-7)
    mse = torchmetrics.MeanSquaredError().set_dtype(torch.float64)
    mse.update(prediction, target)
    assert MeanSquaredError().value_of(prediction, target) == pytest.approx(float(mse.compute()), rel=1e-14)


class _Identity(nn.Module):
    """The features are the input: torchmetrics' FID and KID then take features, as aebench's do without an
    extractor."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, x: Tensor) -> Tensor:
        return x


@pytest.mark.parametrize("seed", range(3))
def test_fid_equals_torchmetrics_fid_from_feature_statistics(seed):
    real, fake = _features(seed, n=60, dim=8)
    theirs = TorchmetricsFID(feature=_Identity(8))  # its sums of features and outer products, in float64
    ours = FrechetInceptionDistance()
    for metric in (theirs, ours):
        metric.update(real, real=True)
        metric.update(fake, real=False)
    assert ours.value() == pytest.approx(float(theirs.compute()), rel=1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_kid_on_the_whole_sets_equals_torchmetrics_kid(seed):
    """With the subset size equal to both sample counts both draw the whole sets: the same unbiased MMD²."""
    real, fake = _features(seed, n=50, dim=8)
    theirs = TorchmetricsKID(feature=_Identity(8), subsets=3, subset_size=50)
    ours = KernelInceptionDistance(subsets=3, subset_size=50)
    for metric in (theirs, ours):
        metric.update(real, real=True)
        metric.update(fake, real=False)
    (mean, std), (their_mean, their_std) = ours.value(), theirs.compute()
    assert mean == pytest.approx(float(their_mean), rel=1e-10) and std == 0.0
    assert float(their_std) == pytest.approx(0.0, abs=1e-12)


def test_kid_metric_computes_once_when_every_subset_is_the_whole_set(monkeypatch):
    real, fake = _features(5, n=30)
    expected = kernel_inception_distance(real, fake, subsets=1, subset_size=30)
    calls = []
    original = distribution._unbiased_mmd2
    monkeypatch.setattr(distribution, "_unbiased_mmd2", lambda *a: calls.append(1) or original(*a))
    kid = KernelInceptionDistance(subsets=100, subset_size=30)
    kid.update(real, real=True)
    kid.update(fake, real=False)
    assert kid.value() == (expected[0], 0.0) and len(calls) == 1


def test_ssim_differs_from_torchmetrics_ssim_and_equals_scikit_image():
    """Documented difference: torchmetrics' SSIM (the same Gaussian window σ 1.5, 11 × 11, K1 0.01, K2 0.03)
    averages the SSIM map over every pixel, with windows reaching into reflect padding near the border;
    scikit-image (and aebench) average only the pixels whose window lies inside the image. On these 16 × 16 images
    the two differ by 3.5e-3 (8e-4 at 24 × 24, 5e-4 at 64 × 64), where aebench equals scikit-image to 1e-15."""
    prediction, target = _images(6, n=8, size=16)
    ours = StructuralSimilarity(data_range=1.0).value_of(prediction, target)
    reference = np.mean(_skimage_ssim(prediction, target))
    theirs = torchmetrics.image.StructuralSimilarityIndexMeasure(data_range=1.0, gaussian_kernel=True, sigma=1.5)
    theirs.set_dtype(torch.float64).update(prediction, target)
    assert ours == pytest.approx(reference, abs=1e-15)
    assert float(theirs.compute()) - ours == pytest.approx(3.4775e-3, abs=1e-7)


# --- DDP ------------------------------------------------------------------------------------------------------------


def _ddp_metrics() -> dict[str, torchmetrics.Metric]:
    return {
        "psnr": PeakSignalNoiseRatio(data_range=1.0),
        "ssim": StructuralSimilarity(data_range=1.0),
        "mse": MeanSquaredError(),
        "sharpness": Sharpness(),
        "fid": FrechetInceptionDistance(),
        "kid": KernelInceptionDistance(subsets=4, subset_size=30, seed=2),
        "prdc": PrecisionRecallDensityCoverage(),
        "kl": BinnedKLDivergence(bin_edges([(-3.0, 3.0)] * 6, 10)),
    }


def _feed(metrics: dict[str, torchmetrics.Metric], rows: slice) -> None:
    prediction, target = _images(7, n=10)
    real, fake = _features(8)
    for name, metric in metrics.items():
        if name in ("fid", "kid", "prdc", "kl"):
            metric.update(real[rows], real=True)
            metric.update(fake[rows], real=False)
        elif name == "sharpness":
            metric.update(prediction[rows.start // 4 : rows.stop // 4])
        else:
            metric.update(prediction[rows.start // 4 : rows.stop // 4], target[rows.start // 4 : rows.stop // 4])


def _values(metrics: dict[str, torchmetrics.Metric]) -> dict:
    values = {name: metric.value() for name, metric in metrics.items()}
    items = {name: value.items.tolist() for name, value in values.items() if isinstance(value, ItemMean)}
    return {"values": values, "items": items, "computed": {n: m.compute() for n, m in metrics.items()}}


def _ddp_worker(rank: int, world: int, store: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        metrics = _ddp_metrics()
        _feed(metrics, slice(20 * rank, 20 * rank + 20))  # each rank half the images and features
        result = _values(metrics)
        if rank == 0:
            torch.save(result, out)
    finally:
        dist.destroy_process_group()


def test_metrics_accumulated_over_two_processes_equal_one_process(tmp_path):
    """Two CPU processes (gloo), each with half the data: every metric's value after torchmetrics' sync equals the
    value of one process that saw all of it, items (for the intervals) included, in rank order."""
    single = _ddp_metrics()
    _feed(single, slice(0, 20))
    _feed(single, slice(20, 40))
    expected = _values(single)
    out = tmp_path / "rank0.pt"
    # Spawned, not forked: a child forked from a test process whose torch had already run OpenMP threads hung in its
    # first tensor operation (seen in the suite), as forked children of a threaded process may.
    mp.start_processes(
        _ddp_worker, args=(2, str(tmp_path / "store"), str(out)), nprocs=2, join=True, start_method="spawn"
    )
    result = torch.load(out, weights_only=False)
    assert result["items"] == expected["items"] and sorted(result["items"]) == ["mse", "psnr", "sharpness", "ssim"]
    for name, value in expected["values"].items():
        assert result["values"][name] == pytest.approx(value, rel=1e-14, abs=1e-15), name
    for name in ("fid", "kid", "prdc", "kl"):  # the features are gathered whole: bit for bit
        assert result["values"][name] == expected["values"][name], name


# --- Lightning ------------------------------------------------------------------------------------------------------


def test_a_lightning_module_logs_an_aebench_metric_unchanged(tmp_path):
    """The torchmetrics idiom in a LightningModule: call the metric per batch, log the metric object; Lightning
    computes it over the epoch (its `compute` returns a tensor, as `self.log` requires)."""
    lightning = pytest.importorskip("lightning")
    prediction, target = _images(9, n=8)

    class Validated(lightning.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.psnr = PeakSignalNoiseRatio(data_range=1.0)
            self.ssim = StructuralSimilarity(data_range=1.0)

        def validation_step(self, batch: list[Tensor], index: int) -> None:
            self.psnr(*batch)
            self.ssim.update(*batch)
            self.log_dict({"psnr": self.psnr, "ssim": self.ssim}, batch_size=len(batch[0]))

    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(prediction, target), batch_size=3)
    trainer = lightning.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    (logged,) = trainer.validate(Validated(), loader, verbose=False)
    assert logged["psnr"] == PeakSignalNoiseRatio(1.0).value_of(prediction, target)
    assert logged["ssim"] == StructuralSimilarity(1.0).value_of(prediction, target)
