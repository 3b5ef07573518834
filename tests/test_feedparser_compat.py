"""bot.fastxml is tied to one feedparser, and only through bot.feedparser_compat.

* The installed feedparser has the handlers (``_start_*``/``_end_*``) the fast path was checked
  against, and the same code for them and for the bookkeeping around them: a feedparser
  release that changes either fails here, with what to re-check, before it can make the fast
  path read a feed differently from feedparser.
* No module of bot/ but bot.feedparser_compat reaches into feedparser's internals (its
  submodules or private names): the top-level public API is all they use.
"""

from __future__ import annotations

import ast
import types
from pathlib import Path

import feedparser

from bot import feedparser_compat as compat
from tests.feedcompare import RECHECK, feedparser_difference

BOT = Path(compat.__file__).resolve().parent
PUBLIC = frozenset(n for n in dir(feedparser)
                   if not n.startswith("_") and not isinstance(getattr(feedparser, n),
                                                               types.ModuleType))


def test_feedparser_has_the_handlers_the_fast_path_was_checked_against() -> None:
    installed = compat.handler_names()
    added = sorted(installed - compat.CHECKED_HANDLERS)
    removed = sorted(compat.CHECKED_HANDLERS - installed)
    assert not added and not removed, (
        f"feedparser {feedparser.__version__} (checked: {compat.CHECKED_VERSION}) has other "
        f"handlers: added {added}, removed {removed}. {RECHECK}")


def test_the_feedparser_code_the_fast_path_mirrors_is_unchanged() -> None:
    assert compat.installed_source_sha256() == compat.CHECKED_SOURCE_SHA256, (
        f"{feedparser_difference()} {RECHECK}")


def test_the_record_is_what_the_check_prints_for_this_feedparser() -> None:
    # the text bench.fastxml_check prints to be pasted is the one in the module, as is
    assert compat.record() in Path(compat.__file__).read_text(encoding="utf-8"), (
        f"{feedparser_difference() or 'the record was edited by hand.'} {RECHECK}")


def test_the_fast_path_s_handler_keys_come_from_the_handlers() -> None:
    assert compat.handler_keys() == {n.split("_", 2)[2] for n in compat.CHECKED_HANDLERS}
    assert {"title", "dc_title", "media_title", "link", "guid", "content_encoded",
            "media_group", "image"} <= compat.handler_keys()


def _internal_uses(path: Path) -> list[str]:
    """Imports of feedparser's submodules or private names, and ``feedparser.<internal>``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        where = f"{path.name}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            found += [f"{where} import {a.name}" for a in node.names
                      if a.name.startswith("feedparser.")]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("feedparser"):
            if node.module != "feedparser":
                found.append(f"{where} from {node.module} import ...")
            else:
                found += [f"{where} from feedparser import {a.name}" for a in node.names
                          if a.name not in PUBLIC]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and \
                node.value.id == "feedparser" and node.attr not in PUBLIC:
            found.append(f"{where} feedparser.{node.attr}")
    return found


def test_only_the_compat_module_uses_feedparser_internals() -> None:
    found = [use for path in sorted(BOT.rglob("*.py")) if path.name != "feedparser_compat.py"
             for use in _internal_uses(path)]
    assert not found, ("feedparser internals outside bot/feedparser_compat.py (add them there, "
                       f"with why they are needed): {found}")


def test_the_internal_uses_check_sees_internal_uses(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import feedparser\nimport feedparser.mixin\n"
                      "from feedparser.urls import _urljoin\nfrom feedparser import _x, parse\n"
                      "feedparser.api.parse\nfeedparser.parse\n", encoding="utf-8")
    assert _internal_uses(sample) == [
        "sample.py:2 import feedparser.mixin", "sample.py:3 from feedparser.urls import ...",
        "sample.py:4 from feedparser import _x", "sample.py:5 feedparser.api"]
