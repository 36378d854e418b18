"""Data of cdp-twin: the simulated channel's codes (embedded default, cached), or the published Indigo CDP images.

Both give `TaskData` whose splits hold "x" (printed and scanned codes, float32 (N, 1, H, W) in [0, 1], 1 = white)
and "z" (their binary templates on the same pixel grid, float32 (N, 1, H, W) in {0, 1}, 0 = ink), pixel-aligned.
`info["symbol_size"]` is the side of one template symbol in pixels; crops start on a symbol boundary.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from aebench import cache
from aebench.errors import AebenchError
from aebench.hashing import content_hash
from aebench.model import DataSpec
from aebench.task import TaskData

from .channel import ChannelConfig, channel_rng, print_and_scan, random_templates, simulate, template_rng, upsample

# Bump when channel.py changes what it generates: cached data of an older version are then not reused.
CHANNEL_VERSION = "2"  # 2: symbols need not divide the crop; defaults fitted to the paper's row
IMAGE_SUFFIXES = (".png", ".tif", ".tiff")


# --- the simulated channel ----------------------------------------------------------------------------------------
def channel_key(config: ChannelConfig) -> str:
    """sha256 of the channel config and code version: equal keys mean equal generated data."""
    return cache.key_of({"code": CHANNEL_VERSION, "config": dataclasses.asdict(config)})


def test_prints(config: ChannelConfig, n: int, print_index: int) -> torch.Tensor:
    """Print `print_index` of the first n test templates of the simulated channel, (n, 1, H, W) in [0, 1]: print 0
    is the data's own, 1 the "channel noise floor" reprint, 2, 3, ... further independent prints."""
    symbols = random_templates(config.n_test, config, template_rng(config, "test"))[:n]
    codes = print_and_scan(symbols, config, channel_rng(config, "test", print_index))
    return torch.from_numpy(codes.astype(np.float32) / np.float32(2**config.bits - 1)).unsqueeze(1)


def load_simulated(config: ChannelConfig, cache_dir: Path) -> TaskData:
    """The channel's train and test pairs, generated once and cached under `cache_dir` by the config's hash."""
    key = channel_key(config)

    def generate() -> tuple[dict[str, np.ndarray], dict]:
        arrays = {}
        for split in ("train", "test"):
            symbols, codes = simulate(config, split)
            arrays[f"{split}_symbols"], arrays[f"{split}_codes"] = symbols[:, 1:-1, 1:-1], codes  # margin cut off
        return arrays, {}

    names = [f"{split}_{kind}" for split in ("train", "test") for kind in ("symbols", "codes")]
    arrays = cache.cached(Path(cache_dir) / f"cdp-twin-{key[:16]}.npz", key, generate, names=names,
                          what="cdp-twin").arrays  # fmt: skip
    levels = 2**config.bits - 1
    splits = {
        split: {
            "x": torch.from_numpy(arrays[f"{split}_codes"].astype(np.float32) / np.float32(levels)).unsqueeze(1),
            "z": torch.from_numpy(
                upsample(arrays[f"{split}_symbols"], config.symbol_size, config.image_size).astype(np.float32)
            ),
        }
        for split in ("train", "test")
    }
    for split in splits.values():
        split["z"] = split["z"].unsqueeze(1)  # (N, 1, H, W)
    return _task_data(
        splits["train"],
        splits["test"],
        source="embedded: simulated printing–imaging channel (channel.py)",
        info={
            "symbol_size": config.symbol_size,
            "normalisation": f"x = scanner code / {levels} ({config.bits}-bit); z = template, 1 paper, 0 ink",
            "channel": {**dataclasses.asdict(config), "code_version": CHANNEL_VERSION, "hash": key[:12]},
        },
    )


