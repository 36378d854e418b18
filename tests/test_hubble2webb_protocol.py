"""hubble2webb's evaluation geometry at the `paper` budget (sliding-window stride 8, LPIPS on 256² tiles at stride
128, FID on 10,000 seeded random crops), checked on small arrays: coverage, counts, determinism."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from aebench.model import DataSpec, Model
from aebench.task import Budget, TaskData
from aebench.tasks import hubble2webb as h2w
from aebench.tasks.hubble2webb import Hubble2Webb

BUDGETS = Hubble2Webb.budgets


@dataclass
class NoConfig:
    pass


class Identity(Model):
    name = "identity"
    Config = NoConfig
    capabilities = frozenset({"translate"})

    def __init__(self, crop: int):
        super().__init__(
            NoConfig(), DataSpec(shape=(1, crop, crop), value_range=(-1.0, 1.0), pair_shape=(1, crop, crop))
        )
        self.anchor = nn.Parameter(torch.zeros(()))

    def translate(self, x):
        return x + self.anchor


def test_the_paper_budget_declares_the_papers_geometry_and_the_others_keep_theirs():
    paper = BUDGETS["paper"]
    assert h2w.window_stride(paper, 64) == h2w.window_stride(paper, 256) == 8
    assert h2w.lpips_tiling(paper, 64) == (256, 128) and h2w.fid_crop_count(paper) == 10_000
    for name in ("smoke", "quick"):  # plain budgets: their records' identities (asdict of the budget) are unchanged
        assert type(BUDGETS[name]) is Budget
    assert h2w.window_stride(BUDGETS["quick"], 64) == 16 and h2w.lpips_tiling(BUDGETS["quick"], 64) == (64, 32)
    assert h2w.fid_crop_count(BUDGETS["quick"]) == BUDGETS["quick"].eval_samples == 1000
    fields = {f.name for f in dataclasses.fields(Budget)}
    assert set(dataclasses.asdict(paper)) - fields == {"window_stride", "lpips_tile", "lpips_stride", "fid_crops"}


def coverage(size: int, crop: int, starts_y: list[int], starts_x: list[int]) -> np.ndarray:
    count = np.zeros((size, size), dtype=int)
    for y in starts_y:
        for x in starts_x:
            count[y : y + crop, x : x + crop] += 1
    return count


@pytest.mark.parametrize(("size", "crop"), [(256, 64), (250, 64), (300, 256)])
def test_stride_8_windows_cover_every_pixel_and_end_flush_with_the_edge(size, crop):
    starts = h2w.window_starts(size, crop, 8)
    assert starts[0] == 0 and starts[-1] == size - crop and all(0 < b - a <= 8 for a, b in zip(starts, starts[1:]))
    assert len(starts) == (size - crop) // 8 + 1 + ((size - crop) % 8 != 0)
    assert coverage(size, crop, starts, starts).min() >= 1
    if size == 256:  # away from the edges each pixel lies in (crop / 8)² windows
        assert coverage(size, crop, starts, starts)[96, 96] == (crop // 8) ** 2


def test_paper_stride_stitches_an_identity_translation_back_exactly():
    field = torch.rand(1, 48, 40, generator=torch.Generator().manual_seed(0)) * 2 - 1
    out = h2w.translate_field(Identity(16), field, 16, 8)
    assert torch.equal(out[0], field)


def test_evaluate_translates_with_the_budgets_stride(monkeypatch):
    steps = []
    monkeypatch.setattr(h2w, "translate_field", lambda model, field, crop, step: steps.append(step) or field[None])
    monkeypatch.setattr(Hubble2Webb, "score", lambda self, output, data, budget, device="cpu": output.shape)
    test = {"x": torch.zeros(2, 1, 64, 64), "z": torch.zeros(2, 1, 64, 64)}
    data = TaskData(test, test, DataSpec(shape=(1, 16, 16), pair_shape=(1, 16, 16)), "test fields")
    task = Hubble2Webb.__new__(Hubble2Webb)
    for budget, expected in ((BUDGETS["paper"], 8), (BUDGETS["quick"], 4)):
        steps.clear()
        assert task.evaluate(Identity(16), data, budget, torch.Generator()) == (2, 1, 64, 64)
        assert steps == [expected, expected]


def test_lpips_tiles_of_256_at_stride_128():
    fields = torch.arange(2 * 512 * 384, dtype=torch.float32).view(2, 1, 512, 384)
    per_field = h2w.tiles(fields, 256, 128)
    assert [t.shape for t in per_field] == [(6, 1, 256, 256)] * 2  # tops 0, 128, 256; lefts 0, 128
    places = [(y, x) for y in (0, 128, 256) for x in (0, 128)]
    for index, (y, x) in enumerate(places):
        assert torch.equal(per_field[1][index], fields[1, :, y : y + 256, x : x + 256])
    assert coverage(512, 256, [0, 128, 256], [0, 128])[:, :384].min() >= 1
    (single,) = h2w.tiles(fields[:1, :, :256, :256], 256, 128)
    assert torch.equal(single[0], fields[0, :, :256, :256])  # the embedded 256² test field: one tile


def test_fid_crops_are_seeded_uniform_random_places_that_cover_the_field():
    fields = torch.zeros(3, 1, 256, 200)
    places = h2w.random_places(fields, 64, 10_000, torch.Generator().manual_seed(h2w.CROP_SEED))
    again = h2w.random_places(fields, 64, 10_000, torch.Generator().manual_seed(h2w.CROP_SEED))
    other = h2w.random_places(fields, 64, 10_000, torch.Generator().manual_seed(h2w.CROP_SEED + 1))
    assert places.shape == (10_000, 3) and torch.equal(places, again) and not torch.equal(places, other)
    which, tops, lefts = places.T
    assert set(which.tolist()) == {0, 1, 2} and tops.min() >= 0 and tops.max() <= 192 and lefts.max() <= 136
    assert abs(tops.float().mean() - 96) < 3 and abs(lefts.float().mean() - 68) < 3  # uniform over the places
    count = np.zeros((3, 256, 200), dtype=int)
    for f, y, x in places.tolist():
        count[f, y : y + 64, x : x + 64] += 1
    # Pixels at least a crop from the edges lie in 64² of the 193 × 137 places of their field: about 516 crops each;
    # edge pixels lie in fewer (a corner in one place), as with any uniform choice of crop places.
    interior = count[:, 63:193, 63:137]
    expected = 10_000 / 3 * 64 * 64 / (193 * 137)
    assert 0.8 * expected < interior.min() and interior.max() < 1.2 * expected
    crops = h2w.crops_at(torch.arange(3 * 256 * 200.0).view(3, 1, 256, 200), 64, places[:5])
    f, y, x = places[4].tolist()
    assert crops.shape == (5, 1, 64, 64) and crops[4, 0, 0, 0] == (f * 256 + y) * 200 + x
