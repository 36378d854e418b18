"""The mass-shell dissection of tasks/hep_turbosim/README.md ("Where the Rec KL comes from"): trains each model as
`aebench run` does (its record goes to a scratch folder) and prints its record's details.mass_shell (the task's
`mass_shell` of the detector-level events x̃ it generated for the test split): the electron's m² percentiles, where
m_W(lep) falls, and the KL of m_W(lep) and of the five masses (Rec) as generated, with the electron put on its mass
shell (E := |p|), and with the four jets too; then the same KL for the true test events with their electron energy
jittered.

    python scripts/hep_mass_shell.py turbo-sim regression --budget paper-cpu --seed 0

With `--from-checkpoint RESULTS` it trains nothing: it scores each model's checkpoint of a run still under way in
RESULTS (what `aebench run --resume` continues from), as the runner scores a finished model, and says at which step.

    python scripts/hep_mass_shell.py otus --budget paper-otus --seed 1 --from-checkpoint results
"""

from __future__ import annotations

import argparse
import tempfile

import numpy as np
import torch

from aebench.checkpoints import load_checkpoint, set_rng_state
from aebench.metrics.physics import bin_edges, binned_kl
from aebench.runner import (
    Job,
    budget_of,
    build_model,
    checkpoint_identity,
    get_task,
    load_data,
    make_deterministic,
    resolve_model,
    run_job,
)
from aebench.tasks.hep_turbosim import N_BINS, SHELL_VARIANTS, mass_shell
from aebench.tasks.hep_turbosim.reconstruct import MASS_RANGES, reconstruct_masses

VARIANTS = {"as_generated": "as generated", "electron_on_shell": "electron on its shell",
            "all_on_shell": "electron and jets on their shell"}  # fmt: skip


def rows(name: str, shell: dict) -> list[str]:
    """The table's rows of one model from its `mass_shell` (the record's details.mass_shell)."""
    m2 = " / ".join(f"{round(shell['electron_m2_gev2'][p]):,}" for p in ("p5", "p50", "p95"))  # no "-0"
    out = []
    for variant in SHELL_VARIANTS:
        v = shell[variant]
        shown = m2 if variant == "as_generated" else "0 / 0 / 0"
        out.append(
            f"| {name}, {VARIANTS[variant]} | {shown} | {v['m_w_lep_in_w_bin']:.2f} | {v['m_w_lep_below_20']:.2f} | "
            f"{v['kl_rec']['m_W(lep)']:.3f} | {sum(v['kl_rec'].values()):.2f} |"
        )
    return out


def score_checkpoint(job: Job, task, data) -> dict:
    """details.mass_shell of the model in `job`'s checkpoint, scored as `run_job` scores a finished model."""
    budget = budget_of(task, job.budget)
    model_cls, config = resolve_model(job, task)
    state = load_checkpoint(job.checkpoint_path, checkpoint_identity(job, config, budget))  # the runner's check
    if state is None:
        raise SystemExit(f"no checkpoint {job.checkpoint_path}")
    make_deterministic(torch.device("cpu"), job.cpu_threads)
    model = build_model(model_cls, config, data, budget, torch.device("cpu"))[0]
    model.load_state_dict(state["model"])
    model.eval()
    set_rng_state(state["rng"])  # OTUS's samplers draw their noise from the global generator: the run's own state
    with torch.no_grad():
        evaluation = task.evaluate(model, data, budget, torch.Generator().manual_seed(job.seed))
    print(
        f"{job.model}: checkpoint at step {state['step']} of {budget.steps}; KL Z / X / Rec "
        f"{evaluation.metrics['kl_z']:.2f} / {evaluation.metrics['kl_x']:.2f} / {evaluation.metrics['kl_rec']:.2f}"
    )
    return evaluation.details["mass_shell"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--budget", default="paper-cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--from-checkpoint", metavar="RESULTS", help="score the checkpoints of runs under way there")
    args = parser.parse_args()

    shells = {}
    task = get_task("hep-turbosim", Job.cache_dir)
    with tempfile.TemporaryDirectory() as scratch:
        for model in args.models:
            job = Job(task=task.name, model=model, budget=args.budget, seed=args.seed,
                      out_dir=args.from_checkpoint or scratch)  # fmt: skip
            data = load_data(job)  # the test events the records are scored on
            if args.from_checkpoint:
                shells[model] = score_checkpoint(job, task, data)
                continue
            record = run_job(job, progress=False)
            print(f"{model}: {record['status']} in {record['wall_time_s']:.0f} s")
            shells[model] = record["details"]["mass_shell"]
    true_x = task.test_events(data, min(budget_of(task, job.budget).eval_samples, len(data.test["x"])))["x"]
    true_masses = reconstruct_masses(true_x)
    truth = mass_shell(true_masses, true_x, true_masses)
    low, high = truth["w_bin_gev"]
    print(f"\n{len(true_x)} test events")
    columns = ("m_e² 5th / 50th / 95th pct. (GeV²)", f"m_W(lep) in [{low:g}, {high:g})", "below 20 GeV", "KL m_W(lep)")
    print(f"| | {' | '.join(columns)} | KL Rec |")
    print("|---|---|---|---|---|---|")
    print(rows("true events", truth)[0].replace(", as generated", ""))
    for name, shell in shells.items():
        jets = ", ".join(f"{round(m2):,}" for m2 in shell["jets_median_m2_gev2"].values())
        print(f"{name}: median m² of jets 1–4 {jets} GeV²")
    for name, shell in shells.items():
        print("\n".join(rows(name, shell)))
    edges = bin_edges(MASS_RANGES[:1], N_BINS)
    rng = np.random.default_rng(0)
    for jitter in (0.005, 0.01, 0.02, 0.05):
        x = true_x.copy()
        x[:, 3] *= 1 + jitter * rng.standard_normal(len(x))
        kl = float(binned_kl(true_masses[:, :1], reconstruct_masses(x)[:, :1], edges)[0])
        print(f"true events, electron energy × (1 + {jitter:g}·N(0, 1)): KL m_W(lep) {kl:.3f}")


if __name__ == "__main__":
    main()