# --- the published Indigo images ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class IndigoConfig:
    crop_size: int = 64  # scan pixels per side; crops start on symbol boundaries and never overlap
    crops_per_code: int = 8  # at most; drawn at random (split_seed) from the grid of crops that fit
    test_fraction: float = 0.2  # of the templates; all codes of a template fall in the same split
    split_seed: int = 0
    symbol_size: int | None = None  # scan pixels per symbol; None: the code/template size ratio, or inferred


@dataclass
class Pair:
    """One template and its printed codes (one per print folder that has it)."""

    name: str
    template: Path
    codes: list[Path]


def load_indigo(data_dir: Path, config: IndigoConfig | None = None) -> TaskData:
    """Aligned crops of templates and their printed codes from an Indigo-style folder (layouts in README.md)."""
    config = config or IndigoConfig()
    data_dir = Path(data_dir).expanduser()
    if not data_dir.is_dir():
        raise AebenchError(f"cdp-twin: data directory {data_dir} does not exist")
    layout, pairs = find_pairs(data_dir)
    if len(pairs) < 2:
        raise AebenchError(f"cdp-twin: {data_dir} holds {len(pairs)} template(s) with codes; need at least 2")
    order = np.random.default_rng(config.split_seed).permutation(len(pairs))
    n_test = min(len(pairs) - 1, max(1, round(config.test_fraction * len(pairs))))
    test_names = {pairs[i].name for i in order[:n_test]}
    rng = np.random.default_rng([config.split_seed, 1])
    crops: dict[str, dict[str, list[np.ndarray]]] = {"train": {"x": [], "z": []}, "test": {"x": [], "z": []}}
    symbol_sizes, depths = set(), set()
    for pair in pairs:
        template, template_depth = read_gray(pair.template)
        template = binary_template(template, pair.template)
        split = crops["test" if pair.name in test_names else "train"]
        for code_path in pair.codes:
            code, depth = read_gray(code_path)
            depths.add(depth)
            grid, s, phase = template_grid(template, code.shape, config.symbol_size, pair.template, code_path)
            symbol_sizes.add(s)
            if len(symbol_sizes) > 1:
                raise AebenchError(f"cdp-twin: symbol sizes differ between images ({sorted(symbol_sizes)} pixels)")
            for y, x in crop_origins(code.shape, phase, s, config, rng, code_path):
                window = (slice(y, y + config.crop_size), slice(x, x + config.crop_size))
                split["x"].append(code[window].astype(np.float32))
                split["z"].append(grid[window].astype(np.float32))
    train, test = ({k: torch.from_numpy(np.stack(v)).unsqueeze(1) for k, v in crops[s].items()} for s in crops)
    (s,) = symbol_sizes
    return _task_data(
        train,
        test,
        source=f"indigo: {data_dir}",
        info={
            "symbol_size": s,
            "normalisation": "x = code / (2^bits − 1) per file (bits: " + ", ".join(map(str, sorted(depths))) + ")"
            "; z = template > 0.5 (1 paper, 0 ink), upsampled to the code's grid",
            "layout": layout,
            "templates": {"train": len(pairs) - n_test, "test": n_test},
            "codes": sum(len(p.codes) for p in pairs),
            "indigo": dataclasses.asdict(config),
        },
    )


