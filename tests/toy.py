"""A tiny task and tiny models for fast runner and CLI tests, loaded the way outside code is: `toy.py:Name`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from aebench.config import PositiveFloat, PositiveInt
from aebench.errors import AebenchError
from aebench.hashing import content_hash
from aebench.model import DataSpec, Model, ModelConfig
from aebench.registry import models
from aebench.runner import BatchSampler
from aebench.task import Budget, Evaluation, MetricSpec, Task, TaskData

TOY = Path(__file__).resolve()


def spec(name: str) -> str:
    return f"{TOY}:{name}"


def train_briefly(name: str, data: TaskData, steps: int, batch_size: int, **config) -> tuple[Model, list[float]]:
    """Baseline `name` with `config` trained on `data` for `steps` seeded batches, in eval mode, and its losses."""
    torch.manual_seed(0)
    cls = models.get(name)
    model = cls(cls.Config(**config), data.spec)
    optimizers = model.configure_optimizers()
    sampler = BatchSampler(data.train, batch_size, seed=0)
    losses = [model.training_step(sampler(step), optimizers)["loss"] for step in range(steps)]
    return model.eval(), losses


class ToyTask(Task):
    name = "toy"
    version = "1"
    description = "4-d Gaussian data; mean error of samples, reconstruction MSE"
    requires = frozenset({"sample"})
    metrics = (
        MetricSpec("mean_error", higher_is_better=False, label="mean error"),
        MetricSpec("mse", higher_is_better=False, label="MSE"),
    )
    budgets = {
        "smoke": Budget(steps=40, batch_size=32, eval_samples=256, checkpoint_every=10),
        "long": Budget(steps=3000, batch_size=32, eval_samples=256, checkpoint_every=100),  # long enough to kill
        "small-lr": Budget(steps=40, batch_size=32, eval_samples=256, model_overrides={"lr": 1e-4, "unknown": 1}),
        "per-model": Budget(
            steps=40, batch_size=32, eval_samples=256, model_overrides={"noise": 0.0, "toy-ae": {"latent_dim": 1}}
        ),
        "misspelt": Budget(steps=40, batch_size=32, eval_samples=256, model_overrides={"toy-ae": {"latnet_dim": 1}}),
        "select": Budget(steps=40, batch_size=32, eval_samples=256, checkpoint_every=10, select_every=10),
    }
    model_overrides = {"latent_dim": 2}

    def load(self, data_dir: Path | None, budget: Budget | None = None) -> TaskData:
        """Gaussian data; with `data_dir` ("published files"), another draw, shifted by the number in its
        `shift.txt` (0 if absent)."""
        generator = torch.Generator().manual_seed(1234 if data_dir is None else 4321)
        x = torch.randn(640, 4, generator=generator) * torch.tensor([1.0, 2.0, 0.5, 1.0]) + 3.0
        spec = DataSpec(shape=(4,), kind="vector")
        if data_dir is None:
            return TaskData({"x": x[:512]}, {"x": x[512:576]}, spec, "toy gaussian", valid={"x": x[576:]})
        shift = float((data_dir / "shift.txt").read_text()) if (data_dir / "shift.txt").exists() else 0.0
        x = x + shift
        return TaskData(
            {"x": x[:512]}, {"x": x[512:576]}, spec, f"toy-files: {data_dir}", valid={"x": x[576:]},
            info={"sha256": {"train": content_hash({"x": x[:512]})[:12], "test": content_hash({"x": x[512:576]})[:12]}},
        )  # fmt: skip

    def validation_score(self, model, data, budget, generator) -> float:
        """Reconstruction MSE on the validation split, plus the score a model asks for (tests pick the step)."""
        x = data.valid["x"].to(model.device)
        return float(((model.reconstruct(x) - x) ** 2).mean()) + getattr(model, "score_offset", lambda: 0.0)()

    def evaluate(self, model, data, budget, generator) -> Evaluation:
        samples = model.sample(budget.eval_samples, generator).cpu()
        metrics = {"mean_error": float((samples.mean(0) - data.test["x"].mean(0)).abs().mean())}
        unavailable = {}
        if "reconstruct" in model.capabilities:
            x = data.test["x"].to(model.device)
            metrics["mse"] = float(((model.reconstruct(x) - x) ** 2).mean())
        else:
            metrics["mse"], unavailable["mse"] = None, "model cannot reconstruct"
        per_feature = (samples.mean(0) - data.test["x"].mean(0)).abs()
        return Evaluation(metrics, unavailable, details={"per_feature_error": per_feature, "undefined": math.nan})

    def save_samples(self, model, data, path, generator) -> None:
        if getattr(model, "broken_picture", False):
            raise RuntimeError("no display for the figure")

    def references(self, data, budget, generator):
        error = float((data.train["x"].mean(0) - data.test["x"].mean(0)).abs().mean())
        return {"train vs test": Evaluation({"mean_error": error, "mse": None}, {"mse": "not a model"})}


class PictureToyTask(ToyTask):
    """The toy task with a sample picture: the first 8 samples as an 8x4 grey PNG."""

    name = "toy-pictures"

    def save_samples(self, model, data, path, generator) -> None:
        from aebench.images import save_png

        save_png(path, model.sample(8, generator).cpu().numpy(), vmin=0.0, vmax=6.0)


@dataclass
class ToyConfig(ModelConfig):
    latent_dim: int = 3
    lr: float = 1e-2
    noise: float = 0.1


class ToyAE(Model):
    """A linear auto-encoder whose training step draws noise, so resuming must restore the RNG too."""

    name = "toy-ae"
    description = "linear AE with input noise; samples from N(0, I) in latent space"
    Config = ToyConfig
    capabilities = frozenset({"encode", "decode", "reconstruct", "sample"})

    def __init__(self, config: ToyConfig, data: DataSpec):
        super().__init__(config, data)
        self.encoder = torch.nn.Linear(data.shape[0], config.latent_dim)
        self.decoder = torch.nn.Linear(config.latent_dim, data.shape[0])

    def configure_optimizers(self):
        return {"model": torch.optim.Adam(self.parameters(), lr=self.config.lr)}

    def configure_schedulers(self, optimizers, total_steps):
        return {"model": torch.optim.lr_scheduler.LinearLR(optimizers["model"], 1.0, 0.1, total_steps)}

    def loss(self, x):
        noisy = x + self.config.noise * torch.randn_like(x)
        return ((self.reconstruct(noisy) - x) ** 2).mean()

    def training_step(self, batch, optimizers):
        optimizers["model"].zero_grad()
        loss = self.loss(batch["x"])
        loss.backward()
        optimizers["model"].step()
        return {"loss": loss.item()}

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return self.decoder(z)

    def sample(self, n, generator=None):
        return self.decode(self.randn(n, self.config.latent_dim, generator=generator))


@dataclass
class StrictConfig(ModelConfig):
    latent_dim: PositiveInt = 2
    lr: PositiveFloat = 1e-2
    noise: float = 0.1
    dropout: float = 0.0  # nn.Dropout refuses values above 1 when the model is built


class StrictAE(ToyAE):
    """Declares the ranges of its sizes and rates, and has a layer that refuses some values."""

    name = "strict-ae"
    Config = StrictConfig

    def __init__(self, config: StrictConfig, data: DataSpec):
        super().__init__(config, data)
        self.dropout = torch.nn.Dropout(config.dropout)


class LoggedAE(ToyAE):
    """ToyAE logging through `Model.logged`, as the baselines do (floats, or PendingLosses when deferred)."""

    name = "logged-ae"

    def training_step(self, batch, optimizers):
        optimizers["model"].zero_grad()
        loss = self.loss(batch["x"])
        loss.backward()
        optimizers["model"].step()
        return self.logged({"loss": loss, "half": loss / 2})


class NaNAE(ToyAE):
    """Diverges on purpose at step 5."""

    name = "nan-ae"

    def training_step(self, batch, optimizers):
        self.steps = getattr(self, "steps", 0) + 1
        losses = super().training_step(batch, optimizers)
        return {"loss": float("nan")} if self.steps >= 5 else losses


class BestAtStep20AE(ToyAE):
    """Scores best on validation after 20 steps and draws noise while scored, as a model with noisy inputs would."""

    name = "best-at-20"

    def __init__(self, config: ToyConfig, data: DataSpec):
        super().__init__(config, data)
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))  # in the checkpoint, so resume counts on

    def training_step(self, batch, optimizers):
        self.steps += 1
        return super().training_step(batch, optimizers)

    def score_offset(self):
        torch.randn(3)  # the runner must keep such draws out of the training's random stream
        return -100.0 if int(self.steps) == 20 else 0.0


class NoPictureAE(ToyAE):
    """Trains and evaluates, but its sample picture cannot be drawn."""

    name = "no-picture"
    broken_picture = True


class CrashAE(ToyAE):
    """Raises inside training, as a buggy model would."""

    name = "crash-ae"

    def training_step(self, batch, optimizers):
        raise RuntimeError("shape mismatch in layer 3")


class EncoderOnly(Model):
    """Cannot sample, so the toy task does not apply to it."""

    name = "encoder-only"
    Config = ToyConfig
    capabilities = frozenset({"encode"})

    def __init__(self, config: ToyConfig, data: DataSpec):
        super().__init__(config, data)
        self.encoder = torch.nn.Linear(data.shape[0], config.latent_dim)

    def encode(self, x):
        return self.encoder(x)


class ImagesOnly(ToyAE):
    """Refuses the toy task's vectors, as an image model refuses event data."""

    name = "images-only"

    def __init__(self, config: ToyConfig, data: DataSpec):
        if data.kind != "image":
            raise AebenchError(f"images-only needs images, got {data.kind} data")
        super().__init__(config, data)


class DiesAE(ToyAE):
    """Its process dies in the middle of training (an out-of-memory kill, a segfault): no record, no exception."""

    name = "dies-ae"

    def training_step(self, batch, optimizers):
        import os

        os._exit(9)


class SlowAE(ToyAE):
    """ToyAE at 2 ms a step (6 s for the long budget): long enough to be signalled in the middle of training."""

    name = "slow-ae"

    def training_step(self, batch, optimizers):
        import time

        time.sleep(0.002)
        return super().training_step(batch, optimizers)


class PatientAE(SlowAE):
    """ToyAE at 5 ms a step (15 s for the long budget): still training when `scancel`'s SIGKILL lands (SLURM sends
    SIGTERM, which submitit leaves to SLURM, and SIGKILL KillWait = 5 s later)."""

    name = "patient-ae"

    def training_step(self, batch, optimizers):
        import time

        time.sleep(0.003)
        return super().training_step(batch, optimizers)
