"""The training curve of a GAN baseline on galaxy-generation: FID in galaxy-cnn features, the classifier's class
rates, the samples' brightest pixel and colour, every N steps (what tasks/galaxy_generation/README.md tabulates
for WGAN-GP). It trains as the runner does at the `quick` budget (narrow networks, batch 32, seed 0) without
writing a record.

    python scripts/gan_training_curve.py wgan-gp --steps 2000 --every 250
    python scripts/gan_training_curve.py wgan-gp --steps 1250 --model-args critic_norm=none
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from aebench.config import build_config
from aebench.metrics.distribution import frechet_distance, gaussian_stats
from aebench.registry import models
from aebench.runner import DEFAULT_CACHE, BatchSampler, get_task, seed_everything


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--every", type=int, default=250)
    parser.add_argument("--samples", type=int, default=600, help="samples and test galaxies per evaluation")
    parser.add_argument("--model-args", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--cache-dir", default=str(DEFAULT_CACHE))
    args = parser.parse_args()
    torch.set_num_threads(1)

    task = get_task("galaxy-generation", args.cache_dir)
    budget = task.budgets["quick"]
    data = task.load(None, budget)
    cls = models.get(args.model)
    overrides = dict(arg.split("=", 1) for arg in args.model_args)
    config = build_config(cls.Config, {"hidden_channels": 16, **overrides}, where=args.model)
    seed_everything(0)
    model = cls(config, data.spec)
    optimizers = model.configure_optimizers()
    sampler = BatchSampler(data.train, budget.batch_size, 0)
    extractor = task.extractor(data)
    test = data.test["x"][: args.samples]
    real = gaussian_stats(extractor.features(test).double())
    print("real", *describe(test), np.bincount(extractor.predict(test).numpy(), minlength=3) / len(test), flush=True)
    started = time.time()
    for step in range(args.steps):
        model.train()
        losses = model.training_step(sampler(step), optimizers)
        if (step + 1) % args.every:
            continue
        model.eval()
        with torch.no_grad():
            x = model.sample(args.samples, torch.Generator().manual_seed(1)).clamp(*data.spec.value_range)
            rates = np.bincount(extractor.predict(x).numpy(), minlength=3) / len(x)
            fid = frechet_distance(*gaussian_stats(extractor.features(x).double()), *real)
        losses = {key: round(value, 3) for key, value in losses.items()}
        print(f"step {step + 1} ({time.time() - started:.0f} s)", losses, "brightest, red-blue",
              np.round(describe(x), 3), "class rates", rates, f"FID {fid:.1f}", flush=True)  # fmt: skip


def describe(x: torch.Tensor) -> tuple[float, float]:
    """Mean over images of the brightest value (any channel), and mean red − blue over the pixels in each image's
    brightest 5 % (of the channel mean)."""
    grey = x.mean(1)
    bright = grey > grey.flatten(1).quantile(0.95, dim=1)[:, None, None]
    return x.flatten(1).amax(1).mean().item(), (x[:, 0] - x[:, 2])[bright].mean().item()


if __name__ == "__main__":
    main()