def find_pairs(data_dir: Path) -> tuple[str, list[Pair]]:
    """Templates and their codes, in one of two layouts (README.md); codes without a template are an error.

    - "template folder": a subfolder whose name contains "template" holds the templates; every other folder below
      `data_dir` that holds images (at any depth, skipping names that contain "fake") holds printed codes named as
      their templates (same file stem), e.g. Indigo's templates/0001.png and originals/HPI55_.../dens50/0001.png.
    - "per-template folders": each subfolder holds one image whose stem contains "template" and its codes.
    """
    template_dirs = [d for d in sorted(data_dir.iterdir()) if d.is_dir() and "template" in d.name.lower()]
    if len(template_dirs) > 1:
        names = ", ".join(d.name for d in template_dirs)
        raise AebenchError(f"cdp-twin: {data_dir} has several template folders ({names}); keep one")
    if template_dirs:
        return "template folder", _pairs_by_stem(data_dir, template_dirs[0])
    pairs = []
    for folder in sorted(d for d in data_dir.iterdir() if d.is_dir() and "fake" not in d.name.lower()):
        images = _images_in(folder)
        templates = [p for p in images if "template" in p.stem.lower()]
        if len(templates) != 1:
            raise AebenchError(
                f"cdp-twin: {folder} holds {len(templates)} template images (stem containing 'template'); "
                "expected exactly 1, or a 'templates' folder beside the code folders"
            )
        codes = [p for p in images if p != templates[0]]
        if not codes:
            raise AebenchError(f"cdp-twin: {folder} holds a template but no printed code")
        pairs.append(Pair(folder.name, templates[0], codes))
    if not pairs:
        raise AebenchError(
            f"cdp-twin: {data_dir} has neither a 'templates' folder nor per-template folders of "
            f"{'/'.join(IMAGE_SUFFIXES)} images"
        )
    return "per-template folders", pairs


