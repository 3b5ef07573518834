"""Tweet text: templates, hashtags, and fitting into X's 280 weighted characters."""

from __future__ import annotations

import random
import unicodedata

import pytest
from twitter_text import extract_urls, parse_tweet

from bot.compose import (
    ELLIPSIS,
    MAX_WEIGHT,
    compose,
    hashtags_from_categories,
    validate_template,
    weighted_length,
)
from bot.errors import ConfigError, FeedParseError
from bot.models import Entry
from bot.parse import parse_feed
from tests.conftest import NO_SHARED, SHARED_FEEDS, corpus_files

URL = "https://x.org/a"
WORDS = ("feed", "release", "asyncio", "python", "notes", "a", "of", "performance", "tips",
         "improving", "x", "the", "database", "migration", "internationalization")


def entry(title: str = "Hello", link: str | None = URL, **kw: object) -> Entry:
    return Entry(id="id-1", link=link, title=title, **kw)  # type: ignore[arg-type]


def english(n_chars: int, seed: int = 1) -> str:
    rnd = random.Random(seed)
    words: list[str] = []
    while len(" ".join(words)) < n_chars:
        words.append(rnd.choice(WORDS))
    return " ".join(words)[:n_chars].strip()


def assert_fits(text: str) -> None:
    assert weighted_length(text) <= MAX_WEIGHT
    assert parse_tweet(text).valid


# ---------------------------------------------------------------- what the user sees


def test_short_title_and_link_are_unchanged() -> None:
    assert compose("{title} {url}", entry("Hello")) == "Hello https://x.org/a"


def test_long_english_title_is_cut_on_a_word_boundary_and_the_link_kept() -> None:
    title = english(400)
    text = compose("{title} {url}", entry(title))
    assert_fits(text)
    assert text.endswith(" " + URL)
    shown = text[: -len(" " + URL)]
    assert shown.endswith(ELLIPSIS)
    kept = shown[: -len(ELLIPSIS)]
    assert title.startswith(kept)
    assert title[len(kept)] == " "  # the cut falls between two words
    assert weighted_length(text) > MAX_WEIGHT - 30  # and does not waste the room


def test_a_300_character_url_counts_23_and_stays_whole() -> None:
    url = "https://example.com/" + "a" * 280
    assert len(url) == 300
    assert weighted_length(url) == 23
    assert compose("{title} {url}", entry("Short", link=url)) == "Short " + url
    text = compose("{title} {url}", entry(english(400), link=url))
    assert_fits(text)
    assert text.endswith(ELLIPSIS + " " + url)
    assert extract_urls(text) == [url]


def test_cjk_title_is_cut_at_the_character_limit() -> None:
    title = "".join(chr(0x4E00 + i) for i in range(200))  # 200 characters weighing 2 each
    text = compose("{title} {url}", entry(title))
    assert_fits(text)
    assert text.endswith(ELLIPSIS + " " + URL)
    kept = text[: -len(ELLIPSIS + " " + URL)]
    assert title.startswith(kept)
    assert len(kept) >= 120  # (280 - 23 - 1 - 2) / 2 = 127 characters fit


@pytest.mark.parametrize("unit", ["👨\u200d👩\u200d👧", "🇫🇷", "👍🏽", "1️⃣", "❤️"])
def test_emoji_title_is_never_cut_inside_an_emoji(unit: str) -> None:
    title = unit * 200
    text = compose("{title} {url}", entry(title))
    assert_fits(text)
    kept = text[: -len(ELLIPSIS + " " + URL)]
    assert kept and len(kept) % len(unit) == 0 and title.startswith(kept)


def test_combining_marks_stay_with_their_letter() -> None:
    title = "a\u0332" * 300  # a + combining low line: no precomposed form
    text = compose("{title} {url}", entry(title))
    assert_fits(text)
    kept = text[: -len(ELLIPSIS + " " + URL)]
    assert kept.endswith("a\u0332") and not unicodedata.combining(title[len(kept)])


