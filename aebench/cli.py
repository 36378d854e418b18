"""The `aebench` command line: run, list, leaderboard, report, compare, claims, ladder, doctor, job, status, grid.

Bad input ends with one line on stderr and exit code 2; a run where some model failed ends with exit code 1 after
every other model has run and every record and leaderboard has been written.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import torch

from aebench import claims as claiming
from aebench import compare as comparing
from aebench import doctor as checkup
from aebench import executors, leaderboard, results
from aebench import report as reporting
from aebench.checkpoints import unfinished_runs
from aebench.config import parse_assignments
from aebench.errors import AebenchError
from aebench.executors import EXECUTORS
from aebench.identity import FinishedRuns, adopt
from aebench.model import CAPABILITIES
from aebench.registry import extractors, metrics, models, tasks
from aebench.runner import (
    DEFAULT_CACHE,
    MAX_SEED,
    CannotBuild,
    Interrupted,
    Job,
    budget_of,
    build_model,
    check_checkpoint_slot,
    check_record_slot,
    get_task,
    job_identity,
    load_data,
    refusal,
    resolve_device,
    resolve_model,
    run_job,
    run_references,
)
from aebench.tracking import check_trackers

EXIT_FAILED_RUN, EXIT_BAD_INPUT, EXIT_PENDING, EXIT_INTERRUPTED = 1, 2, 3, 130


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not a usage dump
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="aebench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser, metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="train, evaluate and rank models on a task",
        description="Train each model on the task for each seed, evaluate it, write one record per "
        "(task, model, seed), rebuild the task's leaderboard and print it.",
    )
    run.add_argument("--task", required=True, help="task name (see `aebench list`)")
    run.add_argument(
        "--models", required=True, help="comma-separated model names or specs: NAME, ./file.py:Class or module:Class"
    )
    run.add_argument("--budget", default="smoke", help="training budget defined by the task: smoke, quick, paper")
    run.add_argument("--seeds", default="0", help="comma-separated integer seeds (default 0)")
    run.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    run.add_argument(
        "--out",
        default="runs",
        help="results folder (default ./runs, git-ignored; the committed tables are regenerated with --out results)",
    )
    run.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="[MODEL=]LABEL",
        help="the leaderboard row's name for a model's runs (default: the model's name, with its --model-args)",
    )
    run.add_argument("--data-dir", default=None, help="folder with the task's published data files")
    run.add_argument("--cache-dir", default=str(DEFAULT_CACHE), help="generated data and feature extractors")
    run.add_argument(
        "--model-args",
        action="append",
        default=[],
        metavar="NAME.KEY=VALUE",
        help="override a model's config field; repeat for several",
    )
    run.add_argument(
        "--resume",
        action="store_true",
        help="continue interrupted runs from their checkpoints (finished identical runs are reused in any case)",
    )
    run.add_argument(
        "--cpu-threads",
        type=int,
        default=1,
        help="intra-op threads of CPU runs (default 1: bitwise reproducible; more is faster but oneDNN's "
        "convolution backward passes then vary from run to run)",
    )
    run.add_argument("--no-progress", action="store_true", help="hide progress bars")
    track = run.add_argument_group("experiment tracking")
    track.add_argument(
        "--track",
        action="append",
        default=[],
        metavar="TRACKER",
        help="also log each run to tensorboard (OUT/TASK/tensorboard, a sub-run per model and seed) or mlflow (an "
        "experiment per task): losses and learning rates, final metrics, config and budget, sample picture; "
        "repeatable or comma-separated; needs pip install 'aebench[tensorboard]' or 'aebench[mlflow]'",
    )
    track.add_argument(
        "--track-uri",
        default=None,
        metavar="URI",
        help="MLflow tracking URI (default: a local file store in OUT/mlruns), e.g. sqlite:///runs.db or "
        "http://host:5000",
    )
    gpu = run.add_argument_group("GPU (no effect on CPU runs; recorded, not part of a run's identity)")
    gpu.add_argument(
        "--compile", action="store_true", help="torch.compile the models' networks (opt-in; off by default)"
    )
    gpu.add_argument(
        "--no-amp", action="store_true", help="float32 on CUDA too (default: bf16 autocast where a model allows it)"
    )
    grid = run.add_argument_group("executors and finished work")
    grid.add_argument(
        "--executor",
        choices=EXECUTORS,
        default=None,
        help="in-process (default with --jobs 1): one job after another here; local: --jobs N processes at once "
        "(each with its own GPU, or its share of the CPU threads); slurm: one SLURM job per run via submitit",
    )
    grid.add_argument("--jobs", type=int, default=1, help="local executor: jobs at once (default 1; >1 means local)")
    grid.add_argument(
        "--detach", action="store_true", help="local/slurm: submit the grid and return; follow it with `aebench status`"
    )
    grid.add_argument(
        "--slurm",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="SLURM resources: partition, account, qos, gpus_per_job, cpus_per_job, mem_gb, time_min, "
        "signal_delay_s, array_parallelism, setup, sbatch (KEY=VALUE sbatch options); repeatable",
    )
    grid.add_argument("--slurm-config", type=Path, default=None, help="SLURM resources as a TOML or JSON file")
    grid.add_argument(
        "--reuse",
        action="append",
        default=[],
        type=Path,
        metavar="FOLDER",
        help="also reuse finished records of identical runs found in FOLDER (a results folder); repeatable",
    )
    grid.add_argument(
        "--force",
        action="store_true",
        help="train even when a finished record of the identical run exists; start an unfinished run over, "
        "replacing its checkpoint",
    )

    show = sub.add_parser(
        "list",
        help="tasks, models, metrics and feature extractors",
        description="List what is registered, with one-line descriptions, and which models fit which task.",
    )
    show.add_argument("what", nargs="?", choices=("tasks", "models", "metrics", "extractors", "all"), default="all")
    show.add_argument(
        "--all",
        action="store_true",
        dest="by_capability",
        help="under each task, every model with the capabilities it needs, also those that refuse its data",
    )
    show.add_argument("--cache-dir", default=str(DEFAULT_CACHE), help="generated data and feature extractors")

    board = sub.add_parser(
        "leaderboard",
        help="print a task's leaderboard rebuilt from its records",
        description="Rebuild a task's leaderboard from the stored records: mean ± 95 % confidence interval over "
        "seeds (or ± std), best in bold, rows not significantly different from it marked tied (†).",
    )
    board.add_argument("task")
    board.add_argument("--format", default="md", choices=leaderboard.FORMATS)
    board.add_argument("--out", default="runs", help="results folder (default ./runs; the committed ones: results)")
    board.add_argument("--write", action="store_true", help="also rewrite the leaderboard files in every format")
    board.add_argument(
        "--interval",
        default="ci",
        choices=leaderboard.INTERVALS,
        help="ci (default): ± the 95 %% Student-t interval of the mean over seeds; std: ± their standard deviation",
    )
    board.add_argument("--alpha", type=float, default=0.05, help="significance level of 'tied' (default 0.05)")

    cmp = sub.add_parser(
        "compare",
        help="exit 1 when NEW regresses against BASELINE",
        description=comparing.__doc__.split("\n\n")[0] + " " + comparing.__doc__.split("\n\n")[1],
    )
    cmp.add_argument("new", help="records of the new results: FILE, FOLDER or FOLDER@MODEL")
    cmp.add_argument("baseline", help="records of the baseline: FILE, FOLDER or FOLDER@MODEL")
    cmp.add_argument(
        "--tolerance",
        action="append",
        default=[],
        metavar="TOL",
        help="the smallest worsening that matters: FRACTION (relative, e.g. 0.05), abs=VALUE, or METRIC=VALUE "
        "(absolute); repeatable; default 0. A regression must be significant and larger than this",
    )
    cmp.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    cmp.add_argument(
        "--test",
        default="auto",
        choices=("auto", "welch", "paired", "permutation"),
        help="auto (default): paired t-test when both sides hold the same seeds on the same data, else Welch's",
    )

    claims = sub.add_parser(
        "claims",
        help="check the task's paper's claims on its records: holds, fails or inconclusive",
        description="Check every qualitative claim the task declares (tasks/TASK/claims.py) on its records, per "
        "table of budgets: holds (significant in the claimed direction), fails (significantly the other way) or "
        "inconclusive (neither, or too few seeds), with the numbers and p-values behind each.",
    )
    claims.add_argument("task")
    claims.add_argument("--out", default="runs", help="results folder (default ./runs; the committed ones: results)")
    claims.add_argument("--format", default="text", choices=("text", "md"))
    claims.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    claims.add_argument(
        "--update-readme", nargs="?", const="README.md", metavar="FILE",
        help="also rewrite the task's claims table (Markdown) between its marker lines in FILE (default README.md; "
        "appended with a heading if the markers are absent)",
    )  # fmt: skip

    page = sub.add_parser(
        "report",
        help="write the task's report page (TASK/report.html) from its records",
        description="Rebuild TASK/report.html from the task's records and the pictures beside them: the "
        "leaderboard with the paper's published numbers, the claims' verdicts, diagnostic plots, sample pictures, "
        "loss curves and provenance, in one self-contained HTML file (`aebench run` rebuilds it too).",
    )
    page.add_argument("task")
    page.add_argument("--out", default="runs", help="results folder (default ./runs; the committed ones: results)")

    doctor = sub.add_parser(
        "doctor",
        help="what this machine can run: packages, weights, GPU, data",
        description="Check offline which optional packages import, which pretrained weights are "
        "present (with checksums), whether a GPU is visible, and what each task's --data-dir "
        "takes. Exit code 0 when the default suite can run.",
    )
    doctor.add_argument("--cache-dir", default=str(DEFAULT_CACHE), help="generated data and feature extractors")
    doctor.add_argument(
        "--gpu-check",
        action="store_true",
        help="train every task × applicable baseline briefly on the GPU: bf16 against fp32 metrics, steps per second "
        "against the CPU and the reference pix2pix/CycleGAN steps; writes a Markdown report (exit 2 without CUDA)",
    )
    doctor.add_argument("--report", default="gpu-check.md", help="where --gpu-check writes its report")

    ladder = sub.add_parser(
        "ladder",
        help="the degradation ladder: does each metric see each corruption of the real data?",
        description="Score the task's real data, corrupted at each strength of each corruption the task declares "
        "(tasks/TASK/corruptions.py), with the task's own metrics over several seeds; write TASK/ladder.md, .csv, "
        ".json and one plot per corruption, and print each metric's verdict: sees it, blind, wrong way or "
        "non-monotone.",
    )
    ladder.add_argument("task")
    ladder.add_argument("--seeds", default="3", help="number of seeds, 0 … N-1 (default 3; at least 2)")
    ladder.add_argument("--budget", default="smoke", help="the task budget whose evaluation sizes are used")
    ladder.add_argument("--corruptions", default=None, help="comma-separated corruption names (default: all)")
    ladder.add_argument("--out", default="runs", help="results folder (default ./runs; the committed ones: results)")
    ladder.add_argument("--data-dir", default=None, help="folder with the task's published data files")
    ladder.add_argument("--cache-dir", default=str(DEFAULT_CACHE), help="generated data and feature extractors")
    ladder.add_argument(
        "--update-readme", action="store_true", help="also rewrite the task README's 'What each metric sees' table"
    )

    job = sub.add_parser(
        "job",
        help="run one serialised job (JSON), as an executor in another process would",
        description="Run one job written as JSON (the fields of aebench.runner.Job).",
    )
    job.add_argument("file", type=Path)
    job.add_argument("--grid", type=Path, default=None, help="the grid file this job belongs to (set by executors)")

    status = sub.add_parser(
        "status",
        help="where the grids and unfinished runs of a results folder stand",
        description="Show the runs under OUT that have a checkpoint but no record yet (step, training time, when "
        "saved), then the newest grid (of `run --executor local/slurm`) of each task, one line per job. Exit code 0 "
        "when every job of the grids is done, 1 when one failed or was lost, 3 while jobs are queued or running.",
    )
    status.add_argument("out", type=Path, help="the results folder given to `run --out`")
    status.add_argument("--task", default=None, help="only this task's grid")
    status.add_argument("--watch", action="store_true", help="refresh until every job has ended")

    saved = sub.add_parser(
        "grid", help="run a saved local grid (what `run --executor local --detach` starts in the background)"
    )
    saved.add_argument("file", type=Path)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except AebenchError as error:
        print(f"aebench: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Interrupted as interrupt:
        print(f"aebench: {interrupt.message}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print("aebench: interrupted before any training; nothing to resume", file=sys.stderr)
        return EXIT_INTERRUPTED


def _split(text: str, option: str) -> list[str]:
    items = [item.strip() for item in text.split(",")]
    if not any(items):
        raise AebenchError(f"{option}: empty list")
    if not all(items):
        raise AebenchError(f"{option}: empty item in '{text}'")
    return items


def _seeds(text: str) -> list[int]:
    seeds = []
    for item in _split(text, "--seeds"):
        try:
            seed = int(item)
        except ValueError:
            raise AebenchError(f"--seeds: expected comma-separated integers, got '{item}'") from None
        if not 0 <= seed <= MAX_SEED:
            raise AebenchError(f"--seeds: {seed} is outside 0 … 2^63 - 1")
        if seed in seeds:
            raise AebenchError(f"--seeds: seed {seed} is given twice")
        seeds.append(seed)
    return seeds


def _writable_folder(path: Path, option: str) -> None:
    """Create `path` if needed and prove that a file can be written there, before any data is loaded."""
    for folder in (path, *path.parents):
        if folder.exists() and not folder.is_dir():
            raise AebenchError(f"{option}: {folder} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        raise AebenchError(f"{option}: cannot write to {path}: {error.strerror or error}") from None


def _check_config_builds(job: Job, task, data) -> None:
    """A model given --model-args is built once on the task's data before any training, so that values it cannot
    take (a negative size, a learning rate Adam refuses) are bad input, not a failed run after others trained."""
    model_cls, config = resolve_model(job, task)
    if task.requires - model_cls.capabilities:
        return
    try:
        with torch.random.fork_rng():
            build_model(model_cls, config, data, budget_of(task, job.budget), torch.device("cpu"))
    except CannotBuild:
        return  # recorded as not applicable when it runs
    except Exception as error:
        raise AebenchError(
            f"--model-args {job.model_name}: the model cannot be built with {job.model_args}: "
            f"{type(error).__name__}: {error}"
        ) from None


def _absolute(spec: str) -> str:
    """`./my_model.py:MyModel` with an absolute path, so the job means the same in any working folder."""
    location, sep, attr = spec.rpartition(":")
    return f"{Path(location).expanduser().resolve()}:{attr}" if sep and location.endswith(".py") else spec


def _labels(items: list[str], specs: list[str], names: dict[str, str]) -> dict[str, str]:
    """`--label ae=fast-lr` (or `--label fast-lr` when one model runs) → {spec: label}."""
    labels = {}
    for item in items:
        target, sep, label = item.rpartition("=")
        if not sep:
            if len(specs) != 1:
                raise AebenchError(f"--label: '{item}' must say which model it names (MODEL=LABEL) when several run")
            target, label = specs[0], item
        matches = [spec for spec in specs if target in (spec, names[spec])]
        if not matches:
            raise AebenchError(f"--label: '{target}' is not among --models ({', '.join(specs)})")
        if not label.strip() or label != label.strip() or "," in label:
            raise AebenchError(f"--label: {label!r} must be non-empty, without commas or surrounding spaces")
        if matches[0] in labels:
            raise AebenchError(f"--label: model '{target}' is labelled twice")
        labels[matches[0]] = label
    return labels


def _first_repeat(items: list[str]) -> str:
    return next(item for i, item in enumerate(items) if item in items[:i])


def cmd_run(args: argparse.Namespace) -> int:
    model_specs, seeds = _split(args.models, "--models"), _seeds(args.seeds)
    if args.cpu_threads < 1:
        raise AebenchError(f"--cpu-threads: {args.cpu_threads} must be at least 1")
    if len(set(model_specs)) < len(model_specs):
        raise AebenchError(f"--models: a model is named twice in '{args.models}'")
    trackers = tuple(dict.fromkeys(name for item in args.track for name in _split(item, "--track")))
    check_trackers(trackers, args.track_uri)
    task = get_task(args.task, args.cache_dir)
    budget_of(task, args.budget)
    resolve_device(args.device)
    _writable_folder(results.task_dir(Path(args.out), task.name), "--out")
    results.check_records(results.task_dir(Path(args.out), task.name))  # a corrupt record is found before training
    # --model-args may address a model by what the user typed or by its name (`mlp-ae` for `./my_model.py:MLPAE`)
    names = {spec: Job(task=args.task, model=_absolute(spec)).model_name for spec in model_specs}
    overrides = parse_assignments(args.model_args, option="--model-args")
    for target in overrides:
        if target not in names and target not in names.values():
            raise AebenchError(f"--model-args: '{target}' is not among --models ({', '.join(model_specs)})")
    labels = _labels(args.label, model_specs, names)
    jobs = [
        Job(
            task=_absolute(args.task),
            model=_absolute(spec),
            seed=seed,
            budget=args.budget,
            device=args.device,
            model_args={**overrides.get(names[spec], {}), **overrides.get(spec, {})},
            out_dir=args.out,
            data_dir=args.data_dir,
            cache_dir=args.cache_dir,
            resume=args.resume,
            label=labels.get(spec),
            cpu_threads=args.cpu_threads,
            track=trackers,
            track_uri=args.track_uri,
            amp=not args.no_amp,
            compile=args.compile,
        )
        for spec in model_specs
        for seed in seeds
    ]
    rows = [job.row_name for job in jobs[:: len(seeds)]]
    if len(set(rows)) < len(rows):
        raise AebenchError(f"--label: two models would share the leaderboard row '{_first_repeat(rows)}'")
    for job in jobs[:: len(seeds)]:  # every name and config is checked before any training starts
        resolve_model(job, task)
    executor = _executor(args)
    if executor["name"] == "slurm":  # SLURM jobs always resume: a requeued job continues
        jobs = [dataclasses.replace(job, resume=True) for job in jobs]
    for job in jobs:
        check_record_slot(job)
        check_checkpoint_slot(job, force=args.force)
    data = load_data(jobs[0])
    for job in jobs[:: len(seeds)]:
        if job.model_args:
            _check_config_builds(job, task, data)
    print(f"{task.name}: {data.source}; {len(data)} training examples; budget {args.budget}", file=sys.stderr)
    run_references(args.task, args.budget, args.out, args.data_dir, args.cache_dir)
    jobs = [dataclasses.replace(job, executor=executor["info"]) for job in jobs]
    identities = [job_identity(job)["hash"] for job in jobs]
    reused = _reuse_finished(jobs, identities, task.name, [Path(args.out), *args.reuse], args.force)
    if executor["name"] != "in-process":
        return _run_grid(args, task.name, jobs, identities, reused, executor)

    failed = 0
    for job in (job for job, done in zip(jobs, reused) if not done):
        try:
            record = run_job(job, progress=not args.no_progress)
        except (Exception, SystemExit) as error:  # whatever broke, the other models still run and are ranked
            print(f"{job.row_name} seed {job.seed}: failed outside its run: {error!r}", file=sys.stderr)
            failed += 1
            continue
        summary = ", ".join(f"{k}={v['value']:.4g}" for k, v in record["metrics"].items() if v["value"] is not None)
        detail = summary if record["status"] == "ok" else record["reason"]
        print(
            f"{job.row_name} seed {job.seed}: {record['status']} ({record['wall_time_s']:.1f} s) {detail}",
            file=sys.stderr,
        )
        failed += record["status"] == "failed"
    paths = leaderboard.write_leaderboards(Path(args.out), task.name)
    reporting.write_report(Path(args.out), task.name)
    print(paths["md"].read_text(encoding="utf-8"), end="")
    print(f"records, leaderboards and report in {results.task_dir(Path(args.out), task.name)}", file=sys.stderr)
    return EXIT_FAILED_RUN if failed else 0


def _executor(args: argparse.Namespace) -> dict:
    """The executor chosen by --executor/--jobs/--slurm*, checked before any data is loaded or job submitted."""
    name = args.executor or ("local" if args.jobs > 1 else "in-process")
    if args.jobs < 1:
        raise AebenchError(f"--jobs: {args.jobs} must be at least 1")
    if args.jobs > 1 and name != "local":
        raise AebenchError(f"--jobs {args.jobs} runs jobs in parallel processes: it needs --executor local")
    if args.detach and name == "in-process":
        raise AebenchError("--detach needs --executor local or slurm (an in-process grid ends with this command)")
    if (args.slurm or args.slurm_config) and name != "slurm":
        raise AebenchError("--slurm and --slurm-config need --executor slurm")
    if name == "local":
        slots = executors.Slots.for_jobs(args.jobs, args.device)
        info = {"name": "local", "jobs": args.jobs, "threads": slots.threads, "gpus": slots.gpus}
        return {"name": name, "info": info, "slots": slots}
    if name == "slurm":
        from aebench import slurm

        resources = slurm.resources_from(args.slurm_config, args.slurm)
        slurm.check_cluster(resources)
        return {"name": name, "info": slurm.executor_info(resources), "resources": resources}
    return {"name": name, "info": {"name": "in-process"}}


def _reuse_finished(jobs: list[Job], identities: list[str], task: str, folders: list[Path], force: bool) -> list[bool]:
    """Which jobs have a finished record of the identical run (copied into --out when it was found elsewhere)."""
    if force:
        return [False] * len(jobs)
    finished = FinishedRuns(task, folders)
    reused = []
    for job, key in zip(jobs, identities):
        found = finished.find(key, job.record_path)
        if found is not None:
            adopt(found, job.record_path, job.samples_path, job.row_name)
            where = "its record" if found == job.record_path else str(found)
            print(f"{job.row_name} seed {job.seed}: reused, identical run finished ({where}; --force trains again)",
                  file=sys.stderr)  # fmt: skip
        reused.append(found is not None)
    return reused


def _run_grid(args, task: str, jobs: list[Job], identities: list[str], reused: list[bool], executor: dict) -> int:
    """Run the jobs with the local or SLURM executor: a grid file, a progress view, the leaderboard at the end."""
    grid_file = executors.new_grid(jobs, identities, reused, executor["info"])
    grid = executors.load_grid(grid_file)
    view = None if args.no_progress else executors.GridView(grid)
    if executor["name"] == "local":
        if args.detach:
            pid = executors.detach_local(grid_file)
            print(f"grid {grid['id']}: {len(jobs)} jobs running in the background (pid {pid}); "
                  f"`aebench status {args.out}` shows where they stand", file=sys.stderr)  # fmt: skip
            return 0
        executors.LocalExecutor(args.jobs, executor["slots"]).run(grid_file, view)
        states = executors.states_of(executors.load_grid(grid_file))
    else:
        from aebench import slurm

        ids = slurm.submit(grid_file, executor["resources"])
        print(f"grid {grid['id']}: {len(ids)} SLURM jobs submitted ({', '.join(ids[:3])}{' …' * (len(ids) > 3)})",
              file=sys.stderr)  # fmt: skip
        if args.detach:
            print(f"`aebench status {args.out}` shows where they stand", file=sys.stderr)
            return 0
        try:
            states = slurm.wait(grid_file, view)
        except KeyboardInterrupt:
            slurm.cancel(grid_file)
            raise Interrupted("interrupted: the grid's SLURM jobs were cancelled; rerun with --resume") from None
    paths = leaderboard.write_leaderboards(Path(args.out), task)
    reporting.write_report(Path(args.out), task)
    print(paths["md"].read_text(encoding="utf-8"), end="")
    print(f"records, leaderboards and report in {results.task_dir(Path(args.out), task)}", file=sys.stderr)
    return EXIT_FAILED_RUN if executors.broken(states) else 0


def _span(seconds: float) -> str:
    """A duration as one reads it: 40 s, 12 min, 3.5 h, 2.1 days."""
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.{1 if unit != 'min' else 0}f} {unit}"
    return f"{seconds:.0f} s"


def _unfinished_lines(out: Path, task: str | None) -> list[str]:
    """The unfinished runs (checkpoints) of each task under `out`: where each stands and how long it has trained."""
    folders = [results.task_dir(out, task)] if task else sorted(path for path in out.iterdir() if path.is_dir())
    lines = []
    for folder in folders:
        entries = unfinished_runs(folder)
        if entries:
            lines.append(f"{folder.name}: unfinished runs (a checkpoint, no record; `run ... --resume` continues each)")
        for entry in entries:
            if "problem" in entry:
                lines.append(f"  {entry['path'].stem}: unreadable checkpoint ({entry['problem']})")
                continue
            trained = "" if entry["wall_time_s"] is None else f", {_span(entry['wall_time_s'])} of training"
            share, age = 100 * entry["step"] / entry["steps"], _span(time.time() - entry["saved"])
            lines.append(
                f"  {entry['path'].stem}: step {entry['step']:,} of {entry['steps']:,} ({share:.0f} %){trained}, "
                f"saved {age} ago"
            )
    return lines


def cmd_status(args: argparse.Namespace) -> int:
    task = None if args.task is None else tasks.get(args.task).name
    grids = executors.latest_grids(args.out, task)
    unfinished = _unfinished_lines(args.out, task) if args.out.is_dir() else []
    if not grids and not unfinished:
        raise AebenchError(
            f"{args.out}: no grid or unfinished run found (grids come from `aebench run --executor local/slurm`, "
            "unfinished runs are the checkpoints of runs stopped before their record)"
        )
    if unfinished:
        print("\n".join(unfinished))
    every = []
    while grids:
        every = []
        for grid_file in grids:
            grid = executors.load_grid(grid_file)
            scheduler = {}
            if grid["executor"].get("name") == "slurm":
                from aebench import slurm

                scheduler = slurm.scheduler_states(grid)
            states = executors.states_of(grid, scheduler)
            print("\n".join(executors.GridView(grid).lines_of(states)))
            every.extend(states)
        if not args.watch or not executors.unfinished(every):
            break
        time.sleep(2)
        print()
    if executors.unfinished(every):
        return EXIT_PENDING
    return EXIT_FAILED_RUN if executors.broken(every) else 0


def cmd_grid(args: argparse.Namespace) -> int:
    return executors.run_saved_local(args.file)


def cmd_list(args: argparse.Namespace) -> int:
    what = args.what
    if what in ("tasks", "all"):
        print("Tasks:")
        for name, task in tasks.items():
            fits = [m for m, cls in models.items() if task.requires <= cls.capabilities]
            if not args.by_capability:
                fits = [m for m in fits if _takes_data(name, m, args.cache_dir)]
            print(f"  {name:<20} {task.description}")
            print(
                f"  {'':<20} needs: {', '.join(sorted(task.requires)) or '-'}; budgets: {', '.join(task.budgets)}; "
                f"models: {', '.join(fits) or '-'}"
            )
    if what in ("models", "all"):
        print("Models:")
        for name, cls in models.items():
            print(f"  {name:<20} {cls.description}")
            print(f"  {'':<20} can: {', '.join(sorted(cls.capabilities))}")
    if what in ("metrics", "all"):
        print("Metrics:")
        for name, metric in metrics.items():
            arrow = "↑" if metric.higher_is_better else "↓"
            print(f"  {name:<20} {arrow} {metric.description}")
    if what in ("extractors", "all"):
        print("Feature extractors:")
        for name, extractor in extractors.items():
            print(f"  {name:<20} {extractor.description}")
    if what == "all":
        print("Capabilities:")
        for name, text in CAPABILITIES.items():
            print(f"  {name:<20} {text}")
    return 0


def _takes_data(task_name: str, model_name: str, cache_dir: str) -> bool:
    """The runner's check, without data or training: the model's constructor on the task's data spec."""
    task = get_task(task_name, cache_dir)
    job = Job(task=task_name, model=model_name, budget=next(iter(task.budgets)))
    model_cls, config = resolve_model(job, task)
    return refusal(model_cls, config, task.data_spec(budget_of(task, job.budget))) is None