def _pairs_by_stem(data_dir: Path, template_dir: Path) -> list[Pair]:
    templates = {p.stem: p for p in _images_in(template_dir)}
    if not templates:
        raise AebenchError(f"cdp-twin: template folder {template_dir} holds no {'/'.join(IMAGE_SUFFIXES)} images")
    codes: dict[str, list[Path]] = {stem: [] for stem in templates}
    code_dirs = [
        d
        for d in sorted(data_dir.rglob("*"))
        if d.is_dir() and template_dir not in (d, *d.parents) and "fake" not in str(d.relative_to(data_dir)).lower()
    ]
    for folder in code_dirs:
        for path in _images_in(folder):
            if path.stem not in templates:
                raise AebenchError(f"cdp-twin: code {path} has no template {template_dir / path.stem}.*")
            codes[path.stem].append(path)
    pairs = [Pair(stem, templates[stem], found) for stem, found in sorted(codes.items()) if found]
    if not pairs:
        raise AebenchError(f"cdp-twin: no printed codes found beside {template_dir} (folders of images named as it)")
    return pairs


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def read_gray(path: Path) -> tuple[np.ndarray, int]:
    """A grayscale image as float64 (H, W) in [0, 1], and its bit depth (1, 8 or 16)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()
            mode, array = image.mode, np.array(image)
    except Exception as error:  # PIL raises OSError, ValueError, SyntaxError, ... for broken files
        array, mode = _read_tiff(path, error), None
    if mode in ("I;16", "I;16L", "I;16B", "I;16N") or (mode is None and array.dtype == np.uint16):
        depth = 16
    elif mode == "I" and array.size and 0 <= array.min() and array.max() <= 65535:
        depth = 16  # 16-bit PNGs open as 32-bit "I" in some Pillow versions
    elif mode == "L" or (mode is None and array.dtype == np.uint8):
        depth = 8
    elif mode == "1" or (mode is None and array.dtype == bool):
        depth = 1
    else:
        raise AebenchError(f"cdp-twin: {path} is not a grayscale image of 1, 8 or 16 bits (mode {mode or array.dtype})")
    if array.ndim != 2 or min(array.shape) == 0:
        raise AebenchError(f"cdp-twin: {path} is not a single-channel image (shape {array.shape})")
    return array.astype(np.float64) / (2**depth - 1), depth


def _read_tiff(path: Path, error: Exception | str) -> np.ndarray:
    """TIFFs Pillow cannot decode (some compressions) through tifffile, when installed."""
    if path.suffix.lower() in (".tif", ".tiff"):
        try:
            import tifffile

            array = np.squeeze(tifffile.imread(path))
            if array.size and array.dtype in (np.uint8, np.uint16, np.bool_):
                return array
            error = f"no 1-, 8- or 16-bit image data in it ({array.dtype}, shape {array.shape})"
        except ImportError:
            pass
        except Exception as tiff_error:
            error = tiff_error
    raise AebenchError(f"cdp-twin: cannot read image {path}: {error}") from None


def binary_template(image: np.ndarray, path: Path) -> np.ndarray:
    """(h, w) uint8 in {0, 1}, 1 = paper: of a template's two grey levels the brighter is paper (ink is black).

    A template of one grey level is paper if it is brighter than half the scale.
    """
    levels = np.unique(image)
    if len(levels) > 2:
        raise AebenchError(f"cdp-twin: template {path} is not binary ({len(levels)} grey levels)")
    return (image >= levels[1] if len(levels) == 2 else image > 0.5).astype(np.uint8)


def template_grid(
    template: np.ndarray, code_shape: tuple[int, int], symbol_size: int | None, template_path: Path, code_path: Path
) -> tuple[np.ndarray, int, tuple[int, int]]:
    """The template on the code's pixel grid, the symbol size s, and the (row, column) offset of the symbol grid.

    A template smaller than its code by an integer factor has one pixel per symbol and is upsampled by it. A
    template of the code's size is already on its grid; s is then given or inferred: symbol edges fall on a grid
    of period s, so s is the gcd of the distances between the positions where the template changes value.
    """
    (h, w), (height, width) = template.shape, code_shape
    if (h, w) != (height, width):
        s = height // h
        if height % h or width % w or width // w != s or (symbol_size is not None and symbol_size != s):
            raise AebenchError(
                f"cdp-twin: code {code_path} is {height}×{width} and template {template_path} {h}×{w}: "
                "the code must be the template upsampled by one integer factor (the symbol size)"
            )
        return upsample(template[None], s)[0], s, (0, 0)
    edges = [np.flatnonzero((np.diff(template, axis=axis) != 0).any(axis=1 - axis)) + 1 for axis in (0, 1)]
    if symbol_size is None:
        gaps = np.concatenate([np.diff(e) for e in edges])
        symbol_size = int(np.gcd.reduce(gaps)) if len(gaps) else 0
        if symbol_size < 1:
            raise AebenchError(f"cdp-twin: cannot infer the symbol size of constant template {template_path}")
    phase = tuple(int(e[0] % symbol_size) if len(e) else 0 for e in edges)
    if any(((e - p) % symbol_size).any() for e, p in zip(edges, phase)):
        raise AebenchError(f"cdp-twin: template {template_path} is not a grid of {symbol_size}-pixel symbols")
    return template, symbol_size, phase


def crop_origins(
    shape: tuple[int, int], phase: tuple[int, int], s: int, config: IndigoConfig, rng: np.random.Generator, path: Path
) -> list[tuple[int, int]]:
    """Top-left corners of up to `crops_per_code` non-overlapping crops, each starting on a symbol boundary."""
    stride = math.ceil(config.crop_size / s) * s
    starts = [list(range(p, n - config.crop_size + 1, stride)) for p, n in zip(phase, shape)]
    grid = [(y, x) for y in starts[0] for x in starts[1]]
    if not grid:
        raise AebenchError(f"cdp-twin: code {path} ({shape[0]}×{shape[1]}) is smaller than a {config.crop_size} crop")
    chosen = rng.choice(len(grid), size=min(config.crops_per_code, len(grid)), replace=False)
    return [grid[i] for i in sorted(chosen)]


# --- both ---------------------------------------------------------------------------------------------------------
def _task_data(train: dict, test: dict, *, source: str, info: dict) -> TaskData:
    shape = tuple(train["x"].shape[1:])
    return TaskData(
        train=train,
        test=test,
        spec=DataSpec(shape=shape, kind="image", value_range=(0.0, 1.0), pair_shape=tuple(train["z"].shape[1:])),
        source=source,
        info={
            "split": {"train": len(train["x"]), "test": len(test["x"])},
            **info,
            "sha256": {
                name: content_hash({"x": s["x"], "z": s["z"]})[:12] for name, s in (("train", train), ("test", test))
            },
        },
    )
