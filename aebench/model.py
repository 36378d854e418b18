"""The narrow interface every model implements; the runner and the tasks know nothing else about a model.

A model file holds a config dataclass and a `Model` subclass that declares:
- `capabilities`: what it can do after training (`encode`, `decode`, `sample`, `reconstruct`, `translate`, ...);
  a task asks for the capabilities it needs, and a model lacking one is reported as "not applicable";
- `configure_optimizers()`: its optimizers by name (and, optionally, `configure_schedulers`);
- `training_step(batch, optimizers)`: one step, including its own backward passes (`self.backward(loss)`, which
  runs them outside autocast) and optimizer steps (GANs and TURBO step several optimizers per batch); it returns
  the losses it wants logged, as floats, or as `self.logged(terms)` (floats, or on a GPU one stacked tensor that
  the runner reads back every few steps, so that logging costs no device sync per step).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

CAPABILITIES: dict[str, str] = {
    "encode": "encode(x) -> z: the latent code of data",
    "decode": "decode(z) -> x: data from a latent code",
    "reconstruct": "reconstruct(x) -> x̂: data through the auto-encoder and back",
    "sample": "sample(n, generator) -> x: new data from the model's prior",
    "translate": "translate(x) -> z: the paired domain's counterpart of x (direct path)",
    "translate_back": "translate_back(z) -> x: the reverse path of a two-way model",
}

Batch = dict[str, Tensor]


@dataclass(frozen=True)
class PendingLosses:
    """A step's losses still on the device: `values[i]` is loss `keys[i]` (float32). The runner reads many steps'
    values back in one transfer; `.tolist()` of the same float32 values gives the same floats as reading each step."""

    keys: tuple[str, ...]
    values: Tensor  # (K,) float32, detached

    def to_floats(self) -> dict[str, float]:
        return dict(zip(self.keys, self.values.tolist()))


@dataclass(frozen=True)
class DataSpec:
    """What a model may know about a task's data when it builds its networks."""

    shape: tuple[int, ...]  # one x, e.g. (1, 28, 28) or (24,)
    kind: str = "image"  # image | vector | signal
    value_range: tuple[float, float] = (0.0, 1.0)
    n_classes: int | None = None
    pair_shape: tuple[int, ...] | None = None  # one z, for paired (translation) tasks


@dataclass
class ModelConfig:
    """Base of every model config; subclasses add typed fields with defaults."""


class Model(nn.Module):
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    Config: ClassVar[type] = ModelConfig
    capabilities: ClassVar[frozenset[str]] = frozenset()
    # Whether bf16 autocast on CUDA is safe for this model (flows with log-determinants may say no).
    supports_amp: ClassVar[bool] = True
    # Set by the runner on a GPU: `logged` then returns PendingLosses instead of floats (no device sync per step).
    defer_logs: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.capabilities = frozenset(cls.capabilities)
        unknown = cls.capabilities - CAPABILITIES.keys()
        if unknown:
            raise TypeError(f"{cls.__name__}: unknown capabilities {sorted(unknown)} (known: {sorted(CAPABILITIES)})")
        missing = [c for c in cls.capabilities if getattr(cls, c) is getattr(Model, c) and c != "reconstruct"]
        if "reconstruct" in cls.capabilities and Model.reconstruct is cls.reconstruct:
            if not {"encode", "decode"} <= cls.capabilities:
                missing.append("reconstruct")
        if missing:
            raise TypeError(f"{cls.__name__} declares {sorted(missing)} but does not implement them")
        if not dataclasses.is_dataclass(cls.Config):
            raise TypeError(f"{cls.__name__}.Config must be a dataclass")

    def __init__(self, config: ModelConfig, data: DataSpec):
        super().__init__()
        self.config = config
        self.data = data

    # --- training -------------------------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def configure_schedulers(
        self, optimizers: dict[str, torch.optim.Optimizer], total_steps: int
    ) -> dict[str, torch.optim.lr_scheduler.LRScheduler]:
        """Schedulers stepped once per training step; none by default."""
        return {}

    def training_step(self, batch: Batch, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        raise NotImplementedError

    def backward(self, loss: Tensor) -> None:
        """`loss.backward()` outside autocast. The runner runs `training_step` under bf16 autocast on CUDA (when
        `supports_amp`); PyTorch's AMP guidance is that autocast covers the forward pass and the loss, and that the
        backward pass runs outside it, in the dtypes the forward ops chose. Call this instead of `loss.backward()`."""
        with torch.autocast(loss.device.type, enabled=False):
            loss.backward()

    def logged(self, terms: dict[str, Tensor]) -> dict[str, float] | PendingLosses:
        """The losses of a step for the runner's log: floats (one device sync for all of them), or with `defer_logs`
        the same values still on the device, read back later with other steps' (bitwise the same floats)."""
        values = torch.stack([value.detach().float() for value in terms.values()])
        return PendingLosses(tuple(terms), values) if self.defer_logs else dict(zip(terms, values.tolist()))

    def after_training(self, batches: Any) -> None:
        """Called once after the last step with an iterable of training batches (e.g. to fit a latent prior)."""

    # --- capabilities (declare in `capabilities`, then override) --------------------------------------------
    def encode(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def decode(self, z: Tensor) -> Tensor:
        raise NotImplementedError

    def reconstruct(self, x: Tensor) -> Tensor:
        return self.decode(self.encode(x))

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        raise NotImplementedError

    def translate(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def translate_back(self, z: Tensor) -> Tensor:
        raise NotImplementedError

    # --- helpers --------------------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def randn(self, *shape: int, generator: torch.Generator | None = None) -> Tensor:
        """Standard normal noise on the model's device, reproducible from a CPU generator."""
        return torch.randn(*shape, generator=generator).to(self.device)

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