def test_summary_shrinks_before_the_title() -> None:
    title = english(120, seed=2)
    text = compose("{title}\n{summary}\n{url}", entry(title, summary=english(2000, seed=3)))
    assert_fits(text)
    first, second, third = text.split("\n")
    assert first == title
    assert second.endswith(ELLIPSIS)
    assert third == URL


def test_emptied_summary_takes_its_separator_along() -> None:
    text = compose("{title}: {summary} {url}", entry(english(400), summary=english(900)))
    assert_fits(text)
    assert ":" not in text.replace(URL, "")
    assert text.endswith(ELLIPSIS + " " + URL)


def test_hashtags_are_dropped_whole_before_the_title_is_cut() -> None:
    cats = ("python", "asyncio", "databases", "performance", "internationalization")
    title = english(232, seed=4)
    text = compose("{title} {hashtags} {url}", entry(title, categories=cats))
    assert_fits(text)
    assert text.startswith(title + " #python #asyncio")
    assert "#internationalization" not in text
    tags = text[len(title) + 1: -len(URL) - 1].split()
    assert tags == ["#" + c for c in cats][: len(tags)]


def test_a_10000_character_summary_is_handled() -> None:
    text = compose("{title}\n{summary}\n{url}", entry("Hi", summary="lorem ipsum " * 850))
    assert_fits(text)
    assert text.startswith("Hi\nlorem ipsum") and text.endswith(ELLIPSIS + "\n" + URL)


# ---------------------------------------------------------------- hashtags


def test_hashtags_from_categories() -> None:
    cats = ["machine learning", "C++", "2024", "Python"]
    assert hashtags_from_categories(cats) == "#MachineLearning #Python"


def test_hashtags_clean_dedupe_and_cap() -> None:
    assert hashtags_from_categories([" Python ", "python", "PYTHON"]) == "#Python"
    assert hashtags_from_categories(["Node.js", "don't panic", "café", "", "   "]) == (
        "#NodeJs #DontPanic #café")
    many = [f"tag{i}" for i in range(9)]
    assert hashtags_from_categories(many) == "#tag0 #tag1 #tag2 #tag3 #tag4"


def test_extra_hashtags_are_appended_and_deduplicated() -> None:
    assert hashtags_from_categories(["Python"], "#python #Rust, #a") == "#Python #Rust #a"
    assert hashtags_from_categories([], "") == ""
    text = compose("{title} {hashtags} {url}", entry("Hi", categories=("AsyncIO",)),
                   hashtags="#Python")
    assert text == "Hi #AsyncIO #Python https://x.org/a"


# ---------------------------------------------------------------- templates


@pytest.mark.parametrize("template", ["{title} {url}", "{url}", "{{{title}}} {url}",
                                      "{feed_title}: {title}\n{summary}\n{hashtags} {url}"])
def test_valid_templates(template: str) -> None:
    validate_template(template)


def test_unknown_field_is_named_with_the_allowed_ones() -> None:
    with pytest.raises(ConfigError, match=r'unknown field "\{link\}".*\{title\}.*\{url\}'):
        validate_template("{title} {link}")
    with pytest.raises(ConfigError, match="unknown field"):
        compose("{titel} {url}", entry())


@pytest.mark.parametrize("template, message", [
    ("{title", "malformed braces"),
    ("{title} }", "malformed braces"),
    ("{title!r} {url}", "no !conversion"),
    ("{title:>10} {url}", ":format"),
    ("{} {url}", 'unknown field "{}"'),
    ("{0}", "unknown field"),
    ("{title.upper}", "unknown field"),
    ("just text", "names no field"),
])
def test_bad_templates(template: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("{", r"\{").replace("}", r"\}")):
        validate_template(template)


