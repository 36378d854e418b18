"""Every task, as a new user runs it: `aebench run` in a fresh process on the embedded default data, smoke budget.
hubble2webb is run by the README's headline command, in a fresh clone of the repository.

The data are generated (GalSim, Pythia 8, the channel and pulse simulators) into one cache shared by these tests,
as a user's second run would find them; each task's own tests check its generator and protocol in detail.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from aebench import results
from aebench.hashing import content_hash

REPO = Path(__file__).resolve().parent.parent
CASES = {  # task → the baselines run on it (the cheapest that exercise its protocol); hubble2webb: the headline's
    "cdp-twin": "pix2pix,cyclegan",
    "hep-turbosim": "otus,regression",
    "galaxy-generation": "acgan,vae",
    "radio-denoising": "dae",
    "latent-mnist": "ae",
}


@pytest.mark.slow
@pytest.mark.parametrize("task", list(CASES))
def test_smoke_run_from_the_command_line(task, smoke_cache, tmp_path):
    out = tmp_path / "results"
    command = [sys.executable, "-m", "aebench", "run", "--task", task, "--models", CASES[task], "--budget", "smoke"]
    done = subprocess.run(
        [*command, "--out", str(out), "--cache-dir", str(smoke_cache), "--no-progress"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    check_smoke_results(out / task, CASES[task].split(","), done.stdout)


@pytest.mark.slow
def test_the_readme_headline_command_in_a_fresh_clone_runs_hubble2webb_and_leaves_git_status_clean(
    tmp_path, smoke_cache
):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    headline = next(line.split("#")[0].strip() for line in (REPO / "README.md").read_text().splitlines()
                    if line.strip().startswith("aebench run --task hubble2webb"))  # fmt: skip
    assert "--out" not in headline and "--budget" not in headline  # the defaults: runs/, smoke
    command = [sys.executable, "-m", "aebench", *headline.split()[1:], "--cache-dir", str(smoke_cache), "--no-progress"]
    # The installed aebench runs with the clone as its working folder: what a user types at the clone's root.
    done = subprocess.run(command, cwd=clone, capture_output=True, text=True, env={**os.environ, "PYTHONSAFEPATH": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    names = headline.split("--models")[1].split()[0].split(",")
    check_smoke_results(clone / "runs" / "hubble2webb", names, done.stdout)
    status = subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True, check=True)
    assert status.stdout == ""


def check_smoke_results(folder: Path, names: list[str], stdout: str) -> None:
    """Each model's smoke record is ok with values (or reasons), a reference row, a picture, the table printed."""
    records = results.load_records(folder)
    models = [r for r in records if r["kind"] == "model"]
    assert {r["model"]["name"] for r in models} == set(names)
    assert any(r["kind"] == "reference" for r in records)
    for record in models:
        assert record["status"] == "ok", (record["model"]["name"], record.get("reason"))
        values = [m["value"] for m in record["metrics"].values()]
        assert values and all(v is None or isinstance(v, float) for v in values)
        assert any(v is not None for v in values)
        for metric in record["metrics"].values():  # a missing value always says why
            assert metric["value"] is not None or metric["unavailable"]
        assert record["budget"]["name"] == "smoke" and record["data"]["source"]
        assert (folder / "samples" / f"{record['model']['name']}-smoke-seed0.png").read_bytes()[:4] == b"\x89PNG"
    assert stdout == (folder / "leaderboard.md").read_text()
    # Feature spaces: the weights committed beside the task (trained on this default data), on any machine.
    measured = {
        metric["extractor"]["name"]: metric["extractor"]["weights"]
        for record in records
        for metric in record["metrics"].values()
        if (metric.get("extractor") or {}).get("weights")
    }
    shipped = shipped_weights()
    assert all(weights in shipped.get(name, ()) for name, weights in measured.items()), (measured, shipped)
    assert bool(measured) == (REPO / "tasks" / records[0]["task"]["name"].replace("-", "_") / "extractors").is_dir()


def test_every_feature_space_of_a_committed_table_is_committed_with_its_task():
    """A committed table can be extended (a new seed, a user's model) from any CPU only if the weights of the
    extractor it was measured in are committed: retrained elsewhere, the extractor lands in another space."""
    shipped = shipped_weights()
    measured = {
        (metric["extractor"]["name"], metric["extractor"]["weights"], path.parent.parent.name)
        for path in sorted(REPO.glob("results/*/records/*.json"))
        for metric in results.load_record(path)["metrics"].values()
        if (metric.get("extractor") or {}).get("weights")
    }
    assert measured, "the committed tables name no extractor weights"
    assert {entry for entry in measured if entry[1] not in shipped.get(entry[0], ())} == set()


@functools.cache
def shipped_weights() -> dict[str, set[str]]:
    """extractor name → digests (12 hex digits) of the weights committed in tasks/*/extractors/ (one per data)."""
    digests: dict[str, set[str]] = {}
    for path in sorted(REPO.glob("tasks/*/extractors/*.pt")):
        state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
        digests.setdefault(path.name.rsplit("-", 1)[0], set()).add(content_hash(state)[:12])
    return digests


@pytest.mark.slow
@pytest.mark.parametrize("task", ["mnist-sharpness", "hubble2webb", *CASES])  # after the smoke runs: data cached
def test_list_shows_exactly_the_models_the_runner_would_run(task, smoke_cache, capsys):
    """`aebench list` decides from the task's declared data spec; the runner from the loaded data. They agree."""
    from aebench.cli import main
    from aebench.registry import models, tasks
    from aebench.runner import Job, refusal, resolve_model

    instance = tasks.get(task)(smoke_cache)
    declared, loaded = (
        instance.data_spec(instance.budgets["smoke"]),
        instance.load(None, instance.budgets["smoke"]).spec,
    )
    assert (declared.shape, declared.kind, declared.pair_shape, declared.n_classes) == (
        loaded.shape, loaded.kind, loaded.pair_shape, loaded.n_classes)  # fmt: skip
    assert main(["list", "tasks", "--cache-dir", str(smoke_cache)]) == 0
    lines = capsys.readouterr().out.splitlines()
    listed = lines[[i for i, line in enumerate(lines) if line.split()[:1] == [task]][0] + 1].split("models: ")[1]
    for name, cls in models.items():
        if not instance.requires <= cls.capabilities:
            continue
        model_cls, config = resolve_model(Job(task=task, model=name), instance)
        takes = refusal(model_cls, config, loaded) is None
        assert takes == (name in listed.split(", ")), (name, refusal(model_cls, config, loaded))
