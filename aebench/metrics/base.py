"""torchmetrics-style metrics: declared state, `update` accumulates, `compute` finishes, `reset` starts over."""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import torch
from torch import Tensor

from aebench.errors import AebenchError


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

    def per_image(self, *inputs: Any) -> Tensor:
        raise NotImplementedError

    def update(self, *inputs: Any) -> None:
        values = torch.as_tensor(self.per_image(*inputs), dtype=torch.float64).cpu()
        self.total += values.sum()
        self.count += len(values)

    def compute(self) -> float:
        if self.count == 0:
            raise AebenchError(f"{self.name}: no images were given")
        return float(self.total / self.count)


def check_finite(x: Tensor, what: str) -> Tensor:
    if not torch.isfinite(x).all():
        raise AebenchError(f"{what}: input contains NaN or infinite values")
    return x
