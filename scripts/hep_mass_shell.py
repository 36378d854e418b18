"""The mass-shell dissection of tasks/hep_turbosim/README.md ("Where the Rec KL comes from"): trains each model as
`aebench run` does (its record goes to a scratch folder), keeps the detector-level events x̃ it generates for the
test split, and prints the electron's m² percentiles, where m_W(lep) falls, and the KL of m_W(lep) and of the five
masses (Rec) as generated, with the electron put on its mass shell (E := |p|), and with the four jets too; then the
same KL for the true events with their electron energy jittered.

    python scripts/hep_mass_shell.py turbo-sim regression --budget paper-cpu --seed 0
"""

from __future__ import annotations

import argparse
import tempfile

import numpy as np

from aebench.metrics.physics import binned_kl
from aebench.runner import Job, run_job
from aebench.tasks.hep_turbosim import HepTurboSim
from aebench.tasks.hep_turbosim.reconstruct import MASS_RANGES, reconstruct_masses

W_BIN = (74.0, 83.0)  # GeV: the KL histogram's bin that holds m_W


def mass2(p4: np.ndarray) -> np.ndarray:
    return p4[:, 3] ** 2 - (p4[:, :3] ** 2).sum(axis=1)


def on_shell(x: np.ndarray, jets: bool) -> np.ndarray:
    """x with E := |p| for the electron (and the four jets): the detector's particles are massless."""
    x = x.copy()
    for start in (0, 8, 12, 16, 20) if jets else (0,):
        x[:, start + 3] = np.sqrt((x[:, start : start + 3] ** 2).sum(axis=1))
    return x


def kl_per_mass(true_masses: np.ndarray, x: np.ndarray) -> np.ndarray:
    masses = reconstruct_masses(x)
    edges = [np.linspace(*MASS_RANGES[i], 21) for i in range(5)]
    return np.array([float(binned_kl(true_masses[:, i : i + 1], masses[:, i : i + 1], edges[i])[0]) for i in range(5)])


def row(name: str, true_masses: np.ndarray, x: np.ndarray) -> str:
    m_w = reconstruct_masses(x)[:, 0]
    kl = kl_per_mass(true_masses, x)
    m2 = " / ".join(f"{v:,.0f}" for v in np.percentile(mass2(x[:, 0:4]), [5, 50, 95]))
    return (
        f"| {name} | {m2} | {np.mean((m_w >= W_BIN[0]) & (m_w < W_BIN[1])):.2f} | {np.mean(m_w < 20):.2f} | "
        f"{kl[0]:.3f} | {kl.sum():.2f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--budget", default="paper-cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    generated: dict[str, np.ndarray] = {}
    true: dict[str, np.ndarray] = {}
    scored = HepTurboSim.generated_events

    def keep(task, model, data, n):  # the events `evaluate` scores (its first call; the samples' picture follows)
        events = scored(task, model, data, n)
        generated.setdefault(model.name, events["x"])
        true.setdefault("x", task.test_events(data, n)["x"])
        return events

    HepTurboSim.generated_events = keep
    with tempfile.TemporaryDirectory() as scratch:
        for model in args.models:
            job = Job(task="hep-turbosim", model=model, budget=args.budget, seed=args.seed, out_dir=scratch)
            record = run_job(job, progress=False)
            print(f"{model}: {record['status']} in {record['wall_time_s']:.0f} s")
    HepTurboSim.generated_events = scored

    true_masses = reconstruct_masses(true["x"])
    print(f"\n{len(true['x'])} test events")
    print("| | m_e² 5th / 50th / 95th pct. (GeV²) | m_W(lep) in [74, 83) | below 20 GeV | KL m_W(lep) | KL Rec |")
    print("|---|---|---|---|---|---|")
    print(row("true events", true_masses, true["x"]))
    for name, x in generated.items():
        jets = ", ".join(f"{np.median(mass2(x[:, s : s + 4])):,.0f}" for s in (8, 12, 16, 20))
        print(f"{name}: median m² of jets 1–4 {jets} GeV²")
    for name, x in generated.items():
        print(row(f"{name}, as generated", true_masses, x))
        print(row(f"{name}, electron on its shell", true_masses, on_shell(x, jets=False)))
        print(row(f"{name}, electron and jets on their shell", true_masses, on_shell(x, jets=True)))
    rng = np.random.default_rng(0)
    for jitter in (0.005, 0.01, 0.02, 0.05):
        x = true["x"].copy()
        x[:, 3] *= 1 + jitter * rng.standard_normal(len(x))
        kl = kl_per_mass(true_masses, x)[0]
        print(f"true events, electron energy × (1 + {jitter:g}·N(0, 1)): KL m_W(lep) {kl:.3f}")


if __name__ == "__main__":
    main()
