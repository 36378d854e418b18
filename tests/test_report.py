"""The task report (aebench/report.py): its building blocks on hand-made records, and the page in a real browser
(headless Chromium driven by Selenium; skipped where they are missing unless AEBENCH_REQUIRE_BROWSER is set, as CI
sets it after .ci/run installs them)."""

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aebench import leaderboard, report, results
from aebench.claims import Published, published_table
from aebench.cli import main

RESULTS = Path(__file__).resolve().parent.parent / "results"


def record(model, seed, mse, kind="model", history=None, details=None, budget="quick"):
    return {
        "schema_version": 1,
        "kind": kind,
        "status": "ok",
        "reason": None,
        "task": {"name": "t", "version": "1"},
        "model": {"name": model, "config": {}},
        "seed": seed,
        "budget": {"name": budget, "steps": 10, "batch_size": 4, "eval_samples": 8},
        "device": "cpu",
        "data": {"source": "embedded toy", "hash": "abc123"},
        "environment": {"git_commit": "0123456789abcdef", "torch": "2.13.0", "numpy": "2.4", "python": "3.11"},
        "metrics": {
            "mse": {"value": mse, "higher_is_better": False, "label": "MSE"},
            "share_a": {"value": 0.5 + mse, "higher_is_better": True, "label": "Share a"},
        },
        **({"loss_history": history} if history else {}),
        **({"details": details} if details else {}),
    }


RECORDS = [
    record("Real", 0, 0.01, kind="reference"),
    record("ae", 0, 0.20),
    record("ae", 1, 0.22),
    record("vae", 0, 0.30),
]
PAPER = published_table("paper, table 1", ("mse",), {"ae": (0.25,), "Real": (0.02,), "gan": (0.4,)})


def test_the_table_has_a_row_per_leaderboard_row_and_the_papers_numbers_beside_their_model_and_metric():
    header, body, _, unmatched = report.leaderboard_table(RECORDS, PAPER)
    assert [row[0] for row in body] == ["Real", "ae", "vae"]  # the reference row first, one row per model
    mse, paper = header.index("MSE ↓"), header.index("paper MSE")
    assert paper == mse + 1  # beside our column, not at the end
    cells = {row[0]: row for row in body}
    assert cells["ae"][paper] == "0.25" and cells["Real"][paper] == "0.02" and cells["vae"][paper] == ""
    assert cells["ae"][mse].startswith(report.BOLD[0] + "0.2100 ± ")  # the best model, bolded
    assert "paper Share a" not in header  # the paper prints no share
    assert unmatched == ["gan: mse 0.4"]  # a published row that was not run is said, not dropped
    assert header[-2:] == ["params", "status"] and all(len(row) == len(header) for row in body)


def test_published_tables_are_checked_for_their_width():
    assert published_table("s", ("a", "b"), {"m": (1.0, None)}) == (Published(row="m", metric="a", value=1.0,
                                                                               source="s"),)  # fmt: skip
    with pytest.raises(ValueError, match="row m has 1 values for 2 metrics"):
        published_table("s", ("a", "b"), {"m": (1.0,)})


def test_plots_the_records_lack_are_said_missing_and_drawn_where_they_have_the_data(tmp_path):
    missing = report.draw(report.DetailBars(title="worst", path=("per_feature", "kl")), RECORDS)
    assert missing.png is None and missing.missing == "no record keeps details.per_feature.kl"
    unknown = report.draw(report.MetricBars(title="shares", metrics=("share_b",)), RECORDS)
    assert unknown.png is None and "no record has share_b" in unknown.missing
    shares = report.draw(report.MetricBars(title="shares", metrics=("share_a", "share_b")), RECORDS)
    assert shares.png.startswith(b"\x89PNG") and "not recorded: share_b" in shares.caption
    curves, lacking = report.loss_curves(RECORDS)
    assert curves == [] and lacking == ["ae (quick)", "vae (quick)"]
    stems = {id(r): f"{r['model']['name']}-quick-seed{r['seed']}" for r in RECORDS}
    pictures = report.sample_pictures(tmp_path, stems, RECORDS)
    assert [f.missing for f in pictures] == ["no sample picture (looked for samples/ae-quick-seed0.png)",
                                             "no sample picture (looked for samples/vae-quick-seed0.png)"]  # fmt: skip


