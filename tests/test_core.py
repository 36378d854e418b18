"""Registries, typed configs, result records, leaderboards and comparisons."""

from __future__ import annotations

import copy
import dataclasses
import io
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import pandas as pd
import pytest
import torch

from aebench import compare, leaderboard, results
from aebench.checkpoints import save_checkpoint
from aebench.config import build_config, parse_assignments
from aebench.errors import AebenchError
from aebench.model import Model
from aebench.registry import Registry, load_spec, models
from aebench.task import Budget
from toy import TOY


# --- registries ------------------------------------------------------------------------------------------------
def test_registry_rejects_duplicates_and_explains_unknown_names():
    registry = Registry("widget")
    registry.register("a")(int)
    registry.add("a", int)  # the same object again is harmless (a module imported twice)
    with pytest.raises(AebenchError, match="duplicate widget name 'a'"):
        registry.add("a", float)
    with pytest.raises(AebenchError, match=r"unknown widget 'b' \(known: a\)"):
        registry.get("b")
    with pytest.raises(AebenchError, match="invalid widget name"):
        registry.add("x,y", str)


def test_builtin_baselines_are_discovered_and_declare_their_capabilities():
    for name in ("ae", "vae", "wae", "pie"):
        cls = models.get(name)
        assert issubclass(cls, Model) and cls.name == name and cls.description
        assert {"sample", "encode", "decode"} <= cls.capabilities


