"""Every leaderboard column names the metric object that makes it (`MetricSpec.metric`), and a task's evaluation
uses the objects `Task.build_metrics` builds from those declarations (issue 15: one metric layer)."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import typing

import pytest
import torch

from aebench.errors import AebenchError
from aebench.metrics import DataCopying, Metric, Sharpness
from aebench.registry import tasks
from aebench.task import MetricSpec, Task, TaskData


def metric_class(spec: MetricSpec) -> type[Metric]:
    """The class of the object `spec.metric` makes: the class itself, or a factory's return annotation."""
    if inspect.isclass(spec.metric):
        return spec.metric
    return typing.get_type_hints(spec.metric)["return"]


@pytest.mark.parametrize("name", tasks.names())
def test_every_column_names_an_importable_metric_or_says_why_not(name):
    task_cls = tasks.get(name)
    assert task_cls.metrics and len({m.name for m in task_cls.metrics}) == len(task_cls.metrics)
    for spec in task_cls.metrics:
        if spec.metric is None:
            assert spec.no_metric, f"{name}: column {spec.name} declares neither a metric nor why not"
            continue
        assert not spec.no_metric, f"{name}: column {spec.name} declares a metric and a reason for none"
        cls = metric_class(spec)
        assert issubclass(cls, Metric), f"{name}: column {spec.name}: {cls} is not an aebench Metric"
        # A user imports it by its module's name: aebench.metrics, or the task's own metrics module.
        assert getattr(importlib.import_module(cls.__module__), cls.__name__) is cls
        if cls.__module__.startswith("aebench.metrics"):
            assert getattr(importlib.import_module("aebench.metrics"), cls.__name__) is cls


def test_build_metrics_makes_fresh_objects_shared_by_the_columns_of_one_metric(tmp_path):
    task = tasks.get("latent-lines")(tmp_path)
    built = task.build_metrics()
    assert list(built) == ["mean_distance", "smoothness", "mse"]
    assert built["mean_distance"] is built["smoothness"]  # one InterpolationScores makes both columns
    assert type(built["mse"]).__name__ == "MeanSquaredError"
    again = task.build_metrics("mse")
    assert list(again) == ["mse"] and again["mse"] is not built["mse"]


def test_build_metrics_passes_each_factory_the_needs_it_names(tmp_path):
    latent_mnist = tasks.get("latent-mnist")
    task = latent_mnist(tmp_path)
    budget = latent_mnist.budgets["smoke"]
    built = task.build_metrics(n_classes=7, budget=budget, unused="ignored")
    assert list(built) == [m.name for m in task.metrics]
    assert len({id(metric) for metric in built.values()}) == len(built)  # one object per column
    assert built["clustering_accuracy"].n_init == budget.kmeans_inits == 10
    with pytest.raises(TypeError):  # a factory's need that is not given is an error, not a silent default
        task.build_metrics("linear_probe_accuracy")


def test_a_column_without_a_metric_is_a_clear_error_and_one_without_output_has_its_own_object(tmp_path):
    class Timed(Task):
        name = "timed"
        metrics = (
            MetricSpec("sharpness", True, metric=Sharpness),
            MetricSpec("sharpness_unclamped", True, metric=Sharpness),  # the same class, another column's object
            MetricSpec("seconds", False, no_metric="a wall time"),
        )

    with pytest.raises(AebenchError, match="timed: column seconds declares no metric \\(a wall time\\)"):
        Timed(tmp_path).build_metrics("seconds")
    with pytest.raises(AebenchError, match="task timed declares no column nope"):
        Timed.build_metrics("nope")
    built = Timed(tmp_path).build_metrics()
    assert list(built) == ["sharpness", "sharpness_unclamped"]
    assert built["sharpness"] is not built["sharpness_unclamped"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    ["cdp-twin", "galaxy-generation", "hep-turbosim", "latent-lines", "latent-mnist", "mnist-sharpness",
     "radio-denoising"],
)  # fmt: skip
def test_reference_rows_are_the_values_of_the_objects_the_task_built(name, smoke_cache, monkeypatch):
    """Each number of a reference row is `value()` (its `output` entry) of an object of the column's declared
    metric that `build_metrics` returned. (hubble2webb's rows take 20 s: its numbers are checked by its own tests.)"""
    task = tasks.get(name)(smoke_cache)
    built: list[dict[str, Metric]] = []

    def recording(cls, *names, **needs):
        built.append(Task.build_metrics.__func__(cls, *names, **needs))
        return built[-1]

    monkeypatch.setattr(type(task), "build_metrics", classmethod(recording))
    budget = dataclasses.replace(task.budgets["smoke"], eval_samples=24)
    if name == "latent-mnist":  # 400 training digits and 3 k-means starts keep it a second
        budget = dataclasses.replace(budget, kmeans_inits=3)
    data = task.load(None)
    if name in ("latent-lines", "latent-mnist", "radio-denoising"):  # the others' extractors fit the whole data
        data = TaskData({k: v[:400] for k, v in data.train.items()}, data.test, data.spec, data.source, data.info)
    rows = task.references(data, budget, torch.Generator().manual_seed(0))
    assert rows and built
    for label, evaluation in rows.items():
        assert set(evaluation.metrics) == {m.name for m in task.metrics}, label
        for column, value in evaluation.metrics.items():
            if value is None:
                assert column in evaluation.unavailable
                continue
            spec = task.metric(column)
            cls = metric_class(spec)
            if cls is DataCopying:  # fitted and kept by aebench.metrics.copying_evaluation, shared by the tasks
                continue
            used = [metric for objects in built for metric in objects.values() if metric.update_called]
            made = [metric.value() for metric in used if isinstance(metric, cls)]
            made = [v if spec.output is None else v[spec.output] for v in made]
            made = [v if spec.scale == 1 else spec.scale * v for v in made]  # "FPD ×10³" columns
            assert any(v == value for v in made), f"{name} {label}: {column} = {value} came from no built object"
