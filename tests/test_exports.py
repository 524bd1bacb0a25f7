"""Every lazily re-exported public name resolves to its object, never to a module.

A public name equal to a submodule's name would be shadowed by that submodule as soon as it is
imported (Python sets submodules as attributes of their package)."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

PACKAGES = [
    "wavesim",
    "wavesim.analysis",
    "wavesim.learn",
    "wavesim.bridge",
    "wavesim.recordings",
    "wavesim.sweep",
]


@pytest.mark.parametrize("package", PACKAGES)
def test_public_names_resolve_to_objects(package):
    pkg = importlib.import_module(package)
    for name in pkg.__all__:
        if name.startswith("__"):
            continue
        importlib.import_module(pkg._EXPORTS[name])  # import the defining module first
        obj = getattr(pkg, name)
        assert not isinstance(obj, ModuleType), f"{package}.{name} is a module"
        assert getattr(obj, "__name__", name) == name or not callable(obj), f"{package}.{name}"
    with pytest.raises(AttributeError, match="no attribute"):
        pkg.no_such_name  # noqa: B018
