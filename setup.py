"""Maps the top-level folders baselines/ and tasks/ to aebench.baselines and aebench.tasks when installed."""

from setuptools import find_packages, setup


def mapped(folder: str, package: str) -> list[str]:
    return [package] + [f"{package}.{name}" for name in find_packages(folder)]


setup(
    packages=find_packages(include=["aebench", "aebench.*"])
    + mapped("baselines", "aebench.baselines")
    + mapped("tasks", "aebench.tasks"),
    package_dir={"aebench.baselines": "baselines", "aebench.tasks": "tasks"},
)