def cmd_leaderboard(args: argparse.Namespace) -> int:
    name = tasks.get(args.task).name
    folder = results.task_dir(Path(args.out), name)
    print(leaderboard.render(results.load_records(folder), args.format, args.interval, args.alpha), end="")
    if args.write:
        leaderboard.write_leaderboards(Path(args.out), name, args.interval, args.alpha)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    task = tasks.get(args.task)
    folder = results.task_dir(Path(args.out), task.name)
    if not (folder / "records").is_dir():
        raise AebenchError(f"{folder}: no records of task {task.name} (run it first, or give --out)")
    print(reporting.write_report(Path(args.out), task.name))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    tolerance = comparing.parse_tolerance(args.tolerance)
    comparisons = comparing.compare(args.new, args.baseline, tolerance, alpha=args.alpha, test=args.test)
    print(comparing.render(comparisons))
    return EXIT_FAILED_RUN if any(c.regressed for c in comparisons) else 0


def cmd_claims(args: argparse.Namespace) -> int:
    task = tasks.get(args.task)
    declared = getattr(task, "claims", ())
    if not declared:
        raise AebenchError(f"task {task.name} declares no claims (tasks/<task>/claims.py)")
    if not 0 < args.alpha < 1:
        raise AebenchError(f"--alpha: {args.alpha} is not between 0 and 1")
    records = results.load_records(results.task_dir(Path(args.out), task.name))
    checks = claiming.check(declared, records, args.alpha)
    print(claiming.render(checks, args.format, args.alpha), end="")
    if args.update_readme:
        begin, end = claiming.readme_markers(task.name)
        table = claiming.render(checks, "md", args.alpha)
        results.rewrite_section(Path(args.update_readme), begin, end, table, f"## {task.name}: the paper's claims")
    return 0


