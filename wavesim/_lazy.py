"""Lazy re-exports for package ``__init__`` modules (``import wavesim`` stays cheap)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


def lazy_getattr(package: str, exports: Mapping[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` that imports ``exports[name]`` on first use and returns its
    attribute ``name``.

    Public names must not equal the name of a submodule: once the submodule is imported, Python
    sets it as an attribute of the package, which then shadows the lazy lookup.
    """

    def __getattr__(name: str):
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    return __getattr__