def test_a_lookup_imports_the_module_named_like_the_entry_and_discovers_the_rest_only_when_needed():
    """A run of one task and one model imports those two modules, not every task (GalSim, Pythia, ...); a name
    that no module is named after (a misspelling, an extractor not yet imported) falls back to the full discovery."""
    code = """
import sys
from aebench.registry import extractors, models, tasks
assert tasks.get("mnist-sharpness").name == "mnist-sharpness" and models.get("vae-mlp").name == "vae-mlp"
print(sorted(m for m in sys.modules if m.startswith(("aebench.tasks.", "aebench.baselines.")) and m.count(".") == 2))
print(tasks._discovered, models._discovered)
extractors.get("mnist-digit-cnn")
print("aebench.tasks.galaxy_generation" in sys.modules, extractors._discovered)
try:
    models.get("vae_mlp")
except Exception as error:
    print(type(error).__name__, str(error)[:23], models._discovered)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    imported, discovered, extractor, misspelt = done.stdout.splitlines()
    assert eval(imported) == ["aebench.baselines.vae_mlp", "aebench.tasks.mnist_sharpness"], imported
    assert discovered == "False False"
    assert extractor == "False False"  # registered by the task's module on import: found without a discovery
    assert misspelt == "AebenchError unknown model 'vae_mlp' True"


def test_specs_load_outside_code_and_fail_clearly():
    assert load_spec(f"{TOY}:ToyAE") is load_spec(f"{TOY}:ToyAE")
    assert load_spec("aebench.model:DataSpec").__name__ == "DataSpec"
    for bad, message in [
        ("nothing", "malformed"),
        ("/no/file.py:X", "does not exist"),
        (f"{TOY}:Missing", "has no attribute 'Missing'"),
        ("no_such_module:X", "cannot import"),
    ]:
        with pytest.raises(AebenchError, match=message):
            load_spec(bad)


def test_a_model_must_implement_what_it_declares():
    with pytest.raises(TypeError, match=r"declares \['sample'\]"):
        type("Bad", (Model,), {"capabilities": {"sample"}})
    with pytest.raises(TypeError, match="unknown capabilities"):
        type("Bad", (Model,), {"capabilities": {"fly"}})


# --- configs ---------------------------------------------------------------------------------------------------
@dataclass
class Config:
    size: int = 8
    rate: float = 0.1
    flag: bool = False
    widths: tuple[int, ...] = (1, 2)
    mode: Literal["mse", "l1"] = "mse"
    limit: float | None = None


def test_config_parses_strings_by_declared_type():
    config = build_config(
        Config, {"size": "16", "rate": "2e-4", "flag": "true", "widths": "3,4,5", "mode": "l1", "limit": "none"}
    )
    assert config == Config(16, 2e-4, True, (3, 4, 5), "l1", None)
    assert build_config(Config, {"limit": "1.5"}).limit == 1.5


@pytest.mark.parametrize(
    "values, message",
    [
        ({"colour": "red"}, "unknown key 'colour' for Config"),
        ({"size": "big"}, "size: expected int, got 'big'"),
        ({"size": 2.5}, "expected an integer"),
        ({"flag": "maybe"}, "expected true or false"),
        ({"mode": "l3"}, "'l3' is not one of mse, l1"),
    ],
)
def test_config_errors_name_the_key(values, message):
    with pytest.raises(AebenchError, match=message):
        build_config(Config, values, where="--model-args x")


def test_model_args_parse_per_model():
    assert parse_assignments(["vae.beta=2", "vae.lr=1e-3", "pie.eps2=0.1"], option="--model-args") == {
        "vae": {"beta": "2", "lr": "1e-3"},
        "pie": {"eps2": "0.1"},
    }
    for bad in ("beta=2", "vae.beta", ".beta=2", "vae.=2"):
        with pytest.raises(AebenchError, match="expected name.key=value"):
            parse_assignments([bad], option="--model-args")


# --- records ---------------------------------------------------------------------------------------------------
def record(model="vae", seed=0, value=1.0, status="ok", kind="model", fid_extractor="digits"):
    return {
        "schema_version": 1,
        "kind": kind,
        "status": status,
        "reason": None if status == "ok" else "boom",
        "task": {"name": "t", "version": "1"},
        "model": {"name": model, "config": {}},
        "seed": seed,
        "budget": {"name": "smoke", "steps": 10, "batch_size": 4, "eval_samples": 8},
        "device": "cpu",
        "n_parameters": 1234,
        "metrics": {}
        if status != "ok"
        else {
            "sharpness": {"value": value, "higher_is_better": True, "label": "sharpness"},
            "fid": {
                "value": 10 * value,
                "higher_is_better": False,
                "label": "FID",
                "extractor": {"name": fid_extractor, "hash": "abc"},
            },
        },
    }


def test_records_round_trip_and_writes_are_atomic(tmp_path):
    path = results.record_path(tmp_path, "t", "./my_model.py:My Model-smoke", 3)
    assert path.name == "my_model.py-My-Model-smoke-seed3.json"
    assert results.record_path(tmp_path, "t", "ae@lr=0.01,beta=2-quick", 0).name == "ae@lr=0.01,beta=2-quick-seed0.json"
    long = results.record_path(tmp_path, "t", "ae@" + "x" * 200, 0).name
    assert len(long) < 120 and long != results.record_path(tmp_path, "t", "ae@" + "x" * 199 + "y", 0).name
    assert (
        results.reference_path(tmp_path, "t", "W/O processing", "smoke").name == "reference-smoke-W-O-processing.json"
    )
    results.save_record(record(), path)
    assert results.load_record(path) == record()
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind


def test_concurrent_checkpoint_writers_leave_one_whole_file_and_a_failed_write_leaves_the_old_one(tmp_path):
    """Two processes resuming one run (started twice by mistake) save its checkpoint at the same moments: each save
    must leave a checkpoint that loads, never a crash or a mix of both. A write that fails keeps the last one."""
    path = tmp_path / "checkpoints" / "ae-quick-seed0.pt"
    states = [{"step": step, "model": {"w": torch.full((256, 256), float(step))}} for step in range(2)]

    def save_often(state):
        for _ in range(40):
            save_checkpoint(path, state)

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(save_often, states))  # re-raises a writer's error
    saved = torch.load(path, weights_only=True)
    assert torch.equal(saved["model"]["w"], states[saved["step"]]["model"]["w"])
    with pytest.raises(RuntimeError, match="disk full"):
        with results.atomic_file(path) as handle:
            handle.write(b"half a checkpoint")
            raise RuntimeError("disk full")
    assert torch.load(path, weights_only=True)["step"] == saved["step"]
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda r: r.pop("seed"), "'seed' is missing"),
        (lambda r: r.update(status="great"), "unknown status"),
        (lambda r: r.update(schema_version=99), "newer than this aebench reads"),
        (lambda r: r["metrics"]["fid"].pop("higher_is_better"), "lacks 'value' or 'higher_is_better'"),
    ],
)
def test_invalid_records_are_rejected(tmp_path, mutate, message):
    bad = copy.deepcopy(record())
    mutate(bad)
    path = tmp_path / "t" / "records" / "x.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(bad))
    with pytest.raises(AebenchError, match=message):
        results.load_records(tmp_path)


# --- leaderboards ----------------------------------------------------------------------------------------------
def test_leaderboard_is_mean_and_interval_over_seeds_with_directions():
    records = [
        record("vae", 0, 1.0),
        record("vae", 1, 3.0),
        record("pie", 0, 5.0),
        record("real", 0, 4.0, kind="reference"),
        record("gan", 0, status="failed"),
    ]
    table = leaderboard.render(records, "md")
    lines = table.splitlines()
    assert "| model | seeds | sharpness ↑ | FID [digits] ↓ | params | status |" in lines
    assert "| real | – | 4.000 | 40.00 | 1,234 | reference |" in lines
    assert "| pie | 1 | **5.000** | 50.00 | 1,234 | ok |" in lines
    # ± the 95 % Student-t half-width over 2 seeds: t(0.975, 1) · std / √2 = 12.706 · 1.414 / 1.414
    assert "| vae | 2 | 2.000 ± 12.706 | **20.00 ± 127.06** | 1,234 | ok |" in lines
    assert (
        "| vae | 2 | 2.000 ± 1.414 | **20.00 ± 14.14** | 1,234 | ok |"
        in leaderboard.render(records, "md", interval="std").splitlines()
    )
    assert "| gan | 0 | – | – | – | failed: boom |" in lines
    assert lines.index("| real | – | 4.000 | 40.00 | 1,234 | reference |") < lines.index(
        "| gan | 0 | – | – | – | failed: boom |"
    )

    csv = pd.read_csv(io.StringIO(leaderboard.render(records, "csv")))
    vae = csv[csv["model"] == "vae"].iloc[0]
    assert vae["sharpness_mean"] == 2.0 and vae["fid[digits]_std"] == pytest.approx(14.142136)
    assert vae["fid[digits]_ci95"] == pytest.approx(127.062047)

    latex = leaderboard.render(records, "latex")
    assert "\\textbf{5.000}" in latex and "2.000 $\\pm$ 12.706" in latex and "FID [digits] $\\downarrow$" in latex


def test_values_far_below_one_keep_three_significant_digits():
    # FID in galaxy-ae features: real vs real 4.3e-05, a good model 0.0019; four decimals printed the floor as 0.0000.
    records = [record("real", 0, 4.293e-5, kind="reference"), record("a", 0, 1.9e-3), record("b", 0, 0.0)]
    lines = leaderboard.render(records, "md").splitlines()
    assert "| real | – | 4.29e-05 | 0.000429 | 1,234 | reference |" in lines
    assert "| a | 1 | **0.0019** | 0.0190 | 1,234 | ok |" in lines
    assert "| b | 1 | 0.0000 | **0.0000** | 1,234 | ok |" in lines  # an exact zero stays a plain zero


def test_values_of_different_extractors_never_share_a_column():
    table = leaderboard.render([record("a", fid_extractor="digits"), record("b", fid_extractor="inception")], "md")
    assert "FID [digits] ↓" in table and "FID [inception] ↓" in table


def test_every_unmeasured_value_says_why_under_the_table_once_per_reason():
    records = [record("a"), record("b", value=2.0), record("real", kind="reference")]
    for r in records[:2]:
        r["metrics"]["lpips"] = {"value": None, "higher_is_better": False, "label": "LPIPS", "unavailable": "no VGG"}
    records[2]["metrics"]["lpips"] = {"value": None, "higher_is_better": False, "label": "LPIPS", "unavailable": "n/a"}
    table = leaderboard.render(records, "md")
    assert "| real | – | 1.000 | 10.00 | –¹ |" in table and "| a | 1 | 1.000 | **10.00** | –² |" in table
    assert table.endswith("Not measured (–):\n- ¹ n/a\n- ² no VGG\n")  # one note per reason, not per cell
    assert "% not measured (--) 2 no VGG" in leaderboard.render(records, "latex")
    assert "lpips_unavailable" in leaderboard.render(records, "csv").splitlines()[0]


def test_a_missing_value_without_extractor_joins_its_metrics_column():
    unmeasured = record("real", kind="reference")
    unmeasured["metrics"]["fid"] = {"value": None, "higher_is_better": False, "label": "FID", "unavailable": "n/a"}
    table = leaderboard.render([record("a"), unmeasured], "md")
    assert table.count("FID") == 1 and "| real | – | 1.000 | –¹ | 1,234 | reference |" in table


# --- comparisons -----------------------------------------------------------------------------------------------
def write(tmp_path, name, *records_):
    for r in records_:
        results.save_record(r, results.record_path(tmp_path / name, "t", r["model"]["name"], r["seed"]))
    return str(tmp_path / name)


def test_compare_flags_worse_metrics_beyond_tolerance(tmp_path):
    base = write(tmp_path, "base", record("vae", value=1.0))
    worse = write(tmp_path, "worse", record("vae", value=0.9))  # sharpness down 10 %, FID down (better)
    outcome = {c.metric: c.regressed for c in compare.compare(worse, base, compare.parse_tolerance([]))}
    assert outcome == {"sharpness": True, "fid[digits]": False}
    assert not any(c.regressed for c in compare.compare(worse, base, compare.parse_tolerance(["0.11"])))
    assert not any(c.regressed for c in compare.compare(worse, base, compare.parse_tolerance(["sharpness=0.1"])))


def test_compare_a_new_model_against_a_named_baseline(tmp_path):
    folder = write(tmp_path, "runs", record("mine", value=2.0), record("pie", value=1.0))
    outcome = compare.compare(f"{folder}@mine", f"{folder}@pie", compare.parse_tolerance([]))
    assert [(c.new, c.baseline, c.metric, c.regressed) for c in outcome] == [
        ("mine", "pie", "sharpness", False),
        ("mine", "pie", "fid[digits]", True),
    ]


def test_a_failed_new_run_is_a_regression(tmp_path):
    base = write(tmp_path, "base", record("vae"))
    failed = write(tmp_path, "failed", record("vae", status="failed"))
    assert all(c.regressed for c in compare.compare(failed, base, compare.parse_tolerance([])))


def test_every_budget_override_reaches_a_model_that_takes_the_task():
    """A width override that no model of the task has (a misspelt or renamed field) would pass silently."""
    from aebench.registry import models, tasks

    for task_name, task_cls in tasks.items():
        fitting = {name: cls for name, cls in models.items() if task_cls.requires <= cls.capabilities}
        fields = {name: {f.name for f in dataclasses.fields(cls.Config)} for name, cls in fitting.items()}
        budgets = {**task_cls.budgets, "task": Budget(1, 1, 1, model_overrides=task_cls.model_overrides)}
        for budget_name, budget in budgets.items():
            for key, value in budget.model_overrides.items():
                where = f"{task_name} {budget_name} {key}"
                if isinstance(value, dict):
                    assert key in fitting and set(value) <= fields[key], where
                else:
                    assert any(key in names for names in fields.values()), where
