"""The reference of the fixed-cost benchmark (tests/test_benchmarks.py): the smoke job of `aebench run --task
mnist-sharpness --models ae --budget smoke`, written as the plain script a researcher would write.

It does the work a run cannot avoid — import torch, read the digits back from the warm cache, train the same
model for the same steps and batch size on one thread, fit its prior, evaluate it with the task's metrics — and
nothing of what aebench adds: the command line, the registry, run identities, records, reference rows, the sample
picture and the leaderboard. Usage: python tests/bare_run.py CACHE_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from aebench.baselines.ae import AE
from aebench.tasks.mnist_sharpness import MnistSharpness


def main(cache_dir: Path) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    task = MnistSharpness(cache_dir)
    budget = task.budgets["smoke"]
    data = task.load(None, budget)
    config = AE.Config(**task.model_overrides)
    model = AE(config, data.spec)
    optimizers = model.configure_optimizers()
    train = data.train
    n = len(next(iter(train.values())))
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(budget.steps):
        index = torch.randint(n, (budget.batch_size,), generator=generator)
        model.training_step({key: value[index] for key, value in train.items()}, optimizers)
    model.eval()
    with torch.no_grad():
        model.after_training(
            {key: value[start : start + budget.batch_size] for key, value in train.items()}
            for start in range(0, n, budget.batch_size)
        )
        evaluation = task.evaluate(model, data, budget, torch.Generator().manual_seed(0))
    print(f"fid {evaluation.metrics['fid']:.4g}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
