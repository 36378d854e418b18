"""Experiment tracking (`aebench run --track`): what TensorBoard and MLflow hold, read back with their own readers."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient
from PIL import Image
from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2
from tensorboard.util import tensor_util

from aebench import results
from aebench.cli import main
from aebench.runner import Job, run_job
from aebench.tracking import TensorBoardTracker, run_params
from toy import spec

SEEDS = (0, 1)


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    """Two seeds of the toy model on the toy task with pictures, logged to both trackers by the command line."""
    out = tmp_path_factory.mktemp("tracked")
    code = main(
        ["run", "--task", spec("PictureToyTask"), "--models", spec("ToyAE"), "--seeds", ",".join(map(str, SEEDS)),
         "--out", str(out), "--cache-dir", str(out / "cache"), "--no-progress", "--track", "tensorboard,mlflow"]
    )  # fmt: skip
    assert code == 0
    folder = results.task_dir(out, "toy-pictures")
    records = {seed: results.load_record(folder / "records" / f"toy-ae-smoke-seed{seed}.json") for seed in SEEDS}
    return out, folder, records


def toy_learning_rates(steps: int) -> list[float]:
    """The toy model's schedule, step by step: Adam at 1e-2, LinearLR from 1.0 to 0.1 of it over the run."""
    optimizer = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=1e-2)
    scheduler = torch.optim.lr_scheduler.LinearLR(optimizer, 1.0, 0.1, steps)
    rates = []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


def step_losses(record) -> list[float]:
    """What each step returned: with 40 steps the record's loss history has windows of one step."""
    assert record["loss_history"]["every"] == 1
    return record["loss_history"]["losses"]["loss"]


def tensorboard_run(folder, seed) -> EventAccumulator:
    """The run as TensorBoard's server loads it (every summary a tensor; a restart drops the later steps)."""
    events = EventAccumulator(str(folder / "tensorboard" / f"toy-ae-smoke-seed{seed}"), size_guidance={"tensors": 0})
    return events.Reload()


def tensor_series(events: EventAccumulator, tag: str) -> tuple[list[int], list[float]]:
    series = events.Tensors(tag)
    return [e.step for e in series], [float(tensor_util.make_ndarray(e.tensor_proto)) for e in series]


def session_end(events: EventAccumulator) -> int:
    """The status of the run's HParams session: 1 success, 2 failure."""
    content = events.SummaryMetadata("_hparams_/session_end_info").plugin_data.content
    return plugin_data_pb2.HParamsPluginData.FromString(content).session_end_info.status


def test_tensorboard_holds_each_steps_losses_rates_final_metrics_params_and_picture(tracked):
    _, folder, records = tracked
    for seed in SEEDS:
        record = records[seed]
        assert "warnings" not in record  # a failing tracker would have said so here
        assert record["tracking"]["tensorboard"]["log_dir"] == str(folder / "tensorboard" / f"toy-ae-smoke-seed{seed}")
        events = tensorboard_run(folder, seed)
        steps, losses = tensor_series(events, "loss/loss")
        assert steps == list(range(1, 41))
        assert losses == step_losses(record)  # float64: exactly what the step returned
        assert tensor_series(events, "lr/model")[1] == toy_learning_rates(40)
        for name in ("mean_error", "mse"):
            assert tensor_series(events, f"metrics/{name}") == ([40], [record["metrics"][name]["value"]])

        start = plugin_data_pb2.HParamsPluginData.FromString(
            events.SummaryMetadata("_hparams_/session_start_info").plugin_data.content
        ).session_start_info
        params = {key: getattr(value, value.WhichOneof("kind")) for key, value in start.hparams.items()}
        assert params["config.lr"] == record["model"]["config"]["lr"] == 1e-2
        assert params["config.latent_dim"] == record["model"]["config"]["latent_dim"] == 2
        assert params["budget.steps"] == 40 and params["seed"] == seed
        assert params == run_params(record)
        assert session_end(events) == 1  # STATUS_SUCCESS

        (image,) = events.Tensors("samples")
        width, height, png = tensor_util.make_ndarray(image.tensor_proto)  # the image plugin's tensor
        drawn = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
        saved = np.asarray(Image.open(folder / "samples" / f"toy-ae-smoke-seed{seed}.png").convert("RGB"))
        assert image.step == 40 and (width, height) == (b"4", b"8") and np.array_equal(drawn, saved)


def test_mlflow_holds_one_run_per_seed_in_the_tasks_experiment(tracked):
    out, folder, records = tracked
    client = MlflowClient(tracking_uri=(out / "mlruns").resolve().as_uri())
    experiment = client.get_experiment_by_name("toy-pictures")
    runs = {run.data.tags["aebench.run"]: run for run in client.search_runs([experiment.experiment_id])}
    assert sorted(runs) == [f"toy-ae-smoke-seed{seed}" for seed in SEEDS]
    for seed in SEEDS:
        record, run = records[seed], runs[f"toy-ae-smoke-seed{seed}"]
        assert record["tracking"]["mlflow"]["run_id"] == run.info.run_id
        assert run.info.status == "FINISHED" and run.info.run_name == f"toy-ae-smoke-seed{seed}"
        assert run.data.tags["aebench.identity"] == record["identity"]["hash"]
        history = client.get_metric_history(run.info.run_id, "loss/loss")
        assert [m.step for m in history] == list(range(1, 41))
        assert [m.value for m in history] == step_losses(record)
        assert [m.value for m in client.get_metric_history(run.info.run_id, "lr/model")] == toy_learning_rates(40)
        for name in ("mean_error", "mse"):
            assert run.data.metrics[f"metrics/{name}"] == record["metrics"][name]["value"]
        params = run.data.params
        assert float(params["config.lr"]) == record["model"]["config"]["lr"]
        assert int(params["config.latent_dim"]) == record["model"]["config"]["latent_dim"]
        assert params == {key: str(value) for key, value in run_params(record).items()}
        (picture,) = client.list_artifacts(run.info.run_id, "samples")
        local = client.download_artifacts(run.info.run_id, picture.path, str(out / f"download{seed}"))
        assert open(local, "rb").read() == (folder / "samples" / f"toy-ae-smoke-seed{seed}.png").read_bytes()


