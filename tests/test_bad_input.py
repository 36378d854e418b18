"""Bad input is caught before any training with one clear line and exit code 2; a problem of one model's run fails
that run only; records that parse but lie about their types are refused on read, naming the file."""

from __future__ import annotations

import copy
import json
import os
import stat

import pytest
from test_core import record

from aebench import leaderboard, results
from aebench.cli import main
from toy import spec

TOY = spec("ToyTask")


def one_error_line(capsys, *args: str) -> str:
    """Run the CLI; assert exit code 2 and a single stderr line; return that line."""
    try:
        code = main(list(args))
    except SystemExit as exit:  # argparse's own errors
        code = exit.code
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2, captured.err
    assert len(lines) == 1 and lines[0].startswith("aebench"), lines
    return lines[0]


def run_args(tmp_path, *args: str) -> list[str]:
    return ["run", "--task", TOY, "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"),
            "--no-progress", *args]  # fmt: skip


@pytest.mark.parametrize(
    "model, model_args, message",
    [
        ("ToyAE", "lr=nan", "lr: expected a finite number, got 'nan'"),
        ("ToyAE", "lr=inf", "lr: expected a finite number, got 'inf'"),
        ("ToyAE", "latent_dim=-3", "latent_dim: must be ≥ 0, got -3"),  # no declared range: ≥ 0
        ("StrictAE", "latent_dim=0", "latent_dim: must be ≥ 1, got 0"),  # PositiveInt
        ("StrictAE", "lr=0", "lr: must be > 0, got 0.0"),  # PositiveFloat
        ("StrictAE", "dropout=1.5", "the model cannot be built with {'dropout': '1.5'}: ValueError: dropout"),
    ],
)
def test_config_values_out_of_range_are_bad_input(tmp_path, capsys, model, model_args, message):
    others = f"{spec('ToyAE')},{spec('EncoderOnly')}" if model != "ToyAE" else spec("EncoderOnly")
    models = f"{others},{spec(model)}"  # the bad one last: nothing may train before it is found
    line = one_error_line(
        capsys, *run_args(tmp_path, "--models", models, "--model-args", f"{spec(model)}.{model_args}")
    )
    assert message in line
    assert not (tmp_path / "out" / "toy" / "records").exists()


@pytest.mark.parametrize(
    "seeds, message",
    [
        ("-1", "-1 is outside 0 … 2^63 - 1"),
        ("0,0", "seed 0 is given twice"),
        ("0,,1", "empty item in '0,,1'"),
        (str(2**64), "is outside 0 … 2^63 - 1"),
        ("", "empty list"),
    ],
)
def test_bad_seeds_are_bad_input(tmp_path, capsys, seeds, message):
    assert message in one_error_line(capsys, *run_args(tmp_path, "--models", spec("ToyAE"), "--seeds", seeds))


def test_an_out_folder_that_is_a_file_or_unwritable_is_found_before_loading_data(tmp_path, capsys, monkeypatch):
    import aebench.cli

    def no_loading(job):
        raise AssertionError("data were loaded before --out was checked")

    monkeypatch.setattr(aebench.cli, "load_data", no_loading)
    (tmp_path / "file").write_text("x")
    line = one_error_line(capsys, "run", "--task", TOY, "--models", spec("ToyAE"), "--out", str(tmp_path / "file"))
    assert "--out" in line and "is a file" in line
    line = one_error_line(capsys, "run", "--task", TOY, "--models", spec("ToyAE"), "--out", "/proc/aebench-results")
    assert "--out: cannot write to /proc/aebench-results/toy" in line


def test_a_corrupt_record_in_out_is_found_before_training(tmp_path, capsys):
    corrupt = tmp_path / "out" / "toy" / "records" / "vae-seed0.json"
    corrupt.parent.mkdir(parents=True)
    corrupt.write_text('{"schema_version": 1')
    line = one_error_line(capsys, *run_args(tmp_path, "--models", spec("ToyAE")))
    assert str(corrupt) in line and "corrupt record" in line
    assert [p.name for p in corrupt.parent.iterdir()] == ["vae-seed0.json"]  # nothing ran


def test_a_corrupt_checkpoint_fails_its_run_and_the_grid_goes_on(tmp_path, capsys):
    checkpoint = tmp_path / "out" / "toy" / "checkpoints" / "toy-ae-smoke-seed0.pt"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"garbage")
    assert main(run_args(tmp_path, "--models", spec("ToyAE"), "--seeds", "0,1", "--resume")) == 1
    records = {r["seed"]: r for r in results.load_records(tmp_path / "out" / "toy") if r["kind"] == "model"}
    assert records[0]["status"] == "failed" and "corrupt" in records[0]["reason"]
    assert records[1]["status"] == "ok"
    assert (tmp_path / "out" / "toy" / "leaderboard.md").exists()


def test_an_unfinished_runs_checkpoint_is_resumed_or_replaced_on_purpose_only(tmp_path, capsys):
    checkpoint = tmp_path / "out" / "toy" / "checkpoints" / "toy-ae-smoke-seed0.pt"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"hours of training")
    line = one_error_line(capsys, *run_args(tmp_path, "--models", spec("ToyAE")))
    assert str(checkpoint) in line and "--resume continues it" in line and "--force starts over" in line
    assert checkpoint.read_bytes() == b"hours of training"
    assert not (tmp_path / "out" / "toy" / "records").exists()  # nothing ran
    assert main(run_args(tmp_path, "--models", spec("ToyAE"), "--force")) == 0
    (ours,) = [r for r in results.load_records(tmp_path / "out" / "toy") if r["kind"] == "model"]
    assert ours["status"] == "ok" and not ours["resumed"] and not checkpoint.exists()


