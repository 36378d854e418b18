"""pytest-benchmark: Turbo-Sim's training loop inside the runner against a bare loop over the same model and data.

Both run `STEPS` steps of the `paper` budget's batch (100 events) on the same 2,000 random 24-d events with the same
seed, from a freshly built model. The bare loop draws each batch by indexing a permutation, calls `training_step`
and nothing else; the runner's loop (`aebench.runner._train`) adds what `aebench run` does per step (its batch
sampler, the loss checks, schedulers, checkpoint and selection bookkeeping). With `--benchmark-disable` (the default
suite) each runs once as a plain test that also checks they trained the same model; `--benchmark-enable` times
them (compare the two means: the runner's overhead is their ratio − 1).
"""

from __future__ import annotations

import pytest
import torch

from aebench import runner
from aebench.baselines.turbo_sim import TurboSim, TurboSimConfig
from aebench.model import DataSpec
from aebench.registry import tasks
from aebench.task import Budget, Task, TaskData

tasks.get("hep-turbosim")  # the registry imports every task once (seconds): not part of a training loop

STEPS, BATCH, EVENTS, SEED = 60, 100, 2000, 0
SPEC = DataSpec(shape=(24,), kind="vector", value_range=(-5.0, 5.0), pair_shape=(24,))
BUDGET = Budget(steps=STEPS, batch_size=BATCH, eval_samples=EVENTS, checkpoint_every=10**9)


def events() -> TaskData:
    g = torch.Generator().manual_seed(1)
    train = {"x": torch.randn(EVENTS, 24, generator=g), "z": torch.randn(EVENTS, 24, generator=g)}
    return TaskData(train=train, test=train, spec=SPEC, source="random")


def runner_loop(tmp_path) -> TurboSim:
    job = runner.Job(task="hep-turbosim", model="turbo-sim", seed=SEED, out_dir=str(tmp_path), cache_dir=str(tmp_path))
    model, _ = runner._train(job, Task(tmp_path), BUDGET, TurboSim, TurboSimConfig(), events(), torch.device("cpu"),
                             None, False, None)  # fmt: skip
    return model


def bare_loop() -> TurboSim:
    runner.seed_everything(SEED)
    data = events()
    model = TurboSim(TurboSimConfig(), SPEC)
    optimizers = model.configure_optimizers()
    model.train()
    per_epoch = EVENTS // BATCH
    for step in range(STEPS):
        epoch, index = divmod(step, per_epoch)
        if index == 0:  # the runner's batches: a fresh permutation each epoch, seeded by (seed, epoch)
            permutation = torch.randperm(EVENTS, generator=torch.Generator().manual_seed(SEED * 1_000_003 + epoch))
        rows = permutation[index * BATCH : (index + 1) * BATCH]
        model.training_step({key: value[rows] for key, value in data.train.items()}, optimizers)
    return model


@pytest.mark.benchmark(group="turbo-sim training loop")
def test_runner_loop(benchmark, tmp_path):
    model = benchmark(runner_loop, tmp_path)
    reference = bare_loop()
    for key, value in reference.state_dict().items():  # the same model: the two loops time the same work
        torch.testing.assert_close(model.state_dict()[key], value, rtol=0, atol=0)


@pytest.mark.benchmark(group="turbo-sim training loop")
def test_bare_loop(benchmark):
    model = benchmark(bare_loop)
    assert all(torch.isfinite(p).all() for p in model.parameters())