def test_many_sample_pictures_are_narrowed_together_to_fit_the_report(tmp_path, monkeypatch):
    """Beyond PICTURES_BUDGET bytes the pictures are all downsampled by one factor until they fit; below it they are
    left at their width."""
    (tmp_path / "samples").mkdir()
    noise = np.random.default_rng(0)
    rows = [record(f"m{i}", 0, 0.1) for i in range(6)]
    for row in rows:
        pixels = noise.integers(0, 256, (300, 300, 3), dtype=np.uint8)  # noise: compresses badly, as photographs
        Image.fromarray(pixels).save(tmp_path / "samples" / f"{row['model']['name']}-quick-seed0.png")
    stems = {id(r): f"{r['model']['name']}-quick-seed0" for r in rows}
    wide = report.sample_pictures(tmp_path, stems, rows)
    total = sum(len(f.png) for f in wide)
    assert {Image.open(io.BytesIO(f.png)).width for f in wide} == {300}
    monkeypatch.setattr(report, "PICTURES_BUDGET", total // 3)
    narrow = report.sample_pictures(tmp_path, stems, rows)
    assert sum(len(f.png) for f in narrow) <= total // 3
    widths = {Image.open(io.BytesIO(f.png)).width for f in narrow}
    assert len(widths) == 1 and widths.pop() < 300  # one factor for all
    assert [f.caption for f in narrow] == [f.caption for f in wide]


def test_the_worst_features_are_the_largest_means_over_seeds():
    details = [{"per_feature": {"kl": {"x": 1.0, "y": 5.0, "z": 2.0}}}, {"per_feature": {"kl": {"x": 9.0, "y": 1.0,
               "z": 2.0}}}]  # fmt: skip
    rows = [record("ae", s, 0.2, details=d) for s, d in enumerate(details)] + [record("vae", 0, 0.3)]
    features, series, lacking = report.worst_features(report.DetailBars(title="", path=("per_feature", "kl"), top=2),
                                                      rows)  # fmt: skip
    assert features == ["x", "y"] and series == {"ae": [5.0, 3.0]} and lacking == ["vae"]
    truth = {"per_feature": {"kl": {"x": 0.1, "y": 0.0, "z": 0.0}}}
    both = [record("Truth", 0, 0.0, "reference", details=truth, budget=b) for b in ("quick", "paper")]
    _, series, _ = report.worst_features(report.DetailBars(title="", path=("per_feature", "kl")), both + rows[:1])
    assert list(series) == ["Truth (quick)", "ae (quick)"]  # a reference repeated per budget is shown once


def test_provenance_names_each_extractor_with_its_weights_quality_and_metrics():
    rows = [record("ae", 0, 0.2), record("vae", 0, 0.3)]
    for r in rows:
        extractor = {"name": "digits-ae", "weights": "4d4e4ffc63ae", "quality": {"test_mse": 0.01}, "feature_dim": 8}
        r["metrics"]["fid"] = {"value": 1.0, "higher_is_better": False, "label": "FID", "extractor": extractor}
    header, table = report.extractor_rows(rows)
    assert table == [["digits-ae", "4d4e4ffc63ae", "FID", "test_mse 0.01", "feature_dim 8"]]
    assert report.budget_rows(rows)[1] == [["quick", "10", "4", "8", ""]]


def test_embedded_pictures_are_downsampled_palette_pngs():
    buffer = io.BytesIO()
    Image.new("RGBA", (2000, 500), (10, 200, 30, 255)).save(buffer, format="PNG")
    small = Image.open(io.BytesIO(report.compress_png(buffer.getvalue())))
    assert small.size == (report.MAX_WIDTH, 240) and small.mode == "P"
    assert small.convert("RGB").getpixel((5, 5)) == (10, 200, 30)


def test_photograph_like_pictures_are_embedded_as_jpeg_and_drawings_as_png():
    noise = np.random.default_rng(0).integers(0, 256, (300, 300, 3), dtype=np.uint8)
    blocks = np.kron(np.arange(9, dtype=np.uint8).reshape(3, 3) * 25, np.ones((100, 100), dtype=np.uint8))
    for array, mime in ((noise, "image/jpeg"), (blocks, "image/png")):
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="PNG")
        data, chosen = report.compress_picture(buffer.getvalue())
        assert chosen == mime and Image.open(io.BytesIO(data)).size == (300, 300)


