"""cdp-twin: a digital twin of the printing–imaging channel of copy detection patterns, both ways (TURBO paper).

x is a printed and scanned code, z its binary template t. A model translates both ways: translate_back(t) = x̃,
the digital twin's print of a template, and translate(x) = t̃, the template estimated from a print. Scored as the
TURBO paper's table: FID of x̃ against x and of t̃ against t, the Hamming distance between t and the Otsu-binarised
t̃, and the MSE and SSIM between x and x̃; the reference row "W/O processing" compares t with x directly. One more
column, not in the paper, scores the twins' print texture (texture.py), which a blurred or average print cannot
win. See README.md for the channel model and the protocol.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from aebench.errors import AebenchError, NonFiniteOutput
from aebench.images import save_png
from aebench.metrics import FrechetInceptionDistance, HammingOtsu, MeanSquaredError, StructuralSimilarity
from aebench.model import DataSpec, Model
from aebench.registry import extractors, tasks
from aebench.task import Budget, Evaluation, MetricSpec, Task, TaskData
from aebench.trained_features import TrainedExtractorConfig, TrainedImageExtractor

from .channel import ChannelConfig
from .claims import CLAIMS, PUBLISHED
from .corruptions import LADDER
from .data import IndigoConfig, channel_key, load_indigo, load_simulated, test_prints
from .texture import LocalTextureW1

EVAL_BATCH = 250  # pairs per model call: bounded memory on any device
EXTRACTOR = TrainedExtractorConfig(
    objective="autoencoder", channels=(8, 16, 32), feature_dim=128, epochs=4, batch_size=32, lr=2e-3, seed=0
)
# CPU budgets narrow every model that has these fields (the translation baselines' generators and critics).
NARROW = {"hidden_channels": 16, "n_blocks": 3}
EXTRACTOR_PAIRS = 2000  # the extractor trains on the first 2,000 training prints and their templates (CPU time)


@extractors.register("cdp-ae")
class CdpAutoencoder(TrainedImageExtractor):
    name = "cdp-ae"
    description = "bottleneck of a conv auto-encoder trained on the training split's printed codes and templates"


@tasks.register("cdp-twin")
class CdpTwin(Task):
    name = "cdp-twin"
    version = "2"  # 2: channel calibrated to the paper's "without processing" row; texture column
    description = "CDP digital twin: template → printed code (x̃) and printed code → template (t̃), TURBO table"
    requires = frozenset({"translate", "translate_back"})
    ladder = LADDER
    claims = CLAIMS  # the paper's qualitative claims (claims.py), checked by `aebench claims`
    published = PUBLISHED  # the paper's numbers (claims.py), shown beside ours by `aebench report`
    metrics = (
        MetricSpec("fid_twin", False, "FID x̃", "Fréchet distance of twins x̃ = translate_back(t) to prints x, cdp-ae",
                   FrechetInceptionDistance),
        MetricSpec("fid_template", False, "FID t̃", "Fréchet distance of estimates t̃ = translate(x) to t, cdp-ae",
                   FrechetInceptionDistance),
        MetricSpec("hamming", False, "Hamming", "fraction of symbols where the Otsu-binarised t̃ differs from t",
                   HammingOtsu),
        MetricSpec("mse", False, "MSE", "per-pixel MSE between x̃ and x, in [0, 1]", MeanSquaredError),
        MetricSpec("ssim", True, "SSIM", "mean SSIM between x̃ and x (data range 1)", StructuralSimilarity),
        MetricSpec("texture_w1", False, "W₁ texture", "Wasserstein-1 distance between the 3×3 local standard "
                   "deviations of x̃ and of x", LocalTextureW1),
    )  # fmt: skip
    real_data = (
        "Indigo CDP images: a 'templates' folder and folders of printed codes with the same file names "
        "(or one folder per template), 16-bit grayscale PNG/TIFF; see tasks/cdp_twin/README.md"
    )
    budgets = {
        "smoke": Budget(
            steps=30, batch_size=4, eval_samples=256, checkpoint_every=30, model_overrides=NARROW,
            note="CPU smoke test with narrow networks: checks that everything runs; the numbers mean nothing",
        ),
        "quick": Budget(
            steps=400, batch_size=8, eval_samples=1000, checkpoint_every=200, model_overrides=NARROW,
            note="CPU, narrow networks (16 base channels, 3 ResNet blocks), 400 steps of 8 pairs: far from "
            "converged; orderings indicative only",
        ),
        "paper": Budget(
            steps=100_000, batch_size=16, eval_samples=10_000, checkpoint_every=5000,
            note="GPU, the models' own widths. REFERENCE.md gives no CDP training length; 100,000 steps at batch 16 "
            "are ~170 epochs of the Indigo crops (~400 of the embedded 4,000), near the 100 + 100 epochs of the "
            "companion Hubble protocol; evaluation on the whole test split",
        ),
    }  # fmt: skip

    def __init__(
        self,
        cache_dir: Path,
        channel: ChannelConfig | None = None,
        indigo: IndigoConfig | None = None,
        extractor_config: TrainedExtractorConfig | None = None,
        extractor_pairs: int = EXTRACTOR_PAIRS,
    ):
        super().__init__(cache_dir)
        self.channel = channel or ChannelConfig()
        self.indigo = indigo or IndigoConfig()
        self.extractor_config = extractor_config or EXTRACTOR
        self.extractor_pairs = extractor_pairs
        self._extractors: dict[str, CdpAutoencoder] = {}  # by data hash: evaluate and references share

    def load(self, data_dir: Path | None, budget: Budget | None = None) -> TaskData:
        if data_dir is None:
            return load_simulated(self.channel, self.cache_dir / "data")
        return load_indigo(Path(data_dir), self.indigo)

    def data_spec(self, budget: Budget | None = None) -> DataSpec:
        shape = (1, self.channel.image_size, self.channel.image_size)
        return DataSpec(shape=shape, kind="image", value_range=(0.0, 1.0), pair_shape=shape)

    def extractor(self, data: TaskData) -> CdpAutoencoder:
        """One feature space for both FID columns: trained on training prints and templates together."""
        key = data.content_hash()
        if key not in self._extractors:
            n = self.extractor_pairs
            train = torch.cat([data.train["x"][:n], data.train["z"][:n]])
            test = torch.cat([data.test["x"], data.test["z"]])
            self._extractors[key] = CdpAutoencoder.for_images(train, test, self.cache_dir, self.extractor_config)
        return self._extractors[key]

    def evaluate(self, model: Model, data: TaskData, budget: Budget, generator: torch.Generator) -> Evaluation:
        n = min(budget.eval_samples, len(data.test["x"]))
        x, t = data.test["x"][:n], data.test["z"][:n]
        twins, estimates = [], []
        with torch.no_grad():
            for x_batch, t_batch in zip(x.split(EVAL_BATCH), t.split(EVAL_BATCH)):
                twins.append(_output(model, "translate_back", t_batch, data))
                estimates.append(_output(model, "translate", x_batch, data))
        twin, estimate = torch.cat(twins), torch.cat(estimates)
        return self.scores(data, x, t, twin=twin, estimate=estimate, device=model.device)

    def references(self, data: TaskData, budget: Budget, generator: torch.Generator) -> dict[str, Evaluation]:
        """The paper's "W/O processing" row (t̃ := x, x̃ := t); for simulated data also the channel's noise floor."""
        n = min(budget.eval_samples, len(data.test["x"]))
        x, t = data.test["x"][:n], data.test["z"][:n]
        rows = {"without processing (x vs t)": self.scores(data, x, t, twin=t, estimate=x)}
        if data.source.startswith("embedded"):
            reprint = self.reprint(n, data)
            rows["channel noise floor (second print)"] = self.scores(data, x, t, twin=reprint, estimate=None)
        return rows

    def reprint(self, n: int, data: TaskData | None = None) -> Tensor:
        """A second, independent print of the first n test templates of the simulated data: (n, 1, H, W)."""
        if data is not None and data.info["channel"]["hash"] != channel_key(self.channel)[:12]:
            raise AebenchError("cdp-twin: these simulated data come from another channel config than this task's")
        return test_prints(self.channel, n, print_index=1)

    def scores(
        self, data: TaskData, x: Tensor, t: Tensor, twin: Tensor, estimate: Tensor | None, device: str = "cpu"
    ) -> Evaluation:
        """The six columns for prints x, templates t, twins x̃ of t, and estimates t̃ of x (None: not scored)."""
        extractor = self.extractor(data).to(device)  # features on the model's device
        built = self.build_metrics(extractor=extractor, data_range=1.0)  # prints and twins lie in [0, 1]
        fid_twin = built["fid_twin"]
        fid_twin.update(x, real=True)
        fid_twin.update(twin, real=False)
        texture = built["texture_w1"]
        texture.update(x, real=True)
        texture.update(twin, real=False)
        metrics: dict[str, float | None] = {
            "fid_twin": fid_twin.value(),
            "mse": built["mse"].value_of(twin, x),
            "ssim": built["ssim"].value_of(twin, x),
            "texture_w1": texture.value(),
        }
        described = {**extractor.describe(), "n_generated": len(twin), "n_real": len(x)}
        extractors = {"fid_twin": described}
        unavailable = {}
        if estimate is None:
            metrics["fid_template"] = metrics["hamming"] = None
            unavailable = {"fid_template": "no template estimate in this row", "hamming": "no template estimate"}
            extractors["fid_template"] = extractor.describe()  # the column's feature space, so leaderboards align
        else:
            fid_template = built["fid_template"]
            fid_template.update(t, real=True)
            fid_template.update(estimate, real=False)
            metrics["fid_template"] = fid_template.value()
            metrics["hamming"] = symbol_hamming(estimate, t, data.info["symbol_size"], built["hamming"])
            extractors["fid_template"] = {**described, "n_generated": len(estimate), "n_real": len(t)}
        return Evaluation({m.name: metrics[m.name] for m in self.metrics}, unavailable, extractors)

    def save_samples(self, model: Model, data: TaskData, path: Path, generator: torch.Generator) -> None:
        """Eight test pairs, one per column; rows: template t, print x, twin x̃ = translate_back(t), estimate t̃."""
        x, t = data.test["x"][:8], data.test["z"][:8]
        with torch.no_grad():
            rows = [t, x, _output(model, "translate_back", t, data), _output(model, "translate", x, data)]
        save_png(path, _mosaic(rows))


def symbol_means(images: Tensor, symbol_size: int) -> Tensor:
    """(N, 1, H, W) → (N, 1, H // s, W // s) float64: the mean of each whole s × s symbol (partial ones dropped)."""
    h, w = (images.shape[-2] // symbol_size) * symbol_size, (images.shape[-1] // symbol_size) * symbol_size
    return torch.nn.functional.avg_pool2d(images[..., :h, :w].double().cpu(), symbol_size)


def symbol_hamming(estimates: Tensor, templates: Tensor, symbol_size: int, hamming: HammingOtsu | None = None) -> float:
    """Fraction of symbols where the Otsu-binarised estimate differs from the template (HammingOtsu on symbols).

    Each estimate is averaged over every template symbol, then min-max normalised and binarised at its own Otsu
    threshold; templates are constant over a symbol, so their symbol means are their symbols. With one pixel per
    symbol this is HammingOtsu itself. `hamming` is the task's declared object (a new one when None).
    """
    symbols = (symbol_means(templates, symbol_size) > 0.5).double()
    return (HammingOtsu() if hamming is None else hamming).value_of(symbol_means(estimates, symbol_size), symbols)


def _output(model: Model, method: str, inputs: Tensor, data: TaskData) -> Tensor:
    """model.method(inputs) as float32 on the CPU, clamped to [0, 1]; wrong shapes and NaN are clear errors."""
    what = f"{model.name or type(model).__name__}: {method}()"
    out = getattr(model, method)(inputs.to(model.device))
    if tuple(out.shape) != tuple(inputs.shape):
        raise AebenchError(f"{what} returned shape {tuple(out.shape)}, expected {tuple(inputs.shape)}")
    out = out.detach().float().cpu()
    if not torch.isfinite(out).all():
        raise NonFiniteOutput(f"{what} returned NaN or infinite values")
    return out.clamp(*data.spec.value_range)  # x and t share the range [0, 1]


def _mosaic(rows: list[Tensor], pad: int = 2) -> np.ndarray:
    """Rows of images (N, 1, H, W) → one grey array, the images of a row side by side, white gaps between."""
    lines = []
    for row in rows:
        images = row[:, 0].numpy()
        n, h, w = images.shape
        line = np.ones((h + pad, n * (w + pad) + pad), dtype=np.float32)
        for j, image in enumerate(images):
            line[pad:, pad + j * (w + pad) : pad + j * (w + pad) + w] = image
        lines.append(line)
    lines.append(np.ones((pad, lines[-1].shape[1]), dtype=np.float32))
    return np.concatenate(lines)
