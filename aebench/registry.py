"""Name → object registries for tasks, models, metrics and feature extractors.

Built-in entries register themselves with a decorator in their own module (`@models.register("vae")`); a lookup
imports the home module named like the entry (`wgan-gp` → `aebench.baselines.wgan_gp`) and, for any other name or a
listing, every module of the home packages, so adding a baseline or a task touches one file or folder. Outside code
plugs in three ways, none of which edits the package:

- a file spec, `./my_model.py:MyModel` (the class is loaded from that file);
- a module spec, `my_package.models:MyModel` (the module must be importable);
- an entry point in the group `aebench.models` (or `aebench.tasks`, ...) of an installed distribution.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import pkgutil
import sys
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Generic, TypeVar

from aebench.errors import AebenchError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of `kind` objects, filled lazily from the modules of `packages` and from entry points."""

    def __init__(self, kind: str, *packages: str):
        self.kind = kind
        self.packages = packages
        self.entry_point_group = f"aebench.{kind}s"
        self._entries: dict[str, T] = {}
        self._discovered = False

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: `@registry.register("name")` adds the object under `name`."""

        def add(obj: T) -> T:
            self.add(name, obj)
            return obj

        return add

    def add(self, name: str, obj: T) -> None:
        if not name or name != name.strip() or "," in name:
            raise AebenchError(f"invalid {self.kind} name {name!r}: it must be non-empty, without commas or spaces")
        known = self._entries.get(name)
        if known is not None and known is not obj and _qualname(known) != _qualname(obj):
            raise AebenchError(f"duplicate {self.kind} name '{name}': {_qualname(known)} and {_qualname(obj)}")
        self._entries[name] = obj

    def get(self, name: str) -> T:
        """The object for a registered name, or for a `file.py:Attr` / `module:Attr` spec."""
        if ":" in name:
            return load_spec(name, self.kind)
        if name not in self._entries and not self._discovered:
            self._import_namesake(name)
        if name not in self._entries:
            self._discover()
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "none"
            raise AebenchError(f"unknown {self.kind} '{name}' (known: {known})") from None

    def names(self) -> list[str]:
        self._discover()
        return sorted(self._entries)

    def items(self) -> Iterator[tuple[str, T]]:
        for name in self.names():
            yield name, self._entries[name]

    def __contains__(self, name: str) -> bool:
        self._discover()
        return name in self._entries

    def _import_namesake(self, name: str) -> None:
        """Import only the home module named like the entry (`mnist-sharpness` → `aebench.tasks.mnist_sharpness`),
        where there is one: a run then imports its own task and models, not every one (the full discovery, on a
        name that module does not register, still finds the rest and any clash of names)."""
        module = name.replace("-", "_")
        if not module.isidentifier() or module.startswith("_"):
            return
        for package in self.packages:
            found = importlib.util.find_spec(package)
            if found is None or not found.submodule_search_locations:
                continue
            if any(info.name == module for info in pkgutil.iter_modules(found.submodule_search_locations)):
                importlib.import_module(f"{package}.{module}")

    def _discover(self) -> None:
        if self._discovered:
            return
        self._discovered = True
        for name in self.packages:
            package = importlib.import_module(name)
            for module in pkgutil.iter_modules(package.__path__, prefix=f"{name}."):
                if not module.name.rsplit(".", 1)[-1].startswith("_"):
                    importlib.import_module(module.name)
        for entry in entry_points(group=self.entry_point_group):
            try:
                obj = entry.load()
            except (Exception, SystemExit) as error:
                raise AebenchError(
                    f"{self.kind} entry point '{entry.name}' ({entry.value}) failed: {error!r}"
                ) from None
            self.add(entry.name, obj)


def _qualname(obj: object) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__qualname__)}"


def load_spec(spec: str, kind: str = "object") -> object:
    """Load `path/to/file.py:Attr` or `package.module:Attr`."""
    location, _, attr = spec.rpartition(":")
    if not location or not attr.isidentifier():
        raise AebenchError(f"malformed {kind} spec '{spec}': expected 'file.py:Name' or 'module:Name'")
    if location.endswith(".py"):
        path = Path(location).expanduser().resolve()
        if not path.is_file():
            raise AebenchError(f"{kind} spec '{spec}': file {path} does not exist")
        # A stable module name per file, so a spec loaded twice yields the same class.
        module_name = "aebench_user_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
        module = sys.modules.get(module_name)
        if module is None:
            module_spec = importlib.util.spec_from_file_location(module_name, path)
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[module_name] = module
            try:
                module_spec.loader.exec_module(module)
            except (Exception, SystemExit) as error:  # a plugin calling sys.exit() is a broken plugin, not an exit
                del sys.modules[module_name]
                raise AebenchError(f"{kind} spec '{spec}': importing {path} failed: {error!r}") from None
    else:
        try:
            module = importlib.import_module(location)
        except (Exception, SystemExit) as error:
            raise AebenchError(f"{kind} spec '{spec}': cannot import '{location}': {error!r}") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise AebenchError(f"{kind} spec '{spec}': '{location}' has no attribute '{attr}'") from None


tasks: Registry = Registry("task", "aebench.tasks")
models: Registry = Registry("model", "aebench.baselines")
metrics: Registry = Registry("metric", "aebench.metrics")
extractors: Registry = Registry("extractor", "aebench.tasks", "aebench.metrics")  # tasks register their own