def job(tmp_path, model="ToyAE", **kwargs) -> Job:
    return Job(task=spec("PictureToyTask"), model=spec(model), out_dir=str(tmp_path / "out"),
               cache_dir=str(tmp_path / "cache"), **kwargs)  # fmt: skip


def test_a_tracker_failing_mid_run_loses_nothing_of_the_record(tmp_path, monkeypatch, tracked):
    logged = TensorBoardTracker.log_metrics

    def full_disk(self, metrics, step):
        if step == 20:
            raise OSError(28, "No space left on device")
        logged(self, metrics, step)

    monkeypatch.setattr(TensorBoardTracker, "log_metrics", full_disk)
    record = run_job(job(tmp_path, track=("tensorboard", "mlflow")), progress=False)
    untracked = tracked[2][0]
    assert record["status"] == "ok"
    assert record["warnings"] == [
        "tracking: tensorboard failed to log step 20 (OSError: [Errno 28] No space left on device); "
        "nothing more was logged to it for this run"
    ]
    for key in ("metrics", "final_losses", "loss_history"):  # the same numbers as a run that tracked nothing
        assert record[key] == untracked[key]
    assert results.load_record(job(tmp_path).record_path)["warnings"] == record["warnings"]
    folder = results.task_dir(tmp_path / "out", "toy-pictures")
    events = tensorboard_run(folder, 0)
    assert tensor_series(events, "loss/loss")[0] == list(range(1, 20))
    assert session_end(events) == 2  # STATUS_FAILURE: its files were closed when it failed
    mlflow_run = record["tracking"]["mlflow"]["run_id"]
    client = MlflowClient(tracking_uri=record["tracking"]["mlflow"]["tracking_uri"])
    assert len(client.get_metric_history(mlflow_run, "loss/loss")) == 40  # the other tracker went on


def test_an_untracked_run_records_the_same_numbers(tmp_path, tracked):
    record = run_job(job(tmp_path), progress=False)
    assert "tracking" not in record and not (tmp_path / "out" / "mlruns").exists()
    for key in ("metrics", "final_losses", "loss_history", "identity"):  # tracking is not part of what was run
        assert record[key] == tracked[2][0][key]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--track", "wandb"], "--track: unknown tracker 'wandb' (choose tensorboard or mlflow)"),
        (["--track", "mlflow"], "--track mlflow: the mlflow package is not installed"),
        (["--track", "tensorboard", "--track-uri", "sqlite:///x.db"], "--track-uri is MLflow's tracking URI"),
    ],
)
def test_a_tracker_that_cannot_run_is_bad_input_before_any_training(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow raises ImportError, as when not installed
    argv = ["run", "--task", spec("PictureToyTask"), "--models", spec("ToyAE"), "--out", str(tmp_path / "out")]
    assert main([*argv, *args]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"aebench: error: {message}") and error.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_a_resumed_run_continues_its_tracker_runs(tmp_path, tracked):
    def interrupt_at_26(step, losses):
        if step == 26:  # after the checkpoint at step 20: steps 21 to 27 are logged twice, by both processes
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_job(job(tmp_path, track=("tensorboard", "mlflow")), progress=False, on_step=interrupt_at_26)
    record = run_job(job(tmp_path, track=("tensorboard", "mlflow"), resume=True), progress=False)
    uninterrupted = tracked[2][0]
    assert record["resumed"] and record["loss_history"] == uninterrupted["loss_history"]

    folder = results.task_dir(tmp_path / "out", "toy-pictures")
    events = tensorboard_run(folder, 0)  # TensorBoard drops the interrupted process's steps after the checkpoint
    assert tensor_series(events, "loss/loss") == (list(range(1, 41)), step_losses(uninterrupted))
    assert tensor_series(events, "lr/model")[1] == toy_learning_rates(40)

    client = MlflowClient(tracking_uri=record["tracking"]["mlflow"]["tracking_uri"])
    (run,) = client.search_runs([record["tracking"]["mlflow"]["experiment_id"]])  # the interrupted run, continued
    assert run.info.run_id == record["tracking"]["mlflow"]["run_id"] and run.info.status == "FINISHED"
    history = [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "loss/loss")]
    assert len(history) == 47 and sorted(set(history)) == list(zip(range(1, 41), step_losses(uninterrupted)))


def test_a_failed_run_ends_its_tracker_runs_as_failed(tmp_path):
    record = run_job(job(tmp_path, model="NaNAE", track=("tensorboard", "mlflow")), progress=False)
    assert record["status"] == "failed" and "non-finite loss" in record["reason"]
    client = MlflowClient(tracking_uri=record["tracking"]["mlflow"]["tracking_uri"])
    run = client.get_run(record["tracking"]["mlflow"]["run_id"])
    assert run.info.status == "FAILED" and not any(key.startswith("metrics/") for key in run.data.metrics)
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss/loss")] == [1, 2, 3, 4]
    events = EventAccumulator(record["tracking"]["tensorboard"]["log_dir"]).Reload()
    assert session_end(events) == 2  # STATUS_FAILURE
