"""Sample pictures: an array of pixel values written as an 8-bit RGB PNG with Pillow.

Pillow imports in tens of milliseconds where `matplotlib.image` takes about a second, paid by every run that draws
its sample picture. Grey pictures are written as three equal channels, as `matplotlib.image.imsave(..., cmap="gray")`
wrote them, so readers see the same (H, W, channels) array as before.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def save_png(path: str | Path, picture: np.ndarray, vmin: float = 0.0, vmax: float = 1.0) -> None:
    """Write `picture`, (H, W) grey or (H, W, 3) RGB with values in [vmin, vmax] (clipped; NaN is black), to
    `path` as a PNG, making its folder."""
    from PIL import Image

    picture = np.asarray(picture, dtype=np.float64)
    if picture.ndim == 2:
        picture = np.repeat(picture[..., None], 3, axis=2)
    if picture.ndim != 3 or picture.shape[2] != 3:
        raise ValueError(f"a picture is (H, W) or (H, W, 3), not {picture.shape}")
    levels = np.nan_to_num((picture - vmin) / (vmax - vmin), nan=0.0).clip(0.0, 1.0)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.round(levels * 255).astype(np.uint8), mode="RGB").save(path)