def write_task(folder: Path, records: list[dict]) -> None:
    for r in records:
        stem = (
            f"{r['model']['name']}-quick-seed{r['seed']}"
            if r["kind"] == "model"
            else f"reference-quick-{r['model']['name']}"
        )
        results.save_record(r, folder / "records" / f"{stem}.json")
        if r["kind"] == "model":
            (folder / "samples").mkdir(exist_ok=True)
            Image.new("RGB", (64, 32), (40 * r["seed"], 90, 200)).save(folder / "samples" / f"{stem}.png")


def report_folder(tmp_path: Path) -> Path:
    history = {"every": 1, "steps": [1, 2, 3], "losses": {"reconstruction": [1.0, 0.5, 0.2], "kl": [0.1, 0.2, 0.3]}}
    records = [*RECORDS[:3], record("vae", 0, 0.30, history=history)]
    folder = tmp_path / "t"
    write_task(folder, records)
    return folder


def test_the_page_embeds_every_picture_and_says_what_is_missing(tmp_path):
    folder = report_folder(tmp_path)
    page = report.build("t", folder)
    assert page.count('src="data:image/png;base64,') == 3  # two sample pictures, vae's loss curves
    assert "Missing: no loss history in the records of ae (quick)" in page
    assert 'src="http' not in page and "<script" not in page  # self-contained, nothing to fetch
    assert "abc123" in page and "0123456789ab" in page  # data hash and commit in the provenance
    assert report.build("t", folder) == page  # a view of the records: the same records give the same bytes


def test_provenance_says_the_code_and_time_of_each_process_of_a_resumed_run():
    ok = record("ae", 0, 0.1)
    ok["wall_time_s"] = 100.0
    legacy = ok | {"resumed": True}  # resumed before checkpoints kept the time and the commits
    mixed = ok | {"resumed": True, "resumed_at_step": 20, "git_commits": ["aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"]}
    stopped = ok | {"cpu_time_s": 61.4}  # a process paused (or waiting for a core) for 39 of its 100 seconds
    header, rows = report.provenance_rows([ok, legacy, mixed, stopped], {})
    time_and_code = [[dict(zip(header, row))[column] for column in ("wall time", "commit")] for row in rows]
    assert time_and_code == [
        ["100 s", "0123456789ab"],
        ["≥ 100 s (resumed; earlier processes not timed)", "0123456789ab"],
        ["100 s", "aaaaaaaaaaaa → bbbbbbbbbbbb"],
        ["100 s · CPU 61 s", "0123456789ab"],
    ]


def test_provenance_names_the_cpu_and_its_kernels_fingerprint():
    """Two records of one seed from CPUs that round differently are told apart on the page (aebench.kernels)."""
    new = record("ae", 0, 0.1) | {
        "environment": {"cpu": {"model": "AMD EPYC", "family": "25", "model_number": "17"}},
        "determinism": {"kernel_fingerprint": "673cac305937"},
    }
    older = record("ae", 0, 0.1) | {"device_name": "AMD EPYC"}  # before records named the CPU in full
    moved = new | {"resumed": True, "kernel_fingerprints": [None, "0123456789ab", "673cac305937"]}
    header, rows = report.provenance_rows([new, older, record("ae", 0, 0.1), moved], {})
    assert [dict(zip(header, row))["CPU · kernels"] for row in rows] == [
        "AMD EPYC 25/17 · 673cac305937",
        "AMD EPYC",
        "–",
        "AMD EPYC 25/17 · – → 0123456789ab → 673cac305937",  # resumed on other CPUs: their kernels in turn
    ]


