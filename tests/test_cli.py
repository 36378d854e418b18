"""The command line on the toy task: outputs, exit codes, and one clear line for every bad input."""

from __future__ import annotations

import subprocess
import sys

import pytest

from aebench import results
from aebench.cli import main
from toy import spec

TOY = spec("ToyTask")


def run(tmp_path, *args: str) -> int:
    return main(
        [
            "run",
            "--task",
            TOY,
            "--out",
            str(tmp_path / "out"),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--no-progress",
            *args,
        ]
    )


def test_run_writes_records_leaderboards_and_prints_the_table(tmp_path, capsys):
    models = f"{spec('ToyAE')},{spec('EncoderOnly')}"
    assert run(tmp_path, "--models", models, "--seeds", "0,1") == 0
    out = capsys.readouterr().out
    folder = tmp_path / "out" / "toy"
    names = sorted(p.name for p in (folder / "records").iterdir())
    assert names == [
        "encoder-only-smoke-seed0.json",
        "encoder-only-smoke-seed1.json",
        "reference-smoke-train-vs-test.json",
        "toy-ae-smoke-seed0.json",
        "toy-ae-smoke-seed1.json",
    ]
    for suffix in ("md", "csv", "tex"):
        assert (folder / f"leaderboard.{suffix}").exists()
    assert "| train vs test | – |" in out
    assert "| toy-ae | 2 |" in out
    assert "not applicable: model lacks capability sample" in out
    assert out == (folder / "leaderboard.md").read_text()


def test_a_failing_model_does_not_stop_the_others(tmp_path, capsys):
    models = ",".join(spec(name) for name in ("NaNAE", "CrashAE", "ToyAE"))
    assert run(tmp_path, "--models", models) == 1
    records = {r["model"]["name"]: r for r in results.load_records(tmp_path / "out" / "toy")}
    assert records["nan-ae"]["status"] == "failed" and "non-finite loss" in records["nan-ae"]["reason"]
    assert records["crash-ae"]["status"] == "failed"
    assert records["toy-ae"]["status"] == "ok"
    table = capsys.readouterr().out
    assert "failed: non-finite loss loss=nan at step 4" in table and "| toy-ae | 1 |" in table


def test_runs_on_published_data_are_their_own_runs_never_merged_with_the_embedded_ones(tmp_path, capsys):
    """The same model and budget on the embedded data and on two folders of published files: three record files,
    three rows never averaged or ranked together, and commands that give the --data-dir back."""
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir(), (tmp_path / "b-copy").mkdir()
    (tmp_path / "b" / "shift.txt").write_text("5"), (tmp_path / "b-copy" / "shift.txt").write_text("5")
    for data in ([], ["--data-dir", str(tmp_path / "a")], ["--data-dir", str(tmp_path / "b")]):
        assert run(tmp_path, "--models", spec("ToyAE"), "--seeds", "0,1", *data) == 0
    records = results.load_records(tmp_path / "out" / "toy")
    tags = {r["data"]["source"]: results.data_tag(r["data"]) for r in records}
    assert tags["toy gaussian"] == "" and len(set(tags.values())) == 3
    names = sorted(p.name for p in (tmp_path / "out" / "toy" / "records").iterdir())
    tag_a, tag_b = tags[f"toy-files: {tmp_path / 'a'}"], tags[f"toy-files: {tmp_path / 'b'}"]
    assert names == sorted(
        [f"toy-ae-smoke{suffix}-seed{seed}.json" for suffix in ("", f"-{tag_a}", f"-{tag_b}") for seed in (0, 1)]
        + [f"reference-smoke{suffix}-train-vs-test.json" for suffix in ("", f"-{tag_a}", f"-{tag_b}")]
    )
    table = (tmp_path / "out" / "toy" / "leaderboard.md").read_text()
    for budget in ("smoke", f"smoke on {tag_a}", f"smoke on {tag_b}"):
        assert f"| toy-ae | {budget} | 2 |" in table
    means = [line for line in table.splitlines() if line.startswith("| toy-ae |")]
    assert not any("**" in line or "†" in line for line in means)  # alone on its data: never ranked, bold or tied
    # The tag is the content's: the same files in another folder are the same run (reused, not trained again).
    assert run(tmp_path, "--models", spec("ToyAE"), "--seeds", "0", "--data-dir", str(tmp_path / "b-copy")) == 0
    assert "reused, identical run finished" in capsys.readouterr().err
    commands = (tmp_path / "out" / "toy" / "leaderboard.md").read_text()
    assert f"--budget smoke --seeds 0,1 --data-dir {tmp_path / 'a'} --out results" in commands
    assert "--budget smoke --seeds 0,1 --out results" in commands


