"""What twitter-text-parser needs of ``pkg_resources``, where there is none.

twitter-text-parser 3.0 (X's weighted-length rules) reads its emoji table with
``pkg_resources.resource_string`` at import time. ``pkg_resources`` comes with setuptools,
which pipx's venvs do not have and which setuptools 81 removed: there, importing it failed
with ``No module named 'pkg_resources'`` and every command crashed. Where no
``pkg_resources`` can be found, this module stands in for it with that one function, read
through :mod:`importlib.resources` (the standard way since Python 3.9).
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import sys
import types


def resource_string(module: str, name: str) -> bytes:
    """The bytes of the file ``name`` beside the module (or in the package) ``module``."""
    imported = sys.modules.get(module)
    if imported is not None and not hasattr(imported, "__path__"):  # a module: its package
        module = module.rpartition(".")[0]
    return importlib.resources.files(module).joinpath(name).read_bytes()


def install() -> None:
    """Make ``import pkg_resources`` give this stand-in, unless a real one can be imported."""
    if "pkg_resources" in sys.modules or importlib.util.find_spec("pkg_resources") is not None:
        return
    stand_in = types.ModuleType("pkg_resources", __doc__)
    stand_in.resource_string = resource_string  # type: ignore[attr-defined]
    sys.modules["pkg_resources"] = stand_in