def test_newlines_in_the_template_are_kept_and_spaces_collapsed() -> None:
    text = compose("{title}   —   {feed_title}\n\n{url}", entry("Hello  \n big\tworld"),
                   feed_title="Blog")
    assert text == "Hello big world — Blog\n\nhttps://x.org/a"


def test_empty_fields_leave_no_dangling_separators_or_lines() -> None:
    template = "{feed_title} — {title} ({author})\n{summary}\n{hashtags}\n{url}"
    assert compose(template, entry("Hello")) == "Hello\nhttps://x.org/a"
    assert compose(template, entry("Hello", author="Ann"), feed_title="Blog") == (
        "Blog — Hello (Ann)\nhttps://x.org/a")


def test_entry_without_link() -> None:
    assert compose("{title} {url}", entry("Hello", link=None)) == "Hello"


def test_template_leaving_no_room_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no room"):
        compose("x" * 270 + " {title} {url}", entry("Hello"))


# ---------------------------------------------------------------- property-style


TEMPLATES = (
    "{title} {url}",
    "{url}\n{title}",
    "{title}\n\n{summary}\n\n{url}",
    "{feed_title}: {title} ({author}) {url} {hashtags}",
    "{title} — {summary} {hashtags}\n{url}",
    "📰 {title} | {feed_title}\n{summary}\n{hashtags} {url}",
)
EMOJI = ("😀", "👨\u200d👩\u200d👧", "🇯🇵", "👍🏿", "1️⃣", "❤️", "🏳️\u200d🌈")


def random_text(rnd: random.Random, max_pieces: int) -> str:
    pieces = []
    for _ in range(rnd.randrange(max_pieces)):
        kind = rnd.random()
        if kind < 0.5:
            pieces.append(rnd.choice(WORDS))
        elif kind < 0.7:
            pieces.append("".join(chr(rnd.randrange(0x4E00, 0x9FA5))
                                  for _ in range(rnd.randrange(1, 60))))
        elif kind < 0.85:
            pieces.append("".join(rnd.choice(EMOJI) for _ in range(rnd.randrange(1, 4))))
        elif kind < 0.95:
            pieces.append("x" * rnd.randrange(20, 400))
        else:
            pieces.append("é\u0301ñ\u0332" * rnd.randrange(1, 5))
    return rnd.choice((" ", "  ", "\n")).join(pieces)


def test_random_entries_always_fit_with_the_link_intact() -> None:
    rnd = random.Random(20240601)
    for _ in range(200):
        link = "https://example.com/" + "".join(
            rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789-_/")
            for _ in range(rnd.randrange(1, 300)))
        item = entry(random_text(rnd, 40), link=link, summary=random_text(rnd, 100),
                     author=random_text(rnd, 4),
                     categories=tuple(random_text(rnd, 3) for _ in range(rnd.randrange(8))))
        template = rnd.choice(TEMPLATES)
        text = compose(template, item, feed_title=random_text(rnd, 6), hashtags="#Blog")
        assert weighted_length(text) <= MAX_WEIGHT, (template, text)
        assert parse_tweet(text).valid, (template, text)
        assert text.count(link) == 1, (template, text)
        assert link in extract_urls(text)
        for line in text.split("\n"):
            assert line == line.strip() and "  " not in line


def test_compose_posts_appends_asked_for_hashtags_and_uses_the_feed_link() -> None:
    from bot.compose import compose_posts

    linked = Entry(id="1", link="https://blog.example/1", title="Linked", categories=("rust",))
    linkless = Entry(id="2", link=None, title="No link of its own")
    texts = compose_posts("{title} {url}", [linked, linkless], "Blog", "https://blog.example/",
                          hashtags="#news")
    assert texts == ["Linked https://blog.example/1 #rust #news",
                     "No link of its own https://blog.example/ #news"]
    # a template that names {hashtags} decides where they go
    (text,) = compose_posts("{hashtags} {title} {url}", [linked], "Blog", None, "#news")
    assert text == "#rust #news Linked https://blog.example/1"