def test_leaderboard_command_rebuilds_from_records(tmp_path, capsys):
    assert run(tmp_path, "--models", spec("ToyAE")) == 0
    written = (tmp_path / "out" / "toy" / "leaderboard.md").read_text()
    capsys.readouterr()
    assert main(["leaderboard", TOY, "--out", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out == written
    assert main(["leaderboard", TOY, "--out", str(tmp_path / "out"), "--format", "latex"]) == 0
    assert "\\begin{tabular}" in capsys.readouterr().out


def test_compare_exits_1_on_a_regression_and_0_within_tolerance(tmp_path, capsys):
    assert run(tmp_path / "base", "--models", spec("ToyAE")) == 0
    # the "code change" is a smaller learning rate; its label keeps the row's name, so that both sides share it
    assert (
        run(tmp_path / "new", "--models", spec("ToyAE"), "--model-args", "toy-ae.lr=0.0001", "--label", "toy-ae") == 0
    )
    new, base = str(tmp_path / "new" / "out"), str(tmp_path / "base" / "out")
    capsys.readouterr()
    assert main(["compare", new, base]) == 1
    assert "REGRESSED" in capsys.readouterr().out
    assert main(["compare", base, base]) == 0
    assert main(["compare", new, base, "--tolerance", "1000"]) == 0


def test_list_shows_tasks_models_metrics_and_fit(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for text in ("Tasks:", "Models:", "Metrics:", "Feature extractors:", "Capabilities:", "sharpness"):
        assert text in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "--task", "no-such-task", "--models", "vae"], "unknown task 'no-such-task' (known:"),
        (["run", "--task", TOY, "--models", "no-such-model"], "unknown model 'no-such-model' (known:"),
        (["run", "--task", TOY, "--models", spec("ToyAE"), "--model-args", "lr=0.1"], "malformed 'lr=0.1'"),
        (
            ["run", "--task", TOY, "--models", spec("ToyAE"), "--model-args", f"{spec('ToyAE')}.colour=red"],
            "unknown key 'colour'",
        ),
        (
            ["run", "--task", TOY, "--models", spec("ToyAE"), "--model-args", f"{spec('ToyAE')}.lr=fast"],
            "lr: expected float, got 'fast'",
        ),
        (
            ["run", "--task", TOY, "--models", spec("ToyAE"), "--model-args", "vae.beta=2"],
            "'vae' is not among --models",
        ),
        (["run", "--task", TOY, "--models", spec("ToyAE"), "--seeds", "a,b"], "--seeds: expected comma-separated"),
        (["run", "--task", TOY, "--models", spec("ToyAE"), "--budget", "huge"], "has no budget 'huge'"),
        (["run", "--task", TOY, "--models", spec("ToyAE"), "--device", "tpu"], "unknown device 'tpu'"),
        (["run", "--task", TOY, "--models", "./missing.py:Model"], "does not exist"),
        (["run", "--task", "mnist-sharpness", "--models", "vae", "--data-dir", "/no/such/dir"], "/no/such/dir"),
        (["leaderboard", TOY, "--out", "/no/such/dir"], "no such results file or folder"),
        (["compare", "/no/such/a", "/no/such/b"], "no such results file or folder"),
        (["compare", ".", ".", "--tolerance", "lots"], "--tolerance: malformed 'lots'"),
        (["run", "--task", TOY], "--models"),
    ],
)
def test_bad_input_gives_one_clear_line_and_exit_2(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    try:
        code = main(args)
    except SystemExit as exit:  # argparse's own errors
        code = exit.code
    assert code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aebench"), lines
    assert message in lines[0]


def test_bad_input_in_a_fresh_process_prints_no_traceback(tmp_path):
    corrupt = tmp_path / "toy" / "records" / "toy-ae-seed0.json"
    corrupt.parent.mkdir(parents=True)
    corrupt.write_text('{"schema_version": 1, "kind": "model"')  # cut off mid-write
    done = subprocess.run(
        [sys.executable, "-m", "aebench", "leaderboard", TOY, "--out", str(tmp_path)], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"aebench: error: {corrupt}: corrupt record (invalid JSON at line 1)"]


@pytest.mark.parametrize(
    "command", [[], ["run"], ["list"], ["leaderboard"], ["compare"], ["claims"], ["doctor"], ["job"]]
)
def test_help_everywhere(command, capsys):
    with pytest.raises(SystemExit) as exit:
        main([*command, "--help"])
    assert exit.value.code == 0 and "usage: aebench" in capsys.readouterr().out
