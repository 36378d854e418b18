"""aebench's metrics are `torchmetrics.Metric`s: declared state with its reduction across processes, `update`
accumulates, `compute` finishes, `reset` starts over, `forward` (calling the metric) accumulates the batch and
returns the batch's own value. They work in a `torchmetrics.MetricCollection`, in a Lightning module and under DDP
(states are gathered and reduced before `compute`), with aebench's own numerics inside.

`compute` returns tensors as torchmetrics does (float64; a tuple (mean, std) for KID, a dict for metrics with
several named values, flattened by a `MetricCollection`). `value()` is the same result as a record stores it:
Python floats, and for a metric that is a mean over test items (images, traces) an `ItemMean`, a float that also
keeps the per-item values so that the record carries a seeded bootstrap interval over its items (`item_interval`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
import torchmetrics
from lightning_utilities import apply_to_collection
from torch import Tensor
from torchmetrics.utilities.data import dim_zero_cat

from aebench import stats
from aebench.errors import AebenchError


class ItemMean(float):
    """A metric value that is the mean of per-item values (held in `.items`, float64); arithmetic on it gives a
    plain float, so a derived number never carries an interval that is not its own."""

    items: np.ndarray

    def __new__(cls, value: float, items: Tensor | np.ndarray = ()) -> ItemMean:  # () when unpickled or copied
        self = super().__new__(cls, value)
        values = items.detach().cpu().double().numpy() if isinstance(items, Tensor) else np.asarray(items)
        self.items = values.astype(np.float64).ravel()
        return self

    def interval(self) -> dict[str, Any] | None:
        """The record's `interval` entry: a seeded percentile bootstrap of the mean over the items."""
        bounds = stats.bootstrap_interval(self.items)
        if bounds is None:
            return None
        return {
            "low": bounds[0],
            "high": bounds[1],
            "confidence": stats.CONFIDENCE,
            "method": "percentile bootstrap over test items",
            "items": len(self.items),
            "resamples": stats.BOOTSTRAP_RESAMPLES,
            "seed": stats.BOOTSTRAP_SEED,
        }


def item_interval(value: Any) -> dict[str, Any] | None:
    """The bootstrap interval of a metric value that is a mean over items; None for any other value."""
    return value.interval() if isinstance(value, ItemMean) else None


def as_numbers(result: Any) -> Any:
    """A metric result with every tensor made a Python number (0-d: a float, exact for float64) or a list."""
    return apply_to_collection(result, Tensor, lambda t: float(t) if t.numel() == 1 and t.dim() == 0 else t.tolist())


class Metric(torchmetrics.Metric):
    """The base of aebench's metrics; subclasses declare `name`, `higher_is_better` and `description`."""

    name: ClassVar[str] = ""
    higher_is_better: ClassVar[bool] = False
    is_differentiable: ClassVar[bool] = False
    # forward's batch value needs the batch's state alone: torchmetrics updates it once and merges it into the
    # accumulated state by the declared reductions (no second update of the accumulated state).
    full_state_update: ClassVar[bool] = False
    description: ClassVar[str] = ""

    def value(self) -> Any:
        """`compute()` as a record stores it: Python floats (see `as_numbers`); `ItemMean`s for means over items."""
        return as_numbers(self.compute())

    def value_of(self, *args: Any, **kwargs: Any) -> Any:
        """`value()` of these inputs alone: the metric is reset, updated once, and keeps that state."""
        self.reset()
        self.update(*args, **kwargs)
        return self.value()

    def gathered(self, state: str) -> Tensor:
        """A list state ("cat" reduction) as one tensor, whether gathered across processes (a tensor) or not."""
        return dim_zero_cat(getattr(self, state))


class MeanOverImages(Metric):
    """A per-image metric averaged over every image of every update; subclasses define `per_image`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("total", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("items", [], dist_reduce_fx="cat")  # the per-image values, for the bootstrap interval

    def per_image(self, *inputs: Any) -> Tensor:
        raise NotImplementedError

    def update(self, *inputs: Any) -> None:
        values = torch.as_tensor(self.per_image(*inputs), dtype=torch.float64).to(self.total.device)
        self.total += values.sum()
        self.count += len(values)
        self.items.append(values)

    def compute(self) -> Tensor:
        if self.count == 0:
            raise AebenchError(f"{self.name}: no images were given")
        return self.total / self.count

    def value(self) -> ItemMean:
        with self.sync_context(should_sync=self._to_sync, should_unsync=self._should_unsync):
            if self.count == 0:
                raise AebenchError(f"{self.name}: no images were given")
            return ItemMean(float(self.total / self.count), self.gathered("items"))


def check_finite(x: Tensor, what: str) -> Tensor:
    if not torch.isfinite(x).all():
        raise AebenchError(f"{what}: input contains NaN or infinite values")
    return x
