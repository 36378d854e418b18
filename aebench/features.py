"""Named feature extractors for FID-like metrics.

Every value computed in a feature space records the extractor's `describe()`, so numbers from different
extractors are never compared by mistake. Task-specific extractors (e.g. a small classifier trained once on the
task's real training split) live in the task's folder and register themselves in `aebench.registry.extractors`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor


class FeatureExtractor:
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""

    def features(self, images: Tensor) -> Tensor:
        """(N, ...) data → (N, D) features."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """Name, content hash, feature size and the extractor's own measured quality."""
        return {"name": self.name}
