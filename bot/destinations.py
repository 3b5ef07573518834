"""Destinations: one account on one network, configured by the environment only.

=========  ==============================================  =====================================
network    required                                        optional
=========  ==============================================  =====================================
x          TWITTER_API_KEY, TWITTER_API_SECRET,            TWITTER_API_BASE_URL
           TWITTER_ACCESS_TOKEN, TWITTER_ACCESS_TOKEN_SECRET
mastodon   MASTODON_BASE_URL, MASTODON_ACCESS_TOKEN        MASTODON_VISIBILITY (public, unlisted,
                                                           private)
bluesky    BLUESKY_HANDLE, BLUESKY_APP_PASSWORD            BLUESKY_SERVICE_URL (https://bsky.social)
=========  ==============================================  =====================================

The destination's name is its network's (``x``, ``mastodon``, ``bluesky``). **More accounts on
one network** take a suffix: every variable of the account ends in ``__NAME`` (two
underscores, then letters, digits or ``_``), and the destination is ``network:name`` in lower
case: ``MASTODON_BASE_URL__NEWS`` and ``MASTODON_ACCESS_TOKEN__NEWS`` make ``mastodon:news``.
A destination is configured when any of its required variables is set; one set without the
others is an error naming the missing ones. Secrets live in the environment and in memory:
never in the database, a log line or a repr.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from bot.networks import NETWORKS

__all__ = ["NETWORKS", "Destination", "check_names", "read_destinations", "setting_names"]

DEFAULT_SERVICE_URL = "https://bsky.social"
VISIBILITIES = ("public", "unlisted", "private")
_SUFFIX = re.compile(r"__([A-Za-z0-9][A-Za-z0-9_]*)")
NAME = re.compile(r"(x|mastodon|bluesky)(:[a-z0-9][a-z0-9_]*)?")


@dataclass(frozen=True, slots=True)
class _Network:
    required: tuple[str, ...]
    optional: tuple[str, ...]
    help: str


SPECS = {
    "x": _Network(("TWITTER_API_KEY", "TWITTER_API_SECRET", "TWITTER_ACCESS_TOKEN",
                   "TWITTER_ACCESS_TOKEN_SECRET"), ("TWITTER_API_BASE_URL",),
                  "the four OAuth 1.0a values from the X developer portal (API Key, API Key "
                  "Secret, Access Token, Access Token Secret)"),
    "mastodon": _Network(("MASTODON_BASE_URL", "MASTODON_ACCESS_TOKEN"),
                         ("MASTODON_VISIBILITY",),
                         "the instance's URL and an access token with the write:statuses "
                         "scope (Preferences → Development → New application)"),
    "bluesky": _Network(("BLUESKY_HANDLE", "BLUESKY_APP_PASSWORD"), ("BLUESKY_SERVICE_URL",),
                        "the account's handle and an app password (Settings → Privacy and "
                        "security → App passwords), never the account password"),
}
SECRETS = frozenset({"TWITTER_API_KEY", "TWITTER_API_SECRET", "TWITTER_ACCESS_TOKEN",
                     "TWITTER_ACCESS_TOKEN_SECRET", "MASTODON_ACCESS_TOKEN",
                     "BLUESKY_APP_PASSWORD"})


@dataclass(frozen=True, slots=True)
class Destination:
    """One account on one network. ``values`` maps each of its variables' base names
    (``MASTODON_ACCESS_TOKEN``) to the value set; they are kept out of the repr."""

    name: str
    network: str
    suffix: str = ""  # "__NEWS", or "" for the network's unnamed account
    values: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    def get(self, base: str, default: str = "") -> str:
        return self.values.get(base, default)

    def var(self, base: str) -> str:
        """The variable's name as the operator set it: ``MASTODON_ACCESS_TOKEN__NEWS``."""
        return base + self.suffix

    @property
    def base_url(self) -> str:
        if self.network == "x":
            return self.get("TWITTER_API_BASE_URL", "https://api.twitter.com")
        if self.network == "mastodon":
            return self.get("MASTODON_BASE_URL")
        return self.get("BLUESKY_SERVICE_URL", DEFAULT_SERVICE_URL)


def setting_names(env: Mapping[str, str]) -> set[str]:
    """Every destination variable set in ``env``, suffixed ones included (for the check
    that warns about names that are no setting)."""
    bases = {n for spec in SPECS.values() for n in (*spec.required, *spec.optional)}
    found = set()
    for key in env:
        base, _, _ = key.partition("__")
        if base in bases and (key == base or _SUFFIX.fullmatch(key[len(base):])):
            found.add(key)
    return found


