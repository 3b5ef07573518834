"""The wheel alone is a working service: built, installed in a fresh venv, run from elsewhere.

The wheel is built from a copy of the checkout (so no ``build/`` or ``*.egg-info`` is left in
it), installed with the pinned versions of requirements.lock into a new venv, and run as a
user runs it: ``feed-tweeter run --once`` in an empty folder outside the source tree, against
a loopback blog. About 13 s with a warm pip cache (most of it the venv and the install).
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT, clean_environ
from tests.fakes.feed_server import FeedServer

pytestmark = pytest.mark.timeout(300)

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
VERSION = PROJECT["version"]


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path

    @property
    def script(self) -> Path:
        return self.venv / "bin" / "feed-tweeter"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"


def run(*args: object, **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True,
                          timeout=240, **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{args}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def user_env(**settings: str) -> dict[str, str]:
    """The environment of a user with the bot installed: none of the checkout's settings."""
    env = {k: v for k, v in clean_environ().items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSAFEPATH")}
    return {**env, "PYTHONUNBUFFERED": "1", **settings}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    base = tmp_path_factory.mktemp("package")
    source = base / "source"
    source.mkdir()
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for name in ("bot", "migrations"):
        shutil.copytree(ROOT / name, source / name, ignore=skip)
    dist = base / "dist"
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", dist, source)
    (wheel,) = dist.glob("*.whl")

    venv = base / "venv"
    run(sys.executable, "-m", "venv", venv)
    pip = (venv / "bin" / "python", "-m", "pip", "--disable-pip-version-check")
    run(*pip, "install", "--quiet", "--require-hashes", "-r", ROOT / "requirements.lock")
    run(*pip, "install", "--quiet", "--no-deps", wheel)
    run(*pip, "check")  # the lock holds every dependency the wheel asks for
    # as pipx's venvs are, and as setuptools 81+ is: no pkg_resources, which
    # twitter-text-parser imports (bot/_pkg_resources.py stands in for it)
    run(*pip, "uninstall", "--quiet", "--yes", "setuptools")
    yield Installed(wheel, venv)


def test_the_wheel_holds_every_module_and_the_migrations(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "bot").rglob("*.py")
               if "__pycache__" not in p.parts}
    migrations = {f"bot/migrations/{p.name}" for p in (ROOT / "migrations").glob("*.sql")}
    assert modules and migrations
    assert modules | migrations <= names, sorted(modules | migrations - names)
    info = f"feed_tweeter-{VERSION}.dist-info"
    assert "[console_scripts]\nfeed-tweeter = bot.__main__:main" in \
        zipfile.ZipFile(installed.wheel).read(f"{info}/entry_points.txt").decode()
    assert not any(n.startswith(("tests/", "migrations/")) for n in names)


def test_the_console_script_says_its_version(installed: Installed, tmp_path: Path) -> None:
    done = run(installed.script, "--version", cwd=tmp_path, env=user_env())
    assert done.stdout == f"feed-tweeter {VERSION}\n"


async def test_the_installed_wheel_runs_once_outside_the_checkout(
    installed: Installed, tmp_path: Path
) -> None:
    where = tmp_path / "elsewhere"
    where.mkdir()
    found = run(installed.python, "-c", "import bot, bot.schema as s; print(bot.__file__); "
                "print(len(s.migration_scripts()))", cwd=where, env=user_env())
    bot_file, count = found.stdout.split()
    assert Path(bot_file).is_relative_to(installed.venv), bot_file  # not the checkout's bot/
    assert int(count) == len(list((ROOT / "migrations").glob("*.sql")))

    async with FeedServer() as server:
        blog = server.add_blog("/feed.xml", title="Packaged")
        blog.publish("First")
        blog.publish("Second")
        env = user_env(DRY_RUN="1", FEED_URLS=blog.url, DATABASE_PATH="bot.sqlite3",
                       HTTP_HOST="127.0.0.1", HTTP_PORT="0", BACKFILL="1")
        proc = await asyncio.create_subprocess_exec(
            installed.script, "run", "--once", cwd=where, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
        output = out.decode("utf-8", "replace")
        assert proc.returncode == 0, output
        assert server.hits["/feed.xml"] >= 1, output
    assert "startup_failed" not in output, output

    database = where / "bot.sqlite3"
    with sqlite3.connect(database) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        feeds = conn.execute("SELECT url FROM feeds").fetchall()
    conn.close()
    assert {"feeds", "entries", "posts", "meta"} <= tables, tables
    assert version == int(count)
    assert feeds == [(blog.url,)]
