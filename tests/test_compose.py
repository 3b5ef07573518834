"""Tweet text: templates, hashtags, and fitting into X's 280 weighted characters."""

from __future__ import annotations

import random
import re
import unicodedata

import pytest
from twitter_text import extract_urls, parse_tweet

from bot.compose import (
    ELLIPSIS,
    MAX_WEIGHT,
    WORD_JOINER,
    Composed,
    compose,
    compose_posts,
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


@pytest.mark.parametrize("unit", ["👨\u200d👩\u200d👧", "🇫🇷", "👍🏽", "1️⃣", "❤️", "🏳️\u200d🌈",
                                  "क्षि", "ｶﾞ", "각", "\u1ea1\u0301", "\u0e01\u0e48"])
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
    linked = Entry(id="1", link="https://blog.example.org/1", title="Linked",
                   categories=("rust",))
    linkless = Entry(id="2", link=None, title="No link of its own")
    results = compose_posts("{title} {url}", [linked, linkless], "Blog",
                            "https://blog.example.org/", hashtags="#news")
    assert results == [
        Composed("Linked https://blog.example.org/1 #rust #news", link="https://blog.example.org/1"),
        Composed("No link of its own https://blog.example.org/ #news",
                 link="https://blog.example.org/"),
    ]
    # a template that names {hashtags} decides where they go
    (result,) = compose_posts("{hashtags} {title} {url}", [linked], "Blog", None, "#news")
    assert result.text == "#rust #news Linked https://blog.example.org/1"


@pytest.mark.parametrize("link, why", [
    ("javascript:alert(1)", "not an absolute http(s) link"),
    ("mailto:me@example.org", "not an absolute http(s) link"),
    ("/relative", "not an absolute http(s) link"),
    ("https://example.org/" + "a" * 5000,
     "5020 characters long and X shortens links of at most 4088"),
    ("https://example.org/ends-with.", "X would link only a part of it"),
    ("https://example.org/a)", "X would link only a part of it"),
    (None, "the entry has no link"),
])
def test_a_link_x_cannot_take_falls_back_to_the_feeds_home_or_is_an_error(
    link: str | None, why: str
) -> None:
    item = entry("Hello", link=link)
    (fallback,) = compose_posts("{title} {url}", [item], "Blog", "https://blog.example.org")
    assert fallback == Composed("Hello https://blog.example.org/", link="https://blog.example.org/")
    (failed,) = compose_posts("{title} {url}", [item], "Blog", "https://example.org/home.")
    assert failed.text is None and failed.link is None
    assert failed.error is not None
    assert why in failed.error and "cannot be tweeted" in failed.error
    assert len(failed.error) < 400  # a huge link is clipped in the message


def test_a_link_on_a_domain_twitter_text_does_not_know_is_tweeted_as_it_is() -> None:
    """X shows it as plain text, whole; the article is not dropped for an old domain list."""
    (result,) = compose_posts("{title} {url}", [entry("Hello", link="https://blog.example/1")],
                              "Blog", "https://blog.example.org")
    assert result == Composed("Hello https://blog.example/1", link="https://blog.example/1")


def test_a_template_without_url_needs_no_link() -> None:
    (result,) = compose_posts("New: {title}", [entry("Hello", link=None)], "Blog", None)
    assert result == Composed("New: Hello")


def test_the_tweet_carries_the_normalised_link() -> None:
    item = entry("Hello", link=" https://user:pw@Bücher.example.org/ä b?q=ü ")
    link = "https://xn--bcher-kva.example.org/%C3%A4%20b?q=%C3%BC"
    assert compose("{title} {url}", item) == "Hello " + link
    (result,) = compose_posts("{title} {url}", [item], "Blog", None)
    assert result == Composed("Hello " + link, link=link)
    assert extract_urls(result.text or "") == [link]


def test_a_link_glued_to_text_is_set_apart_so_x_sees_it_whole() -> None:
    text = compose("{title}{url}", entry("Hello"))
    assert text == "Hello " + URL
    assert extract_urls(text) == [URL]
    assert compose("({url})", entry("Hi")) == f"({URL})"  # X sees this one whole as it is


def test_one_broken_entry_does_not_stop_the_others() -> None:
    broken = Entry(id="bad", link=URL, title="Bad", categories=None)  # type: ignore[arg-type]
    results = compose_posts("{title} {hashtags} {url}", [entry("First"), broken, entry("Last")],
                            "Blog", None)
    assert [r.text for r in results] == [f"First {URL}", None, f"Last {URL}"]
    assert results[1].error and "could not compose this entry: TypeError" in results[1].error


def test_an_entry_found_broken_while_parsing_keeps_its_reason() -> None:
    broken = Entry(id="x", link=URL, title="Hi", error="the entry's date is unreadable")
    assert compose_posts("{title} {url}", [broken], "Blog", None) == [
        Composed(None, error="the entry's date is unreadable")]


def test_a_template_leaving_no_room_falls_back_to_title_and_url() -> None:
    (result,) = compose_posts("x" * 270 + " {title} {url}", [entry("Hello")], "Blog", None)
    assert result == Composed(f"Hello {URL}", link=URL)


# ---------------------------------------------------------------- mentions


MENTION = re.compile(  # twitter-text's valid mention (extractMentionsOrListsWithIndices)
    r"(?:^|[^a-zA-Z0-9_!#$%&*@＠]|(?:^|[^a-zA-Z0-9_+~.-])(?:rt|RT|rT|Rt):?)[@＠]"
    r"([a-zA-Z0-9_]{1,20})(?![@＠a-zA-Z0-9_]|://)")


def test_names_from_the_feed_are_not_mentioned() -> None:
    title = "Thanks @guido, ＠alice and RT@bob; write to me@example.org"
    text = compose("{title} ({author}) {url}", entry(title, author="@carol"),
                   keep_mentions=False)
    assert MENTION.findall(text) == []
    assert text.replace(WORD_JOINER, "") == f"{title} (@carol) {URL}"  # reads the same
    assert "me@example.org" in text  # an e-mail address is left as it is
    assert parse_tweet(text).weightedLength == weighted_length(title) + 4 * 2 + 9 + 24


def test_mentions_can_be_kept_and_the_templates_own_stay() -> None:
    kept = compose("{title} {url}", entry("Thanks @guido"), keep_mentions=True)
    assert kept == f"Thanks @guido {URL}" and MENTION.findall(kept) == ["guido"]
    text = compose("via @blog: {title} {url}", entry("Thanks @guido"))
    assert MENTION.findall(text) == ["blog"]
    (result,) = compose_posts("{title} {url}", [entry("@a")], "Blog", None, keep_mentions=True)
    assert result.text == f"@a {URL}"


def test_a_cut_never_leaves_a_live_mention() -> None:
    for size in range(230, 262):
        title = "x " * (size // 2) + "@someone_long_name and more words to cut"
        text = compose("{title} {url}", entry(title))
        assert MENTION.findall(text) == [], text


# ---------------------------------------------------------------- titles intact


@pytest.mark.parametrize("title", ["Q&A:", "Part 2 -", "Links | ", "See https://x.org/page",
                                   "A/B", "Notes, ", "Tea — "])
def test_a_title_that_fits_loses_nothing(title: str) -> None:
    shown = title.strip()
    assert compose("{title} {summary} {url}", entry(title)) == f"{shown} {URL}"
    assert compose("{title} — {feed_title}\n{url}", entry(title)) == f"{shown}\n{URL}"
    assert compose("{feed_title}: {title}", entry(title)) == shown


def test_separators_of_the_template_still_go_with_an_emptied_field() -> None:
    assert compose("{title} — {feed_title} | {url}", entry("Q&A:")) == f"Q&A: | {URL}"
    assert compose("{feed_title} — {title}", entry("- Part 2"), feed_title="") == "- Part 2"


# ---------------------------------------------------------------- longest cut


def test_the_cut_is_the_longest_that_fits_even_with_url_like_words() -> None:
    # twitter-text weighs "a.co" 23 but "a.c" 3: the weight goes up and down as the cut grows
    rnd = random.Random(3)
    for _ in range(20):
        title = "".join(rnd.choice(["a", "b", ".", "com", "co", "org", "x", "é"])
                        for _ in range(rnd.randrange(100, 200)))
        text = compose("{title} {url}", entry(title))
        assert_fits(text)
        if not text.endswith(ELLIPSIS + " " + URL):
            assert text == f"{title} {URL}"
            continue
        kept = text[: -len(ELLIPSIS + " " + URL)]
        assert title.startswith(kept)
        longer = title[: len(kept) + 1] + ELLIPSIS + " " + URL
        assert weighted_length(longer) > MAX_WEIGHT, (title, len(kept))


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
    "thanks @\u2060guido and ＠\u2060alice", "@\u2060example.com",
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
