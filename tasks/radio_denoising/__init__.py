"""radio-denoising: recover air-shower radio pulses from noisy antenna traces (Erdmann et al., denoising AE).

A model translates a noisy trace x (N, 1, 500) into a denoised trace, compared with the true signal z. The main
score is the notes' "true reconstruction" accuracy per noise kind (galactic, uniform, cosine): the share of traces
whose denoised maximum lies within 2% of the trace length (10 samples) of the true maximum. Beside it, the
stricter amplitude accuracy: the peak amplitude within 2% and at most 3 samples off. See README.md.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from aebench.errors import AebenchError, NonFiniteOutput
from aebench.metrics import ItemMean, Metric
from aebench.model import DataSpec, Model
from aebench.registry import tasks
from aebench.report import MetricBars, ReportSpec
from aebench.task import Budget, Evaluation, MetricSpec, Task, TaskData

from .claims import CLAIMS, PUBLISHED
from .corruptions import LADDER
from .data import UNKNOWN_KIND, EmbeddedConfig, load_embedded, load_npz
from .simulate import NOISE_KINDS, SimulationConfig

EVAL_BATCH = 500  # traces per translate call
LOCATION_TOLERANCE = 0.02  # the notes' rule: |argmax|ŝ| − argmax|s|| ≤ 2% of the trace length (10 of 500 samples)
PEAK_TOLERANCE = 0.02  # the amplitude rule: |max|ŝ| − max|s|| ≤ 2% of max|s| ...
MAX_SHIFT = 3  # ... and ≤ 3 samples (16.7 ns at 180 MHz) off: the pulse's adjacent lobe counts, nothing farther
BAND_MHZ = SimulationConfig.band_mhz  # the pulses' band (30, 80) MHz, also assumed for radio_data.npz


def _peaks(traces: Tensor) -> tuple[Tensor, Tensor]:
    """Per trace: the maximum of |trace| and its index (the first one on ties), for (N, L) or (N, 1, L)."""
    return traces.flatten(1).double().abs().max(dim=1)


def true_reconstruction(prediction: Tensor, truth: Tensor) -> Tensor:
    """Per trace (bool), the notes' rule: the denoised maximum |ŝ| lies within 2% of the trace length of the true
    maximum |s| (10 samples for 500), and the denoised trace is not all zero.

    Noise-only traces (truth all zero) never count; see `has_signal`.
    """
    peak_pred, at_pred = _peaks(prediction)
    peak_true, at_true = _peaks(truth)
    window = LOCATION_TOLERANCE * truth.shape[-1]
    return ((at_pred - at_true).abs() <= window) & (peak_pred > 0) & (peak_true > 0)


def true_amplitude(prediction: Tensor, truth: Tensor) -> Tensor:
    """Per trace (bool), the amplitude rule: the peak |ŝ| within 2% of the true peak |s| and ≤ 3 samples from it."""
    peak_pred, at_pred = _peaks(prediction)
    peak_true, at_true = _peaks(truth)
    close = (peak_pred - peak_true).abs() <= PEAK_TOLERANCE * peak_true
    return close & ((at_pred - at_true).abs() <= MAX_SHIFT) & (peak_true > 0)


def has_signal(truth: Tensor) -> Tensor:
    """Per trace (bool): the true signal is not all zero; only these enter the accuracy."""
    return truth.flatten(1).abs().amax(dim=1) > 0


def amplitude_spectra(traces: Tensor) -> Tensor:
    """|rfft| of each trace, (N, L // 2 + 1), float64."""
    return torch.fft.rfft(traces.flatten(1).double(), dim=1).abs()


RULES = {"accuracy": true_reconstruction, "amplitude_accuracy": true_amplitude}  # column prefix → per-trace rule


class TraceAccuracy(Metric):
    """% of the traces with a true signal (of one noise kind, or all) whose denoised trace passes `rule`: "accuracy"
    (the notes' location rule, `true_reconstruction`) or "amplitude_accuracy" (`true_amplitude`).
    `update(prediction, truth, kind)` takes (N, 1, L) traces and each trace's noise-kind index."""

    name = "radio-accuracy"
    higher_is_better = True
    description = "% of traces with a signal whose denoised peak passes the rule (location: within 2% of the trace)"

    def __init__(self, rule: str = "accuracy", kind: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if rule not in RULES:
            raise AebenchError(f"radio-accuracy: rule must be one of {sorted(RULES)}, got {rule!r}")
        self.rule, self.kind = rule, kind
        self.add_state("passed", [], dist_reduce_fx="cat")  # per counted trace: 1.0 or 0.0

    def update(self, prediction: Tensor, truth: Tensor, kind: Tensor) -> None:
        rows = has_signal(truth) if self.kind is None else has_signal(truth) & (kind == self.kind)
        self.passed.append(RULES[self.rule](prediction, truth)[rows].double())

    def value(self) -> ItemMean:
        with self.sync_context(should_sync=self._to_sync, should_unsync=self._should_unsync):
            passed = self.gathered("passed")
            if not len(passed):
                raise AebenchError("radio-accuracy: no traces with a signal were given")
            return ItemMean(100.0 * float(passed.mean()), 100.0 * passed)  # per trace: 100 or 0

    def compute(self) -> Tensor:
        return torch.tensor(float(self.value()), dtype=torch.float64)


class TraceMSE(Metric):
    """Mean over traces of each trace's mean squared error (ŝ − s)², in the data's units (noise rms² here)."""

    name = "radio-mse"
    higher_is_better = False
    description = "mean over traces of the per-sample squared error to the true signal"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("squared", [], dist_reduce_fx="cat")  # (N,) per trace

    def update(self, prediction: Tensor, truth: Tensor) -> None:
        self.squared.append(((prediction.double() - truth.double()) ** 2).flatten(1).mean(dim=1))

    def value(self) -> ItemMean:
        with self.sync_context(should_sync=self._to_sync, should_unsync=self._should_unsync):
            squared = self.gathered("squared")
            return ItemMean(float(squared.mean()), squared)

    def compute(self) -> Tensor:
        return torch.tensor(float(self.value()), dtype=torch.float64)


class SpectralError(Metric):
    """Σ (|Ŝ(f)| − |S(f)|)² / Σ |S(f)|² over all traces and rfft bins (None when no trace has a true signal)."""

    name = "radio-spectral-error"
    higher_is_better = False
    description = "relative squared error of the amplitude spectra, summed over traces and frequencies"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("error", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("power", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, prediction: Tensor, truth: Tensor) -> None:
        spectra_true = amplitude_spectra(truth)
        self.error += ((amplitude_spectra(prediction) - spectra_true) ** 2).sum(dim=1).sum()
        self.power += (spectra_true**2).sum(dim=1).sum()

    def compute(self) -> Tensor:
        return self.error / self.power

    def value(self) -> float | None:
        with self.sync_context(should_sync=self._to_sync, should_unsync=self._should_unsync):
            return float(self.error / self.power) if self.power > 0 else None


def trace_accuracy(rule: str, kind: int | None) -> Callable[[], TraceAccuracy]:
    """The metric of one accuracy column: `rule` on the traces of noise kind `kind` (None: all kinds)."""

    def make() -> TraceAccuracy:
        return TraceAccuracy(rule, kind)

    return make


def score(prediction: Tensor, truth: Tensor, kind: Tensor, objects: dict[str, Metric] | None = None) -> Evaluation:
    """All metrics of denoised traces against the true signals; `kind` is each trace's noise kind (-1: unknown).

    accuracy_<kind>, accuracy: % of traces with a true reconstruction (the peak's location, the notes' rule) among
    traces with a signal; amplitude_accuracy_<kind>, amplitude_accuracy: the same for the amplitude rule.
    mse: mean over traces and samples of (ŝ − s)², in noise-rms units (no denoising scores ≈ 1).
    spectral_error: Σ (|Ŝ(f)| − |S(f)|)² / Σ |S(f)|², summed over all traces and rfft bins.
    `details` holds the traces counted, mse and spectral error per noise kind. `objects` are the task's metric
    objects (`RadioDenoising.build_metrics()`, fresh ones when None).
    """
    objects = RadioDenoising.build_metrics() if objects is None else objects
    signal = has_signal(truth)
    squared = ((prediction.double() - truth.double()) ** 2).flatten(1).mean(dim=1)  # (N,)
    spectra_true = amplitude_spectra(truth)
    spectral = ((amplitude_spectra(prediction) - spectra_true) ** 2).sum(dim=1)  # (N,)
    power = (spectra_true**2).sum(dim=1)  # (N,)
    metrics: dict[str, float | None] = {}
    unavailable: dict[str, str] = {}
    details: dict[str, dict] = {}
    for index, name in [*enumerate(NOISE_KINDS), (None, "")]:
        rows = torch.ones_like(signal) if index is None else kind == index
        for rule in RULES:
            column = f"{rule}_{name}" if name else rule
            if (rows & signal).any():
                metrics[column] = objects[column].value_of(prediction, truth, kind)
                continue
            metrics[column] = None
            unlabelled = index is not None and bool((kind == UNKNOWN_KIND).all())
            where = f"and {name} noise" if name else "among the evaluated test traces"
            unavailable[column] = (
                "the data carry no noise-kind labels (radio_data.npz)"
                if unlabelled
                else f"no traces with a signal {where}"
            )
        if rows.any():
            details[name or "all"] = {
                "traces": int(rows.sum()),
                "with_signal": int((rows & signal).sum()),
                "mse": float(squared[rows].mean()),
                "spectral_error": float(spectral[rows].sum() / power[rows].sum()) if signal[rows].any() else None,
            }
    metrics["mse"] = objects["mse"].value_of(prediction, truth)
    metrics["spectral_error"] = objects["spectral_error"].value_of(prediction, truth)
    if metrics["spectral_error"] is None:
        unavailable["spectral_error"] = "every test trace is noise only: no true spectrum to compare with"
    return Evaluation(metrics, unavailable, details={"per_noise_kind": details})


def band_pass(traces: Tensor, sampling_mhz: float, band_mhz: tuple[float, float] = BAND_MHZ) -> Tensor:
    """The classical filter: zero every rfft bin outside 30–80 MHz (brick wall; a pulse inside the band passes
    unchanged, noise outside it is removed)."""
    f = torch.fft.rfftfreq(traces.shape[-1], d=1.0 / sampling_mhz, dtype=torch.float64)
    mask = ((f >= band_mhz[0]) & (f <= band_mhz[1])).double()
    filtered = torch.fft.irfft(torch.fft.rfft(traces.double(), dim=-1) * mask, n=traces.shape[-1], dim=-1)
    return filtered.to(traces.dtype)


@tasks.register("radio-denoising")
class RadioDenoising(Task):
    name = "radio-denoising"
    version = "2"  # 2: simulation version 2 (SNR 1.5–8), the notes' location rule as `accuracy`, amplitude rule
    description = "Denoise air-shower radio traces (500 samples, 180 MHz): true-peak accuracy per noise kind"
    requires = frozenset({"translate"})
    ladder = LADDER
    claims = CLAIMS  # the paper's qualitative claims (claims.py), checked by `aebench claims`
    published = PUBLISHED  # the paper's numbers (claims.py), shown beside ours by `aebench report`
    report = ReportSpec(
        samples="Denoised traces of each model (first seed): noisy input grey, true signal black, denoised red.",
        plots=(
            MetricBars(title="Peaks found per noise kind (%)", metrics=tuple(f"accuracy_{k}" for k in NOISE_KINDS)),
            MetricBars(
                title="Amplitudes found per noise kind (%)",
                metrics=tuple(f"amplitude_accuracy_{k}" for k in NOISE_KINDS),
            ),
        ),
    )
    metrics = (
        *(
            MetricSpec(f"accuracy_{kind}", True, f"Acc. {kind} %", f"% peaks found within 10 samples, {kind} noise",
                       trace_accuracy("accuracy", index))
            for index, kind in enumerate(NOISE_KINDS)
        ),
        MetricSpec("accuracy", True, "Acc. all %", "% peaks found within 10 samples, all test traces with a signal",
                   trace_accuracy("accuracy", None)),
        *(
            MetricSpec(f"amplitude_accuracy_{kind}", True, f"Amp. {kind} %",
                       f"% peaks within 2% and 3 samples, {kind} noise", trace_accuracy("amplitude_accuracy", index))
            for index, kind in enumerate(NOISE_KINDS)
        ),
        MetricSpec("amplitude_accuracy", True, "Amp. all %", "% peaks within 2% and 3 samples, all with a signal",
                   trace_accuracy("amplitude_accuracy", None)),
        MetricSpec("mse", False, "MSE", "per-sample MSE to the true signal, in units of the noise rms squared",
                   TraceMSE),
        MetricSpec("spectral_error", False, "Spectral err.", "relative squared error of the amplitude spectra",
                   SpectralError),
    )  # fmt: skip
    real_data = "radio_data.npz with arrays 'traces' and 'signals' (N, 500), 180 MHz sampling"
    budgets = {
        "smoke": Budget(
            steps=300, batch_size=64, eval_samples=1500, checkpoint_every=300,
            note="CPU smoke test: checks that everything runs; the numbers mean nothing",
        ),
        "quick": Budget(
            steps=3000, batch_size=128, eval_samples=3000, checkpoint_every=1000,
            note="a few minutes on CPU: the ordering of the rows shows; not converged",
        ),
        "paper": Budget(
            steps=30_000, batch_size=128, eval_samples=5000, checkpoint_every=5000,
            note="REFERENCE.md does not state the seed's training length: ~210 epochs of the 18,000 embedded "
            "traces, ~85 of the 45,000 training traces of radio_data.npz; ~45 min on one free CPU core",
        ),
        "paper-cpu": Budget(
            steps=8000, batch_size=128, eval_samples=5000, checkpoint_every=2000,
            note="what a busy shared 2-core CPU finished in about an hour (measured: one run got ~16% of a core): "
            "`paper`'s batch and evaluation, 8,000 of its 30,000 steps (~57 epochs)",
        ),
    }  # fmt: skip

    def __init__(self, cache_dir: Path, embedded: EmbeddedConfig | None = None):
        super().__init__(cache_dir)
        self.embedded = embedded or EmbeddedConfig()

    def load(self, data_dir: Path | None, budget: Budget | None = None) -> TaskData:
        return load_embedded(self.cache_dir, self.embedded) if data_dir is None else load_npz(Path(data_dir))

    def data_spec(self, budget: Budget | None = None) -> DataSpec:
        shape = (1, self.embedded.simulation.n_samples)
        return DataSpec(shape=shape, kind="signal", value_range=(-1.0, 1.0), pair_shape=shape)  # range: data's own

    def evaluate(self, model: Model, data: TaskData, budget: Budget, generator: torch.Generator) -> Evaluation:
        x, z, kind = _eval_split(data, budget)
        return score(denoise(model, x, data), z, kind, self.build_metrics())

    def references(self, data: TaskData, budget: Budget, generator: torch.Generator) -> dict[str, Evaluation]:
        """The noisy trace itself, and a classical 30–80 MHz band-pass filter of it (no learning)."""
        x, z, kind = _eval_split(data, budget)
        return {
            "no denoising (noisy trace)": score(x, z, kind, self.build_metrics()),
            "band-pass 30–80 MHz": score(band_pass(x, data.info["sampling_mhz"]), z, kind, self.build_metrics()),
        }

    def save_samples(self, model: Model, data: TaskData, path: Path, generator: torch.Generator) -> None:
        """Two test traces per noise kind: noisy, true and denoised, around the true peak (matplotlib Agg)."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        x, z, kind = data.test["x"], data.test["z"], data.test["noise_kind"]
        signal = has_signal(z)
        rows = [
            (name, torch.nonzero(signal & (kind == k)).flatten()[:2].tolist()) for k, name in enumerate(NOISE_KINDS)
        ]
        rows = [row for row in rows if row[1]] or [("unknown noise", torch.nonzero(signal).flatten()[:6].tolist())]
        picked = [i for _, indices in rows for i in indices]
        denoised = denoise(model, x[picked], data)
        good, amplitude = true_reconstruction(denoised, z[picked]), true_amplitude(denoised, z[picked])
        ns_per_sample = 1000.0 / data.info["sampling_mhz"]
        columns = max(len(indices) for _, indices in rows)
        figure = Figure(figsize=(4.5 * columns, 2.6 * len(rows)), layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.subplots(len(rows), columns, squeeze=False)
        j = 0
        for r, (name, indices) in enumerate(rows):
            for c in range(columns):
                ax = axes[r, c]
                if c >= len(indices):
                    ax.set_axis_off()
                    continue
                i = indices[c]
                peak = int(z[i, 0].abs().argmax())
                lo, hi = max(0, peak - 60), min(z.shape[-1], peak + 60)
                t = np.arange(lo, hi) * ns_per_sample
                ax.plot(t, x[i, 0, lo:hi], color="0.7", lw=0.8, label="noisy")
                ax.plot(t, z[i, 0, lo:hi], color="k", lw=1.2, label="true")
                ax.plot(t, denoised[j, 0, lo:hi], color="tab:red", lw=1.0, ls="--", label="denoised")
                snr = float(z[i, 0].abs().max())  # in units of the noise rms
                verdict = ("peak found" if good[j] else "peak missed") + (", amplitude ok" if amplitude[j] else "")
                ax.set_title(f"{name} noise, SNR {snr:.1f}: {verdict}", fontsize=9)
                ax.set_xlabel("time / ns", fontsize=8)
                ax.tick_params(labelsize=7)
                j += 1
        axes[0, 0].legend(fontsize=7, loc="upper right")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=90)


def _eval_split(data: TaskData, budget: Budget) -> tuple[Tensor, Tensor, Tensor]:
    """The first `eval_samples` test traces (the embedded test split interleaves the noise kinds)."""
    n = min(budget.eval_samples, len(data.test["x"]))
    return data.test["x"][:n], data.test["z"][:n], data.test["noise_kind"][:n]


def denoise(model: Model, x: Tensor, data: TaskData) -> Tensor:
    """model.translate in batches, as float32 on the CPU; wrong shapes and NaN are clear errors."""
    what = f"{model.name or type(model).__name__}: translate()"
    out = []
    with torch.no_grad():
        for batch in x.split(EVAL_BATCH):
            y = model.translate(batch.to(model.device))
            if tuple(y.shape) != tuple(batch.shape):
                raise AebenchError(f"{what} returned shape {tuple(y.shape)}, expected {tuple(batch.shape)}")
            y = y.detach().float().cpu()
            if not torch.isfinite(y).all():
                raise NonFiniteOutput(f"{what} returned NaN or infinite values")
            out.append(y)
    return torch.cat(out)
