"""Train the feature extractors of tasks on their embedded default data and copy them beside the tasks, to commit.

    python scripts/ship_extractors.py mnist-sharpness cdp-twin hubble2webb galaxy-generation
    python scripts/ship_extractors.py mnist-sharpness --budget paper-cpu --data-dir data/mnist

Every extractor a task's reference rows use is trained from scratch in a temporary cache (one thread, seeded) and
copied to the `extractors/` folder beside its class (aebench.trained_features). It replaces that extractor's older
files for the same test split (another config or code version); weights for other data stay, so the embedded
default and a committed real-data table (the second line: the real MNIST of mnist-sharpness's `paper-cpu` rows)
each keep their own. Runs on any machine then read those weights instead of training their own, so that data is
measured in one feature space everywhere. Run it when an extractor's config, its code version or a task's default
data changes, rerun the affected tables, and commit both (when the default data change, `git rm` the old file).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import torch

from aebench.hashing import content_hash
from aebench.registry import extractors, tasks
from aebench.runner import run_references
from aebench.trained_features import TrainedImageExtractor


def ship(task_names: list[str], budget: str, data_dir: str | None = None) -> list[Path]:
    shipped = []
    with tempfile.TemporaryDirectory() as scratch:
        cache, out = Path(scratch) / "cache", Path(scratch) / "out"
        for name in task_names:
            tasks.get(name)  # an unknown name is an error before anything trains
        trained = [cls for _, cls in extractors.items() if issubclass(cls, TrainedImageExtractor)]
        own = {cls: cls.__dict__["shipped_dir"] for cls in trained if "shipped_dir" in cls.__dict__}
        for cls in trained:  # from scratch: the weights committed now are not read
            cls.shipped_dir = Path(scratch) / "nothing-shipped"
        try:
            for name in task_names:
                run_references(name, budget, str(out), data_dir, str(cache))
        finally:
            for cls in trained:
                if cls in own:
                    cls.shipped_dir = own[cls]
                else:
                    del cls.shipped_dir
        for path in sorted((cache / "extractors").glob("*.pt")) if (cache / "extractors").is_dir() else ():
            extractor_name = path.name.rsplit("-", 1)[0]
            cls = extractors.get(extractor_name)
            if not issubclass(cls, TrainedImageExtractor):
                continue
            if install(path, cls.shipped_folder(), extractor_name):
                shipped.append(cls.shipped_folder() / path.name)
    return shipped


def install(path: Path, folder: Path, extractor_name: str) -> bool:
    """Copy a trained extractor file into `folder`, replacing the extractor's files for the same test split; False
    when the folder already holds these weights (torch.save writes other bytes each time: no churn in git)."""
    folder.mkdir(parents=True, exist_ok=True)
    if _same(folder / path.name, path):
        return False
    test_split = _payload(path)["test_key"]
    for old in folder.glob(f"{extractor_name}-*.pt"):
        try:
            stale = _payload(old).get("test_key") == test_split
        except Exception:  # a damaged file is of no use to any run
            stale = True
        if stale:
            old.unlink()
    shutil.copy(path, folder / path.name)
    return True


def _payload(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def _same(a: Path, b: Path) -> bool:
    """Whether two extractor files hold the same weights and the same measurements (False if `a` is missing or
    damaged)."""
    try:
        first = _payload(a)
    except Exception:
        return False
    second = _payload(b)
    weights = content_hash(first.pop("state_dict")) == content_hash(second.pop("state_dict"))
    return weights and first == second


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tasks", nargs="+", help="task names")
    parser.add_argument("--budget", default="quick", help="the budget whose reference rows train the extractors")
    parser.add_argument("--data-dir", help="the tasks' real data instead of their embedded default")
    args = parser.parse_args()
    torch.set_num_threads(1)
    shipped = ship(args.tasks, args.budget, args.data_dir)
    for path in shipped:
        print(f"{path} ({path.stat().st_size / 1e6:.1f} MB)")
    if not shipped:
        print("the committed weights are those a training from scratch gives here: nothing changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