def test_specs_that_are_not_models_or_break_on_import_are_bad_input(tmp_path, capsys):
    quitter = tmp_path / "quitter.py"
    quitter.write_text("import sys\nsys.exit('plugin gave up')\n")
    line = one_error_line(capsys, *run_args(tmp_path, "--models", f"{quitter}:Model"))
    assert "importing" in line and "plugin gave up" in line
    plugin = tmp_path / "plugin.py"
    plugin.write_text("NUMBER = 3\n\n\ndef function():\n    pass\n")
    for name in ("NUMBER", "function"):
        line = one_error_line(capsys, *run_args(tmp_path, "--models", f"{plugin}:{name}"))
        assert f"'{plugin}:{name}' is not an aebench Model subclass" in line


def test_a_job_file_holding_a_list_is_bad_input(tmp_path, capsys):
    path = tmp_path / "job.json"
    path.write_text(json.dumps([{"task": "toy", "model": "x"}]))
    assert "expected an object of Job fields, got list" in one_error_line(capsys, "job", str(path))
    path.write_text(json.dumps({"task": TOY, "model": spec("ToyAE"), "seed": -2}))
    assert "seed: must be ≥ 0, got -2" in one_error_line(capsys, "job", str(path))


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda r: r["metrics"]["sharpness"].update(value="abc"), "value 'abc' is not a finite number or null"),
        (lambda r: r["model"].pop("name"), "'model.name' is missing"),
        (lambda r: r["metrics"]["fid"].update(extractor="digits"), "extractor must be an object with a 'name'"),
        (lambda r: r["metrics"]["fid"].update(higher_is_better="no"), "higher_is_better 'no' is not true/false"),
        (lambda r: r.update(seed=True), "'seed' is missing or not a int"),
        (lambda r: r["task"].update(version=2), "'task.version' is missing or not a non-empty string"),
        (lambda r: r.update(kind="oracle"), "unknown kind 'oracle'"),
        (lambda r: r.update(status="failed", reason=None), "needs its 'reason' as a string"),
    ],
)
def test_records_with_wrong_types_are_refused_naming_the_file(tmp_path, capsys, mutate, message):
    bad = copy.deepcopy(record())
    mutate(bad)
    path = tmp_path / "toy" / "records" / "x.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(bad))
    for command in (["leaderboard", TOY, "--out", str(tmp_path)], ["compare", str(tmp_path), str(tmp_path)]):
        line = one_error_line(capsys, *command)
        assert str(path) in line and message in line


def test_records_and_leaderboards_honour_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = results.record_path(tmp_path, "t", "vae", 0)
        results.save_record(record(), path)
        results.write_atomic(tmp_path / "t" / "leaderboard.md", "table\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "t" / "leaderboard.md").stat().st_mode) == 0o644


# --- rows that are not comparable ------------------------------------------------------------------------------
def versioned(model, version, budget, value, seed=0):
    r = record(model, seed, value)
    r["task"]["version"], r["budget"]["name"] = version, budget
    return r


def test_the_leaderboard_never_averages_task_versions_or_budgets():
    records = [
        versioned("vae", "1", "smoke", 1.0),
        versioned("vae", "2", "smoke", 3.0),
        versioned("vae", "2", "quick", 5.0),
        versioned("pie", "2", "smoke", 2.0),
    ]
    table = leaderboard.render(records, "md")
    assert "| model | task version | budget | seeds |" in table
    assert "| vae | v1 | smoke | 1 | 1.000 |" in table  # never (1 + 3) / 2
    assert "| vae | v2 | smoke | 1 | **3.000** |" in table  # best among v2 smoke only
    assert "| vae | v2 | quick | 1 | 5.000 |" in table  # alone in its group: not bold
    assert "versions v1, v2: rows of different versions are separate" in table
    csv = leaderboard.render(records, "csv")
    assert csv.splitlines()[0].startswith("task,task_version,kind,model,budget")


def test_budgets_of_one_table_are_ranked_together():
    records = [versioned("turbo-sim", "2", "paper", 1.0), versioned("otus", "2", "paper-otus", 2.0)]
    records += [versioned("regression", "2", "quick", 9.0)]
    for r, table in zip(records, ("paper", "paper", "")):
        r["budget"]["table"] = table
    text = leaderboard.render(records, "md")
    assert "| otus | paper-otus | 1 | **2.000** |" in text and "| turbo-sim | paper | 1 | 1.000 |" in text
    assert "| regression | quick | 1 | 9.000 |" in text  # alone in its table
    assert "Budgets `paper`, `paper-otus` are ranked together (table `paper`)." in text


def test_compare_pairs_only_the_same_version_and_budget(tmp_path, capsys):
    from aebench import compare

    def write(name, *records_):
        for i, r in enumerate(records_):
            results.save_record(r, tmp_path / name / "t" / "records" / f"{i}.json")
        return str(tmp_path / name)

    base = write("base", versioned("vae", "1", "smoke", 1.0), versioned("vae", "1", "quick", 9.0))
    new = write("new", versioned("vae", "1", "quick", 8.0))
    outcome = compare.compare(new, base, compare.parse_tolerance([]))
    assert {(c.metric, c.baseline_value) for c in outcome} == {("sharpness", 9.0), ("fid[digits]", 90.0)}
    other = write("other", versioned("vae", "2", "smoke", 1.0))
    line = one_error_line(capsys, "compare", other, base)
    assert "other task versions or budgets (new: v2 smoke; baseline: v1 quick, v1 smoke)" in line