def cmd_job(args: argparse.Namespace) -> int:
    try:
        text = args.file.read_text(encoding="utf-8")
    except OSError as error:
        raise AebenchError(f"{args.file}: cannot read: {error.strerror}") from error
    job = Job.from_json(text)
    record = run_job(job) if args.grid is None else executors.execute(job, args.grid)
    row = record["model"].get("label") or record["model"]["name"]
    print(f"{row} seed {record['seed']}: {record['status']} → {job.record_path}")
    return EXIT_FAILED_RUN if record["status"] == "failed" else 0


def cmd_ladder(args: argparse.Namespace) -> int:
    from aebench import ladder as laddering

    try:
        n_seeds = int(args.seeds)
    except ValueError:
        raise AebenchError(f"--seeds: expected a number of seeds, got '{args.seeds}'") from None
    seeds = laddering.check_seeds(n_seeds)
    task = get_task(args.task, args.cache_dir)
    budget = budget_of(task, args.budget)
    names = None if args.corruptions is None else _split(args.corruptions, "--corruptions")
    chosen = laddering.select(task, names)
    folder = results.task_dir(Path(args.out), task.name)
    _writable_folder(folder, "--out")
    data = load_data(Job(task=args.task, model="ladder", budget=args.budget, data_dir=args.data_dir,
                         cache_dir=args.cache_dir))  # fmt: skip
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # bitwise reproducible CPU numerics, as `run` by default
    try:
        result = laddering.run_ladder(task, data, budget, args.budget, seeds, chosen,
                                      progress=lambda line: print(line, file=sys.stderr))  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    paths = laddering.write(result, folder)
    if args.update_readme:
        laddering.update_readme(task, result, Path(args.out))
    print(laddering.sees_table(result), end="")
    print(f"ladder in {paths['md']}", file=sys.stderr)
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    if args.gpu_check:
        from aebench import gpu_check

        return gpu_check.main(Path(args.report), Path(args.cache_dir))
    report, ready = checkup.render(checkup.gather(Path(args.cache_dir)))
    print(report)
    return 0 if ready else EXIT_FAILED_RUN


COMMANDS = {
    "run": cmd_run,
    "list": cmd_list,
    "leaderboard": cmd_leaderboard,
    "report": cmd_report,
    "compare": cmd_compare,
    "claims": cmd_claims,
    "doctor": cmd_doctor,
    "job": cmd_job,
    "ladder": cmd_ladder,
    "status": cmd_status,
    "grid": cmd_grid,
}

if __name__ == "__main__":
    sys.exit(main())
