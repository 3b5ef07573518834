"""Pure decisions: which entries of a poll are new, and in which order to tweet them.

No I/O here: the caller looks up what was seen before and passes it in.

Rules:
- An entry is new only if neither its id (in this feed) nor its link (in any feed) was seen
  before. An edited entry (same id, new title) is not new; a changed guid with the same link
  is not new either.
- Within one document the first occurrence of an id or a link wins; repeats are ignored.
- A feed's first successful poll is a baseline: everything is recorded as seen and nothing is
  tweeted, except the newest ``backfill`` entries.
- Entries rejected by the feed's filters are recorded as seen and never tweeted later.
- Order (oldest first): by publication date when every candidate has a plausible one (not
  more than a day in the future), else by reversed document position (feeds list newest first).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.models import Entry

FUTURE_SLACK = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Decision:
    to_post: list[Entry] = field(default_factory=list)  # oldest first
    seen_only: list[Entry] = field(default_factory=list)  # record, never tweet
    filtered: int = 0  # how many of seen_only the filters rejected


@dataclass(frozen=True, slots=True)
class Filters:
    include: re.Pattern[str] | None = None
    exclude: re.Pattern[str] | None = None

    @classmethod
    def compile(cls, include: str | None, exclude: str | None) -> Filters:
        """Compile the feed's filters; raises re.error naming the bad pattern."""
        return cls(
            include=re.compile(include, re.IGNORECASE) if include else None,
            exclude=re.compile(exclude, re.IGNORECASE) if exclude else None,
        )

    def accepts(self, entry: Entry) -> bool:
        if self.include is None and self.exclude is None:
            return True
        haystack = "\n".join((entry.title, entry.summary, *entry.categories))
        if self.include is not None and not self.include.search(haystack):
            return False
        return not (self.exclude is not None and self.exclude.search(haystack))


def oldest_first(entries: Sequence[Entry], now: datetime) -> list[Entry]:
    limit = now + FUTURE_SLACK
    if entries and all(e.published is not None and e.published <= limit for e in entries):
        return sorted(entries, key=lambda e: (e.published, -e.position))
    return sorted(entries, key=lambda e: -e.position)


def decide(
    entries: Iterable[Entry],
    *,
    seen_keys: set[str],
    seen_links: set[str],
    first_poll: bool,
    backfill: int,
    now: datetime,
    filters: Filters | None = None,
) -> Decision:
    fresh: list[Entry] = []
    keys: set[str] = set()
    links: set[str] = set()
    relinked: list[Entry] = []  # new id, known link: remember the id, tweet nothing
    for entry in entries:
        if entry.id in keys or (entry.link and entry.link in links):
            continue
        keys.add(entry.id)
        if entry.link:
            links.add(entry.link)
        if entry.id in seen_keys:
            continue
        if entry.link and entry.link in seen_links:
            relinked.append(entry)
            continue
        fresh.append(entry)

    ordered = oldest_first(fresh, now)
    accepted: list[Entry] = []
    rejected: list[Entry] = []
    for entry in ordered:
        (accepted if filters is None or filters.accepts(entry) else rejected).append(entry)

    if first_poll:
        keep = accepted[-backfill:] if backfill > 0 else []
        baseline = accepted[: len(accepted) - len(keep)]
        return Decision(to_post=keep, seen_only=relinked + rejected + baseline,
                        filtered=len(rejected))
    return Decision(to_post=accepted, seen_only=relinked + rejected, filtered=len(rejected))