# ---------------------------------------------------------------- the cheap bound

TRICKY = (
    "", "a", ".", "a.co", "x.co/y", "t.co/abc", "example.com", "a.b.c.d.com", "go to x.ly now",
    "1️⃣2️⃣#️⃣*️⃣", "#1 *2* 3", "©®™‼", "👨\u200d👩\u200d👧 👍🏿 🇯🇵🇫🇷 🏳️\u200d🌈",
    "日本語.jp/パス", "http://日本語.jp", "例え。テスト",
    "\u0958\u0959\u095a \ufb2c \U0001d15e",  # NFC lengthens these (to 2 or 3 characters)
    "e\u0301 n\u0303 A\u030a", "line\r\nbreak\rold mac\n", "https://127.0.0.1:8080/x",
    "http://[::1]/", "xn--wgv71a119e.jp", "a" * 400 + ".com", "ｆｕｌｌｗｉｄｔｈ．ｃｏｍ",
    "\u2019quotes\u2018 \u201cdouble\u201d \u2026 \u2014", "\U0001F600" * 150,
    "mail me: a@b.co, or https://x.org/a.b.c?d=e.f#g.h", "v1.2.3 released.",
)


def _bound_cases() -> list[str]:
    rnd = random.Random(7)
    texts = list(TRICKY)
    pieces = [*TRICKY, *WORDS, *EMOJI, "https://example.com/path", "www.example.org", "a.b"]
    for _ in range(1500):
        texts.append(rnd.choice(("", " ", "\n")).join(
            rnd.choice(pieces) for _ in range(rnd.randrange(1, 12))))
        texts.append(random_text(rnd, 20))
    return texts


def test_the_cheap_bound_is_never_below_xs_weighted_length() -> None:
    from bot.compose import weight_at_most

    for text in _bound_cases():
        assert weight_at_most(text) >= weighted_length(text), repr(text)


@pytest.mark.skipif(not SHARED_FEEDS.is_dir(), reason=NO_SHARED)
def test_the_cheap_bound_holds_on_every_corpus_entry() -> None:
    from bot.compose import weight_at_most

    checked = 0
    for path in corpus_files():
        try:
            parsed = parse_feed(path.read_bytes(), f"https://example.org/{path.name}")
        except FeedParseError:  # the ill-formed ones that do not parse at all
            continue
        for e in parsed.entries:
            for text in (e.title, e.summary[:600], f"{e.title} {e.link or ''}"):
                assert weight_at_most(text) >= weighted_length(text), (path.name, text)
                checked += 1
    assert checked > 1000


def test_an_ordinary_tweet_is_judged_by_the_bound_alone() -> None:
    """The point of the bound: a usual title and link fit without asking twitter-text."""
    from bot.compose import weight_at_most

    text = ("Why Python\u2019s asyncio cancellation surprises everyone (and how to cope) "
            "https://blog.example.org/2026/11/25/asyncio-cancellation #python")
    assert weight_at_most(text) <= MAX_WEIGHT
    assert weight_at_most("plain words and no dot") == weighted_length("plain words and no dot")


def test_compose_gives_the_same_text_with_or_without_the_bound(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.compose

    rnd = random.Random(99)
    cases = []
    for _ in range(150):
        link = "https://example.com/" + "".join(
            rnd.choice("abc.def/0123") for _ in range(rnd.randrange(1, 120)))
        item = entry(random_text(rnd, 30), link=link, summary=random_text(rnd, 60),
                     categories=tuple(random_text(rnd, 2) for _ in range(rnd.randrange(4))))
        cases.append((rnd.choice(TEMPLATES), item, random_text(rnd, 4)))
    with_bound = [compose(t, e, feed_title=f) for t, e, f in cases]
    monkeypatch.setattr(bot.compose, "weight_at_most", lambda text: MAX_WEIGHT + 1)
    assert [compose(t, e, feed_title=f) for t, e, f in cases] == with_bound
