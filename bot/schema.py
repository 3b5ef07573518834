"""The SQL migrations, read as package data.

The files are written in the top-level ``migrations/`` folder as ``NNNN_name.sql``, numbered
0001, 0002, … without gaps. The wheel ships them inside the package as ``bot/migrations/``
(``[tool.setuptools.package-dir]`` in pyproject.toml), so an installed bot needs no source
tree. They are read through :mod:`importlib.resources` from the first place that has them:

1. ``bot/migrations/`` inside the package: a wheel (``pip install .``, ``pipx install``, the
   Docker image);
2. ``migrations/`` beside the package directory: a checkout, run with ``python -m bot`` or
   through an editable install (``pip install -e .``), which links ``bot/`` to the checkout.
"""

from __future__ import annotations

import re
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from bot.errors import StorageError

MIGRATION_NAME = re.compile(r"^(\d{4})_[\w-]+\.sql$")


def migrations_directory() -> Traversable:
    """Where this installation's migrations are: inside the package, else the checkout's."""
    packaged = files("bot").joinpath("migrations")
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parent.parent / "migrations"
    if checkout.is_dir():
        return checkout
    raise StorageError(
        f"the SQL migrations are missing: neither {packaged} (an installed wheel) nor "
        f"{checkout} (a checkout) exists; reinstall the bot"
    )


def migration_scripts(directory: Traversable | None = None) -> list[tuple[int, str, str]]:
    """Every migration as ``(number, file name, SQL text)``, in order.

    ``directory`` defaults to :func:`migrations_directory`; tests pass a folder of their own.
    Raises :class:`StorageError` when a ``.sql`` file is not named ``NNNN_name.sql`` or the
    numbers are not 1, 2, … n without gaps.
    """
    directory = migrations_directory() if directory is None else directory
    if not directory.is_dir():
        raise StorageError(f"the migrations directory {directory} is missing")
    found = []
    for item in directory.iterdir():
        if not item.name.endswith(".sql"):
            continue
        m = MIGRATION_NAME.match(item.name)
        if not m:
            raise StorageError(f"migration file {item.name!r} is not named NNNN_name.sql")
        found.append((int(m.group(1)), item.name, item.read_text(encoding="utf-8")))
    found.sort()
    numbers = [number for number, _, _ in found]
    if numbers != list(range(1, len(numbers) + 1)):
        raise StorageError(f"migrations in {directory} are not numbered 0001, 0002, …: {numbers}")
    return found
