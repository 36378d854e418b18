"""torchmetrics-style metrics: declared state, `update` accumulates, `compute` finishes, `reset` starts over.

A metric that is a mean over test items (images, traces) returns an `ItemMean`: a float that also keeps the
per-item values, so that the record of a run can carry a seeded bootstrap interval over its items next to the
value (`item_interval`), without the task's code doing anything but pass the value on.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

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


class Metric:
    name: ClassVar[str] = ""
    higher_is_better: ClassVar[bool] = False
    description: ClassVar[str] = ""

    def __init__(self) -> None:
        self._defaults: dict[str, Any] = {}

    def add_state(self, name: str, default: Tensor | list) -> None:
        """A state that `reset` restores: a tensor (summed over updates) or a list (concatenated)."""
        self._defaults[name] = default
        setattr(self, name, copy.deepcopy(default))

    def reset(self) -> None:
        for name, default in self._defaults.items():
            setattr(self, name, copy.deepcopy(default))

    def update(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError

    def compute(self) -> float:
        raise NotImplementedError

    def __call__(self, *args: Any, **kwargs: Any) -> float:
        """The metric of one batch alone, leaving the accumulated state as it was."""
        saved = {name: getattr(self, name) for name in self._defaults}
        self.reset()
        try:
            self.update(*args, **kwargs)
            return self.compute()
        finally:
            for name, value in saved.items():
                setattr(self, name, value)


class MeanOverImages(Metric):
    """A per-image metric averaged over every image of every update; subclasses define `per_image`."""

    def __init__(self) -> None:
        super().__init__()
        self.add_state("total", torch.zeros((), dtype=torch.float64))
        self.add_state("count", torch.zeros((), dtype=torch.long))
        self.add_state("items", [])  # the per-image values, for the bootstrap interval

    def per_image(self, *inputs: Any) -> Tensor:
        raise NotImplementedError

    def update(self, *inputs: Any) -> None:
        values = torch.as_tensor(self.per_image(*inputs), dtype=torch.float64).cpu()
        self.total += values.sum()
        self.count += len(values)
        self.items.append(values)

    def compute(self) -> ItemMean:
        if self.count == 0:
            raise AebenchError(f"{self.name}: no images were given")
        return ItemMean(float(self.total / self.count), torch.cat(self.items))


def check_finite(x: Tensor, what: str) -> Tensor:
    if not torch.isfinite(x).all():
        raise AebenchError(f"{what}: input contains NaN or infinite values")
    return x
