"""The degradation ladder: the verdict on synthetic numbers, the pseudo-model, the command line, and, for one
corruption per task at smoke size, that every metric declared to see it does."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from aebench import ladder as laddering
from aebench.cli import main
from aebench.errors import AebenchError
from aebench.ladder import BLIND, NON_MONOTONE, SEES, WRONG_WAY, CorruptedData, Draw, Ladder, Paired, verdict
from aebench.model import DataSpec
from aebench.task import Budget, Evaluation, TaskData
from aebench.trained_features import TrainedExtractorConfig
from toy import ToyTask


# --- the verdict on synthetic numbers ----------------------------------------------------------------------------
def _ladder(means, spread, seeds=3, seed=0):
    """strengths × seeds: each mean plus noise of standard deviation `spread`."""
    noise = np.random.default_rng(seed).standard_normal((len(means), seeds))
    return np.asarray(means, dtype=float)[:, None] + spread * noise


def test_verdict_monotone_flat_reversed_noisy():
    rising = _ladder([1.0, 1.5, 2.0, 3.0, 5.0], 0.01)
    assert verdict(rising, higher_is_better=False) == SEES
    assert verdict(rising, higher_is_better=True) == WRONG_WAY  # an accuracy that rises under corruption
    assert verdict(_ladder([1.0] * 5, 0.1), higher_is_better=False) == BLIND
    assert verdict(_ladder([5.0, 3.0, 2.0, 1.5, 1.0], 0.01), higher_is_better=False) == WRONG_WAY
    # moves of a fraction of the seed spread are not seen, however steady
    assert verdict(_ladder([1.0, 1.02, 1.04, 1.06, 1.08], 0.1, seeds=5, seed=2), higher_is_better=False) == BLIND
    # up beyond the spread, then back down beyond it: not a metric one can rank by
    assert verdict(_ladder([1.0, 2.0, 3.0, 2.0, 1.0], 0.01), higher_is_better=False) == NON_MONOTONE
    # worse, then better than the floor
    assert verdict(_ladder([1.0, 1.5, 1.0, 0.5, 0.2], 0.01), higher_is_better=False) == NON_MONOTONE


def test_verdict_of_deterministic_metrics():
    """Zero spread: round-off is not a move, a real change is; a plateau after a move still sees it."""
    assert verdict([[0.5, 0.5], [0.5 + 1e-12] * 2, [0.5] * 2, [0.5] * 2], higher_is_better=True) == BLIND
    assert verdict([[0.0, 0.0], [4e-32] * 2, [6e-32] * 2, [5e-32] * 2], higher_is_better=False) == BLIND
    assert verdict([[0.0, 0.0], [0.0, 0.0], [0.1, 0.1], [0.1, 0.1]], higher_is_better=False) == SEES
    assert verdict([[100.0] * 2, [100.0] * 2, [90.0] * 2, [40.0] * 2], higher_is_better=True) == SEES
    assert verdict([[1.0, float("nan")], [2.0, 2.0], [3.0, 3.0]], higher_is_better=False) == "not measured"


# --- the pseudo-model --------------------------------------------------------------------------------------------
def _data() -> TaskData:
    x = torch.arange(40, dtype=torch.float32).view(20, 2)
    y = torch.arange(20) % 2
    return TaskData({"x": x, "y": y}, {"x": x[:4] + 100, "z": x[:4] - 100}, DataSpec(shape=(2,), kind="vector"), "t")


def test_pseudo_model_draws_without_replacement_and_keeps_only_the_kept_rows():
    data = _data()
    collapse = laddering.drop_classes(dropped=(1,))
    cls_sources = {"sample": Draw("x")}
    cls = CorruptedData.for_sources(cls_sources)
    assert cls.capabilities == {"sample"}
    full = cls(data, cls_sources, None, 0.0, seed=0).sample(20)
    assert sorted(full[:, 0].tolist()) == sorted(data.train["x"][:, 0].tolist())  # each training row once
    again = cls(data, cls_sources, None, 0.0, seed=0).sample(20)
    assert torch.equal(full, again)  # a seed gives the same draws
    half = cls(data, cls_sources, collapse, 0.5, seed=0).sample(15)
    labels = data.train["y"][(half[:, 0] / 2).long()]
    assert (labels == 1).sum() == 5 and (labels == 0).sum() == 10  # half of class 1 is gone: 5 of its 10 left
    none = cls(data, cls_sources, collapse, 1.0, seed=0).sample(10)
    assert (data.train["y"][(none[:, 0] / 2).long()] == 0).all()


def test_pseudo_model_answers_the_true_target_and_refuses_unknown_inputs():
    data = _data()
    sources = {"translate": Paired(data.test["x"], data.test["z"])}
    model = CorruptedData.for_sources(sources)(data, sources, laddering.pixel_noise(), 0.0, seed=0)
    assert torch.equal(model.translate(data.test["x"][[2, 0]]), data.test["z"][[2, 0]])
    with pytest.raises(AebenchError, match="no real target"):
        model.translate(torch.zeros(1, 2))
    with pytest.raises(AebenchError, match="capabilities"):
        CorruptedData.for_sources({"encode": Draw("x")})


def test_image_corruptions():
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    blurred = laddering.gaussian_blur(images, 1.0)
    assert blurred.shape == images.shape and blurred.var() < images.var()
    assert torch.allclose(laddering.gaussian_blur(torch.ones(1, 1, 8, 8), 2.0), torch.ones(1, 1, 8, 8))
    moved = laddering.shift().apply(images, 2, None, None)
    assert torch.equal(moved[..., 2:, 2:], images[..., :-2, :-2])
    flat = laddering.contrast().apply(images, 0.5, None, None)
    assert torch.allclose(flat.mean(dim=(1, 2, 3)), images.mean(dim=(1, 2, 3)), atol=1e-6)
    assert torch.allclose(flat.std(dim=(1, 2, 3)), 0.5 * images.std(dim=(1, 2, 3)), atol=1e-6)


# --- the command line on a toy task with a ladder ----------------------------------------------------------------
class LadderToy(ToyTask):
    """The toy task, its samples shifted by s: the mean error sees it, the (perfect) reconstruction does not."""

    name = "ladder-toy"
    ladder = Ladder(
        corruptions=(laddering.Corruption("offset", "every value + s", (0.5, 1.0, 2.0), lambda x, s, g, c: x + s),),
        outputs=lambda task, data, budget: {"sample": Draw("x")},
        expectations=(laddering.Expectation("mean_error", "offset", SEES),),
        floor="training rows",
    )


def test_cli_writes_the_ladder(tmp_path, capsys):
    out = tmp_path / "out"
    args = ["ladder", f"{__file__}:LadderToy", "--seeds", "2", "--out", str(out), "--cache-dir", str(tmp_path)]
    assert main(args) == 0
    table = capsys.readouterr().out
    assert "| mean error ↓ | **sees it** (expected) |" in table and "| MSE ↓ | not measured |" in table
    folder = out / "ladder-toy"
    assert {p.name for p in folder.iterdir()} == {"ladder.md", "ladder.csv", "ladder.json", "ladder-offset.png"}
    record = json.loads((folder / "ladder.json").read_text())
    assert record["task"] == {"name": "ladder-toy", "version": "1"} and record["environment"]["git_commit"]
    assert record["corruptions"][0]["strengths"] == [0.0, 0.5, 1.0, 2.0]
    rows = (folder / "ladder.csv").read_text().splitlines()
    assert len(rows) == 1 + 4 * 2 * 2  # strengths × seeds × metrics
    assert "what each metric sees" in (folder / "ladder.md").read_text().lower()
    again = laddering.from_record(LadderToy(tmp_path), record)  # the tables again, without scoring again
    assert laddering.render_md(again) == (folder / "ladder.md").read_text()


@pytest.mark.parametrize(
    "args, message",
    [
        (["no-such-task"], "no-such-task"),
        ([f"{__file__}:LadderToy", "--corruptions", "blur"], "no corruption 'blur'"),
        ([f"{__file__}:LadderToy", "--seeds", "1"], "at least 2"),
        ([f"{__file__}:LadderToy", "--seeds", "two"], "--seeds"),
        ([f"{__file__}:LadderToy", "--budget", "paper"], "no budget 'paper'"),
        ([f"{Path(__file__).parent / 'toy.py'}:ToyTask"], "declares no corruptions"),
    ],
)
def test_cli_bad_input(tmp_path, capsys, args, message):
    assert main(["ladder", *args, "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "ladder-toy" / "ladder.md").exists()


# --- one corruption per task at smoke size ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_tasks(smoke_cache) -> dict[str, tuple]:
    return _tasks(smoke_cache / "ladder")


def _tasks(cache: Path) -> dict[str, tuple]:
    """name → (task with small data and tiny feature extractors, the corruption checked, evaluation size)."""
    from aebench.tasks.cdp_twin import CdpTwin
    from aebench.tasks.cdp_twin.channel import ChannelConfig
    from aebench.tasks.galaxy_generation import GalaxyGeneration
    from aebench.tasks.galaxy_generation.render import RenderConfig
    from aebench.tasks.hep_turbosim import HepTurboSim
    from aebench.tasks.hep_turbosim.generate import GeneratorConfig
    from aebench.tasks.hubble2webb import Hubble2Webb
    from aebench.tasks.hubble2webb.sky import SceneConfig, SkyConfig
    from aebench.tasks.mnist_sharpness import MnistSharpness
    from aebench.tasks.radio_denoising import RadioDenoising
    from aebench.tasks.radio_denoising.data import EmbeddedConfig

    def tiny(objective="classifier", **kw):
        return TrainedExtractorConfig(objective=objective, channels=(8, 16), feature_dim=32, **kw)

    sky = SkyConfig(train_field=128, test_field=96, crop=32, n_train_crops=64, scene=SceneConfig(galaxy_density=8000.0))
    return {
        "mnist-sharpness": (MnistSharpness(cache, extractor_config=tiny(epochs=2)), "blur", 200),
        "galaxy-generation": (
            GalaxyGeneration(cache, render_config=RenderConfig(size=32, train_per_class=40, test_per_class=20),
                             extractor_config=tiny(epochs=30, batch_size=16, lr=5e-3),
                             ae_config=tiny("autoencoder", epochs=30, batch_size=16)),
            "drop-classes", 120,
        ),
        "hep-turbosim": (
            HepTurboSim(cache, GeneratorConfig(n_train=600, n_val=50, n_test=350, chunk=400, seed=7), progress=False),
            "shuffle", 350,
        ),
        "hubble2webb": (Hubble2Webb(cache, sky=sky, extractor_config=tiny("autoencoder", epochs=1)), "shift", 64),
        "cdp-twin": (
            CdpTwin(cache, ChannelConfig(n_train=160, n_test=80, image_size=32, symbol_size=4),
                    extractor_config=tiny("autoencoder", epochs=2, batch_size=32)),
            "noise", 80,
        ),
        "radio-denoising": (RadioDenoising(cache, EmbeddedConfig(n_train_per_kind=100, n_test_per_kind=40)),
                            "amplitude", 120),
    }  # fmt: skip


TASKS = ("mnist-sharpness", "galaxy-generation", "hep-turbosim", "hubble2webb", "cdp-twin", "radio-denoising")


@pytest.mark.parametrize("name", TASKS)
def test_every_metric_declared_to_see_a_corruption_sees_it(name, small_tasks):
    task, corruption, n = small_tasks[name]
    assert len(task.corruptions()) >= 3 and task.ladder_expectations
    budget = Budget(steps=1, batch_size=1, eval_samples=n)
    data = task.load(None, budget)
    (chosen,) = laddering.select(task, [corruption])
    chosen = dataclasses.replace(chosen, strengths=(chosen.strengths[0], *chosen.strengths[-2:]))  # 3 of them
    found = laddering.run_ladder(task, data, budget, "test", [0, 1], [chosen]).verdicts()
    # KPD is JetNet's median over batches of 5,000 events: at 350 (or 1,000) events its spread over seeds hides a
    # full shuffle (measured); the committed ladder, at 5,000 events, checks it
    metrics = {m.name for m in task.metrics if not m.name.startswith("kpd")}
    declared = [e for e in task.ladder_expectations if e.corruption == corruption and e.verdict == SEES]
    assert declared and all(e.metric in metrics or e.metric.startswith(("fpd", "kpd", "c2st")) for e in declared)
    missed = {e.metric: found[e.metric, corruption] for e in declared if e.metric in metrics and
              found[e.metric, corruption] in (BLIND, WRONG_WAY)}  # fmt: skip
    assert not missed, f"{name}: declared to see {corruption}, but {missed}"


def test_a_blind_metric_fails_the_check(small_tasks):
    """The check above can fail: a corruption that changes nothing leaves every metric blind."""
    task, _, n = small_tasks["radio-denoising"]
    budget = Budget(steps=1, batch_size=1, eval_samples=n)
    nothing = laddering.Corruption("nothing", "no change", (0.1, 0.2, 0.3), lambda x, s, g, c: x)
    result = laddering.run_ladder(task, task.load(None, budget), budget, "test", [0, 1], [nothing])
    assert {v for v in result.verdicts().values()} <= {BLIND, "not measured"}


def test_reference_row_is_the_floor(small_tasks):
    """Strength 0 of a sample task is its real-vs-real reference row (training galaxies as samples)."""
    task, _, n = small_tasks["galaxy-generation"]
    budget = Budget(steps=1, batch_size=1, eval_samples=n)
    data = task.load(None, budget)
    (reference,) = task.references(data, budget, torch.Generator().manual_seed(0)).values()
    result = laddering.run_ladder(task, data, budget, "test", [0, 1], laddering.select(task, ["blur"]))
    floor = result.values["blur"][0][0]
    # the same training galaxies, all of them (n = the training split), so the same numbers
    assert floor["fid"] == pytest.approx(reference.metrics["fid"], rel=1e-5)
    assert floor["class_coverage"] == pytest.approx(reference.metrics["class_coverage"])
    assert isinstance(reference, Evaluation)


@pytest.mark.parametrize("name", TASKS)
def test_readme_table_is_the_committed_ladder(name, tmp_path):
    """Each task README's "What each metric sees" section is generated from results/TASK/ladder.json."""
    from aebench.runner import get_task

    root = Path(__file__).resolve().parent.parent
    task = get_task(name, tmp_path)  # nothing is loaded or trained
    record = json.loads((root / "results" / name / "ladder.json").read_text(encoding="utf-8"))
    result = laddering.from_record(task, record)
    readme = root / "tasks" / name.replace("-", "_") / "README.md"
    section = laddering.readme_section(task, result, root / "results" / name / "ladder.md", readme)
    assert f"{laddering.README_BEGIN}\n{section}{laddering.README_END}" in readme.read_text(encoding="utf-8"), (
        f"{readme} is out of date: aebench ladder {name} --seeds 3 --budget smoke --out results --update-readme"
    )
