"""Every task, as a new user runs it: `aebench run` in a fresh process on the embedded default data, smoke budget.

The data are generated (GalSim, Pythia 8, the channel and pulse simulators) into one cache shared by these tests,
as a user's second run would find them; each task's own tests check its generator and protocol in detail.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from aebench import results

CASES = {  # task → the baselines run on it (the cheapest that exercise its protocol)
    "hubble2webb": "pix2pix",
    "cdp-twin": "pix2pix,cyclegan",
    "hep-turbosim": "otus,regression",
    "galaxy-generation": "acgan,vae",
    "radio-denoising": "dae",
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
    folder = out / task
    records = results.load_records(folder)
    models = [r for r in records if r["kind"] == "model"]
    assert {r["model"]["name"] for r in models} == set(CASES[task].split(","))
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
    table = (folder / "leaderboard.md").read_text()
    assert done.stdout == table


@pytest.mark.slow
@pytest.mark.parametrize("task", ["mnist-sharpness", *CASES])  # after the smoke runs: their data are in the cache
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
