"""pytest-benchmark: OTUS's gradient-side sort (`otus.argsort_rows`) at the `paper-otus` size, 1,000 projections of
20,000 events, against the same keys sorted in one piece (what it did before it sorted 16 rows at a time).

Both give one permutation (checked here; tests/test_hep_baselines.py checks it against numpy's stable argsort on
ties). `make benchmark` times them on one thread, alternating round by round, by the thread's CPU time (the machines
are shared), and requires the chunked sort to take at most TOLERANCE × the whole one's median; measured on the
2-core development machine: 0.65–0.95 s against 1.4–2.1 s.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import pytest

from aebench.baselines import otus

TOLERANCE = 0.8
ROUNDS = 5


@pytest.mark.benchmark(timer=time.thread_time)
def test_the_chunked_sort_is_faster_than_sorting_the_keys_in_one_piece(benchmark, monkeypatch):
    if benchmark.disabled:
        pytest.skip("seconds a round at OTUS's size; it runs with --benchmark-enable (make benchmark)")
    benchmark.group = "OTUS sort of 1,000 × 20,000 projections"
    projections = np.random.default_rng(0).standard_normal((1000, 20_000)).astype(np.float32)
    whole_seconds, whole = [], []

    def sort_whole() -> None:
        with monkeypatch.context() as patch:
            patch.setattr(otus, "SORT_ROWS", projections.shape[0])
            started = time.thread_time()
            whole.append(otus.argsort_rows(projections))
            whole_seconds.append(time.thread_time() - started)

    chunked = benchmark.pedantic(otus.argsort_rows, args=(projections,), setup=sort_whole, rounds=ROUNDS)
    assert np.array_equal(chunked, whole[0])
    ratio = benchmark.stats.stats.median / statistics.median(whole_seconds)
    benchmark.extra_info.update(whole_median_s=statistics.median(whole_seconds), ratio=ratio)
    assert ratio <= TOLERANCE, f"the chunked sort takes {ratio:.3f}× the whole one ({ROUNDS} rounds)"
