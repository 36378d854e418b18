"""Records are keyed by what was run: a model's variants, budgets and labels each keep their own record and row,
and no run replaces the record of something else."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from aebench import leaderboard, results
from aebench.cli import main
from toy import spec

TOY = spec("ToyTask")
REPO = Path(__file__).resolve().parent.parent


def run(out, *args: str) -> int:
    return main(["run", "--task", TOY, "--out", str(out), "--cache-dir", str(out.parent / "cache"), "--no-progress",
                 "--models", spec("ToyAE"), *args])  # fmt: skip


def test_two_configs_and_two_budgets_of_one_model_give_four_records_and_four_rows(tmp_path, capsys):
    out = tmp_path / "out"
    assert run(out) == 0
    assert run(out, "--model-args", "toy-ae.lr=0.05") == 0
    assert run(out, "--budget", "per-model") == 0
    assert run(out, "--budget", "per-model", "--model-args", "toy-ae.lr=0.05") == 0
    names = sorted(p.name for p in (out / "toy" / "records").iterdir() if not p.name.startswith("reference"))
    assert names == [
        "toy-ae-per-model-seed0.json",
        "toy-ae-smoke-seed0.json",
        "toy-ae@lr=0.05-per-model-seed0.json",
        "toy-ae@lr=0.05-smoke-seed0.json",
    ]
    table = leaderboard.render(results.load_records(out / "toy"), "md")
    rows = [line.split(" | ")[0:2] for line in table.splitlines() if line.startswith("| toy-ae")]
    assert rows == [["| toy-ae", "per-model"], ["| toy-ae [lr=0.05]", "per-model"],
                    ["| toy-ae", "smoke"], ["| toy-ae [lr=0.05]", "smoke"]]  # fmt: skip


def test_a_label_names_the_row_and_compare_treats_variants_as_models(tmp_path, capsys):
    out = tmp_path / "out"
    assert run(out) == 0
    assert run(out, "--model-args", "toy-ae.lr=0.0001", "--label", "toy-ae=slow-lr") == 0
    records = results.load_records(out / "toy")
    assert {results.row_name(r) for r in records if r["kind"] == "model"} == {"toy-ae", "slow-lr"}
    assert (out / "toy" / "records" / "slow-lr-smoke-seed0.json").exists()
    capsys.readouterr()
    assert main(["compare", f"{out}@slow-lr", f"{out}@toy-ae"]) == 1  # a 100× smaller learning rate regresses
    assert "slow-lr" in capsys.readouterr().out


def test_the_leaderboard_says_how_to_regenerate_each_row(tmp_path):
    out = tmp_path / "out"
    assert run(out, "--seeds", "0,1") == 0
    assert run(out, "--model-args", "toy-ae.lr=0.05", "--label", "fast") == 0
    table = (out / "toy" / "leaderboard.md").read_text()
    toy = spec("ToyAE")
    assert f"Command: `aebench run --task toy --models {toy} --budget smoke --seeds 0,1 --out results`." in table
    assert f"--models {toy} --budget smoke --seeds 0 --model-args {toy}.lr=0.05 --label fast --out results`." in table


def test_a_run_never_replaces_the_record_of_something_else(tmp_path, capsys):
    out = tmp_path / "out"
    assert run(out, "--model-args", "toy-ae.lr=0.0001", "--label", "mine") == 0
    before = (out / "toy" / "records" / "mine-smoke-seed0.json").read_text()
    assert main(["run", "--task", TOY, "--out", str(out), "--models", spec("ToyAE"), "--label", "mine"]) == 2
    assert "holds a run of" in capsys.readouterr().err
    assert (out / "toy" / "records" / "mine-smoke-seed0.json").read_text() == before
    assert run(out, "--model-args", "toy-ae.lr=0.0001", "--label", "mine") == 0  # the same thing again: replaced


def test_two_records_of_one_run_are_refused_rather_than_averaged(tmp_path):
    out = tmp_path / "out"
    assert run(out) == 0
    records = out / "toy" / "records"
    shutil.copy(records / "toy-ae-smoke-seed0.json", records / "toy-ae-seed0.json")  # an older file name
    with pytest.raises(Exception, match="two records of the same run"):
        results.load_records(out / "toy")


@pytest.mark.parametrize("labels, message", [
    (["a", "b"], "labelled twice"),
    (["nobody=x"], "'nobody' is not among --models"),
    (["toy-ae= "], "must be non-empty"),
])  # fmt: skip
def test_bad_labels_are_bad_input(tmp_path, capsys, labels, message):
    args = [arg for label in labels for arg in ("--label", label)]
    assert run(tmp_path / "out", *args) == 2
    assert message in capsys.readouterr().err


def test_a_record_is_dirty_when_the_code_changed_not_when_results_did(tmp_path):
    """git_commit() marks '+dirty' for uncommitted code, not for records that an earlier run wrote into results/."""
    tree = tmp_path / "tree"
    shutil.copytree(REPO / "aebench", tree / "aebench", ignore=shutil.ignore_patterns("__pycache__"))
    (tree / "results").mkdir()
    (tree / "results" / "leaderboard.md").write_text("committed\n")

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=tree, capture_output=True, text=True, check=True)
        return done.stdout.strip()

    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "tree")
    probe = "from aebench import results; print(results.git_commit())"

    def commit() -> str:
        done = subprocess.run([sys.executable, "-c", probe], cwd=tree, capture_output=True, text=True, check=True)
        return done.stdout.strip()

    head = git("rev-parse", "HEAD")
    # This tree holds aebench/ alone: its tasks and baselines are the installed ones, from another tree.
    assert commit() == head + "+mixed"
    (tree / "results" / "leaderboard.md").write_text("rewritten by a run\n")
    assert commit() == head + "+mixed"
    errors = tree / "aebench" / "errors.py"
    errors.write_text(errors.read_text() + "\n# edited\n")
    assert commit() == head + "+dirty+mixed"


def test_the_repository_runs_its_own_tasks_and_baselines():
    """Installed from this checkout (as `make install` does): the commit names all the code that runs."""
    assert results.git_commit() and not results.git_commit().endswith("+mixed")