def read_destinations(env: Mapping[str, str], problems: list[str], *,
                      base_url: Callable[[str], str],
                      defaults: Mapping[str, str] | None = None,
                      warnings: list[str] | None = None,
                      dry_run: bool = False) -> tuple[Destination, ...]:
    """The destinations ``env`` configures, in a stable order (x, mastodon, bluesky; the
    unnamed account first, then named ones by name). Each problem found is appended to
    ``problems`` naming the variable. ``defaults``: values for the unnamed X account's
    optional variables already read (TWITTER_API_BASE_URL). An optional variable set for an
    account that is not configured is only a warning (``warnings``)."""
    by_suffix: dict[tuple[str, str], dict[str, str]] = {}
    for key, raw in env.items():
        for network, spec in SPECS.items():
            for base in (*spec.required, *spec.optional):
                if key == base:
                    suffix = ""
                elif key.startswith(base + "__") and _SUFFIX.fullmatch(key[len(base):]):
                    suffix = key[len(base):]
                else:
                    continue
                if raw.strip():
                    by_suffix.setdefault((network, suffix), {})[base] = raw.strip()
    found: list[Destination] = []
    for (network, suffix), values in sorted(by_suffix.items(),
                                            key=lambda kv: (NETWORKS.index(kv[0][0]), kv[0][1])):
        spec = SPECS[network]
        name = network + (":" + suffix[2:].lower() if suffix else "")
        if not any(values.get(base) for base in spec.required):
            optional = ", ".join(base + suffix for base in values)
            if network == "x" and not suffix:
                continue  # TWITTER_API_BASE_URL alone: a test's or a proxy's default
            if warnings is not None:
                warnings.append(f"{optional} is set, but no {name} account is: "
                                f"{', '.join(b + suffix for b in spec.required)} are not set, "
                                "so it is ignored")
            continue
        missing = [base + suffix for base in spec.required if not values.get(base)]
        if missing:
            problems.append(f"{', '.join(missing)}: missing. The destination {name} needs "
                            f"{spec.help}" + ("" if dry_run else
                                              "; or set DRY_RUN=1 to try the bot without posting"))
            continue
        checked = dict(values)
        if network == "x" and not suffix:
            checked.pop("TWITTER_API_BASE_URL", None)  # read (and checked) with the settings
        if not _check(network, suffix, checked, problems, base_url):
            continue
        if network == "x" and not suffix and defaults:
            for k, v in defaults.items():
                checked.setdefault(k, v)
        if twin := next((d for d in found if d.name == name), None):
            problems.append(f"{spec.required[0]}{twin.suffix} and {spec.required[0]}{suffix} "
                            f"both make the destination {name} (names are not case-sensitive): "
                            "give one of them another name")
            continue
        found.append(Destination(name, network, suffix, checked))
    return tuple(found)


def _check(network: str, suffix: str, values: dict[str, str], problems: list[str],
           base_url: Callable[[str], str]) -> bool:
    ok = True
    for base in ("TWITTER_API_BASE_URL", "MASTODON_BASE_URL", "BLUESKY_SERVICE_URL"):
        if base in values:
            try:
                values[base] = base_url(values[base])
            except ValueError as exc:
                problems.append(f"{base}{suffix}={values[base]!r}: {exc}")
                ok = False
    if network == "mastodon":
        visibility = values.get("MASTODON_VISIBILITY", "public").lower()
        if visibility not in VISIBILITIES:
            problems.append(f"MASTODON_VISIBILITY{suffix}={values['MASTODON_VISIBILITY']!r}: "
                            f"expected one of {', '.join(VISIBILITIES)}")
            ok = False
        values["MASTODON_VISIBILITY"] = visibility
    if network == "bluesky":
        handle = values["BLUESKY_HANDLE"].removeprefix("@")
        if not re.fullmatch(r"[A-Za-z0-9.-]+\.[A-Za-z0-9-]+|did:[a-z]+:[A-Za-z0-9._:%-]+",
                            handle):
            problems.append(f"BLUESKY_HANDLE{suffix}={values['BLUESKY_HANDLE']!r}: expected "
                            "a handle such as alice.bsky.social (or the account's DID)")
            ok = False
        values["BLUESKY_HANDLE"] = handle
    return ok


def app_password_warning(destination: Destination) -> str | None:
    """A warning when a Bluesky password does not look like an app password."""
    if destination.network != "bluesky":
        return None
    if re.fullmatch(r"[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4}",
                    destination.get("BLUESKY_APP_PASSWORD")):
        return None
    return (f"{destination.var('BLUESKY_APP_PASSWORD')} does not look like an app password "
            "(xxxx-xxxx-xxxx-xxxx): use an app password (Settings → Privacy and security → "
            "App passwords), never the account's own password")


def check_names(names: Sequence[str], configured: Sequence[str] | None) -> list[str]:
    """Problems with destination names given on the command line (``feeds add --to``):
    malformed ones, and (when ``configured`` is known) ones not configured here."""
    problems = []
    for name in names:
        if not NAME.fullmatch(name):
            problems.append(f"{name!r} is not a destination name: expected x, mastodon or "
                            "bluesky, or network:name for a named account (mastodon:news)")
        elif configured is not None and name not in configured:
            shown = ", ".join(configured) or "none"
            problems.append(f"{name!r} is not configured here (configured: {shown})")
    return problems
