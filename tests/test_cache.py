"""The on-disk array cache behind every task's generated or parsed data: a stored file is used only when it was made
for the same key and holds what it should; anything else is built again, and a cache that cannot be written never
fails a run."""

from __future__ import annotations

import pickle
import warnings
import zipfile

import numpy as np
import pytest

from aebench import cache


def builder(calls: list, value: float = 1.0):
    def build():
        calls.append(1)
        return {"a": np.full((3, 2), value), "b": np.arange(4)}, {"made": "here"}

    return build


def test_built_once_then_read_back(tmp_path):
    calls, path = [], cache.cache_path(tmp_path, "thing", cache.key_of({"n": 3}))
    first = cache.cached(path, cache.key_of({"n": 3}), builder(calls), names=("a", "b"))
    again = cache.cached(path, cache.key_of({"n": 3}), builder(calls), names=("a", "b"))
    assert len(calls) == 1 and not first.from_cache and again.from_cache
    assert again.meta == {"made": "here"} and set(again.arrays) == {"a", "b"}
    assert all(np.array_equal(first.arrays[k], again.arrays[k]) for k in first.arrays)
    assert path.parent == tmp_path / "data" and [p.name for p in path.parent.iterdir()] == [path.name]  # no temp


def test_keys_follow_their_inputs(tmp_path):
    assert cache.key_of({"n": 3, "m": 1}) == cache.key_of({"m": 1, "n": 3}) != cache.key_of({"n": 4, "m": 1})
    source = tmp_path / "digits.csv"
    source.write_bytes(b"1,2,3\n")
    key = cache.file_key(source, "parser", 1)
    assert key != cache.file_key(source, "parser", 2)
    source.write_bytes(b"1,2,4\n")
    assert key != cache.file_key(source, "parser", 1)


def corrupt(path):
    path.write_bytes(path.read_bytes()[:100])  # truncated


def foreign(path):
    with open(path, "wb") as file:  # no key: an older format or someone else's
        np.savez(file, a=np.zeros((3, 2)), b=np.arange(4))


def other_key(path):
    cache.write(path, "another key", {"a": np.zeros((3, 2)), "b": np.arange(4)})


def missing_array(path):
    cache.write(path, "k", {"a": np.zeros((3, 2))})


def pickled(path):  # an object array loads only with allow_pickle: never
    with zipfile.ZipFile(path, "w") as archive, archive.open("a.npy", "w") as member:
        np.lib.format.write_array(member, np.array([{"x": 1}], dtype=object), allow_pickle=True)


def not_a_file(path):
    path.write_bytes(pickle.dumps({"a": 1}))


@pytest.mark.parametrize("damage", [corrupt, foreign, other_key, missing_array, pickled, not_a_file])
def test_an_unusable_file_is_rebuilt_with_a_warning(tmp_path, damage):
    calls, path = [], tmp_path / "thing.npz"
    cache.cached(path, "k", builder(calls, 1.0), names=("a", "b"))
    damage(path)
    with pytest.warns(UserWarning, match="thing: unusable cache file .* building it again"):
        rebuilt = cache.cached(path, "k", builder(calls, 2.0), names=("a", "b"), what="thing")
    assert len(calls) == 2 and not rebuilt.from_cache and (rebuilt.arrays["a"] == 2.0).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cache.cached(path, "k", builder(calls), names=("a", "b")).from_cache  # replaced: fine again
    assert len(calls) == 2


def test_a_failed_check_rebuilds(tmp_path):
    calls, path = [], tmp_path / "thing.npz"
    shapes = {"a": ((3, 2), np.float64), "b": ((4,), np.int64)}
    cache.cached(path, "k", builder(calls), check=lambda a, _: cache.shape_mismatch(a, shapes))
    assert cache.cached(path, "k", builder(calls), check=lambda a, _: cache.shape_mismatch(a, shapes)).from_cache
    wanted = {"a": ((3, 3), np.float64)}
    with pytest.warns(UserWarning, match=r"a is float64\[3, 2\], expected float64\[3, 3\]"):
        cache.cached(path, "k", builder(calls), check=lambda a, _: cache.shape_mismatch(a, wanted))
    assert len(calls) == 2


def test_an_unwritable_cache_is_a_warning_not_a_failure(tmp_path):
    blocker = tmp_path / "data"
    blocker.write_text("a file where the cache folder should be")  # mkdir fails even for root
    with pytest.warns(UserWarning, match="cannot write the cache file"):
        made = cache.cached(blocker / "thing.npz", "k", builder([]))
    assert not made.from_cache and made.arrays["b"].tolist() == [0, 1, 2, 3]


def test_reserved_names_are_refused(tmp_path):
    with pytest.raises(ValueError, match="reserved"):
        cache.write(tmp_path / "x.npz", "k", {cache.KEY: np.zeros(1)})