def test_a_damaged_sample_picture_is_said_on_the_page_and_the_rest_still_shows(tmp_path):
    folder = report_folder(tmp_path)
    (damaged,) = [p for p in sorted((folder / "samples").glob("*.png"))][:1]
    damaged.write_bytes(b"\x89PNG not a picture")
    page = report.build("t", folder)
    assert f"Missing: samples/{damaged.name} is not a readable picture" in page
    assert page.count('src="data:image/png;base64,') == 2  # the other sample picture and the loss curves


def test_report_command_writes_the_page_and_names_a_task_without_records(tmp_path, capsys):
    assert main(["report", "mnist-sharpness", "--out", str(tmp_path)]) == 2
    assert "no records of task mnist-sharpness" in capsys.readouterr().err
    (tmp_path / "latent-lines" / "records").mkdir(parents=True)
    shutil.copy(RESULTS / "latent-lines" / "records" / "ae-quick-seed0.json", tmp_path / "latent-lines" / "records")
    assert main(["report", "latent-lines", "--out", str(tmp_path)]) == 0
    page = (tmp_path / "latent-lines" / "report.html").read_text(encoding="utf-8")
    assert "Missing: no sample picture" in page and "ACAI interpolates" in page  # no samples/ copied; the claims


# --- a real browser ---------------------------------------------------------------------------------------------
def chromium():
    """A headless Chromium session (Selenium with the system's chromedriver), or a skip naming what is missing."""
    missing = [p for p in ("/usr/bin/chromium", "/usr/bin/chromedriver") if not Path(p).exists()]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("the selenium package")
    if missing:
        if os.environ.get("AEBENCH_REQUIRE_BROWSER"):
            pytest.fail(f"AEBENCH_REQUIRE_BROWSER is set but {', '.join(missing)} is missing")
        pytest.skip(f"no browser: {', '.join(missing)} missing (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,2400"):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def check_in_browser(driver, page: Path, rows: list[str], screenshot: Path) -> None:
    driver.set_window_size(1280, 1000)  # the page's height is measured below, not the last page's window
    driver.get(page.resolve().as_uri())
    images = driver.execute_script("return [...document.images].map(i => [i.alt, i.complete, i.naturalWidth])")
    assert images and all(complete and width > 0 for _, complete, width in images), images
    shown = driver.execute_script(
        "return [...document.querySelectorAll('#leaderboard + .scroll tbody tr')].map(r => r.cells[0].innerText)"
    )
    assert shown == rows
    errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []
    height = driver.execute_script("return document.body.scrollHeight")
    driver.set_window_size(1280, min(height + 150, 12000))  # the whole page in one screenshot
    driver.save_screenshot(str(screenshot))
    print(f"screenshot of {page}: {screenshot}")


@pytest.mark.slow
def test_reports_open_in_chromium_with_every_image_decoded_and_a_row_per_model(tmp_path):
    folder = report_folder(tmp_path)
    report.write_report(tmp_path, "t")
    committed = sorted(RESULTS.glob("*/report.html"))
    driver = chromium()
    try:
        check_in_browser(driver, folder / "report.html", ["Real", "ae", "vae"], tmp_path / "t.png")
        for page in committed:
            table, _ = leaderboard.summarise(results.load_records(page.parent))
            check_in_browser(driver, page, list(table["model"]), tmp_path / f"{page.parent.name}.png")
    finally:
        driver.quit()
    assert len(committed) == len([p for p in RESULTS.iterdir() if (p / "records").is_dir()])


def test_committed_reports_are_kept_small():
    sizes = {p.parent.name: p.stat().st_size for p in RESULTS.glob("*/report.html")}
    assert sizes and max(sizes.values()) < 1_500_000, sizes
