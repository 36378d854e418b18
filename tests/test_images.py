"""aebench.images.save_png against matplotlib's imsave (what the tasks used before), read back by matplotlib."""

from __future__ import annotations

import matplotlib.image
import numpy as np
import pytest

from aebench.images import save_png


@pytest.mark.parametrize(("vmin", "vmax"), [(0.0, 1.0), (-1.0, 1.0)])
def test_a_grey_picture_reads_back_as_matplotlib_wrote_it(tmp_path, vmin, vmax):
    rng = np.random.default_rng(0)
    picture = rng.uniform(vmin - 0.2, vmax + 0.2, size=(30, 50))  # values beyond the range are clipped
    save_png(tmp_path / "ours.png", picture, vmin, vmax)
    matplotlib.image.imsave(tmp_path / "theirs.png", picture, cmap="gray", vmin=vmin, vmax=vmax)
    ours, theirs = (matplotlib.image.imread(tmp_path / f"{name}.png") for name in ("ours", "theirs"))
    assert ours.shape[:2] == theirs.shape[:2] == (30, 50) and ours.shape[2] == 3
    # matplotlib's grey map looks x up in 256 levels (floor(256x)/255), within 1/255 of x; ours rounds, within 0.5/255
    assert np.abs(ours - theirs[..., :3]).max() <= 2 / 255 + 1e-6
    expected = np.clip((picture - vmin) / (vmax - vmin), 0, 1)
    assert np.abs(ours[..., 0] - expected).max() <= 0.5 / 255 + 1e-6


def test_an_rgb_picture_keeps_its_channels_and_a_bad_shape_is_refused(tmp_path):
    picture = np.zeros((4, 6, 3))
    picture[..., 1] = 1.0
    picture[0, 0] = np.nan
    save_png(tmp_path / "sub" / "rgb.png", picture)  # the folder is made
    image = matplotlib.image.imread(tmp_path / "sub" / "rgb.png")
    assert image[1:, 1:].tolist() == [[[0.0, 1.0, 0.0]] * 5] * 3 and image[0, 0].tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match=r"\(H, W\) or \(H, W, 3\)"):
        save_png(tmp_path / "bad.png", np.zeros((4, 6, 2)))
