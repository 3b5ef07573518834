"""Destinations from the environment (bot.destinations) and each network's text (bot.networks):
what an operator sets, what they are told when it is wrong, and that every destination's text
fits its network whatever the entry."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.compose import compose_posts
from bot.config import Settings
from bot.errors import ConfigError
from bot.models import Entry
from bot.networks import BLUESKY, BLUESKY_MAX_BYTES, X, display_link, graphemes, mastodon_rule

FEED = {"FEED_URLS": "https://blog.example.org/feed.xml"}
X_VARS = {"TWITTER_API_KEY": "k", "TWITTER_API_SECRET": "s", "TWITTER_ACCESS_TOKEN": "t",
          "TWITTER_ACCESS_TOKEN_SECRET": "ts"}
MASTODON = {"MASTODON_BASE_URL": "https://fosstodon.org/", "MASTODON_ACCESS_TOKEN": "secret-tok"}
BLUESKY_VARS = {"BLUESKY_HANDLE": "@blog.bsky.social",
                "BLUESKY_APP_PASSWORD": "abcd-efgh-ijkl-mnop"}


def test_each_network_is_a_destination_named_after_it_and_x_is_optional() -> None:
    s = Settings.from_env({**FEED, **MASTODON})
    assert [(d.name, d.network) for d in s.destinations] == [("mastodon", "mastodon")]
    (m,) = s.destinations
    assert m.base_url == "https://fosstodon.org" and m.get("MASTODON_VISIBILITY") == "public"

    s = Settings.from_env({**FEED, **X_VARS, **MASTODON, **BLUESKY_VARS})
    assert [d.name for d in s.destinations] == ["x", "mastodon", "bluesky"]
    bluesky = s.destinations[2]
    assert bluesky.get("BLUESKY_HANDLE") == "blog.bsky.social"  # the @ a user types goes
    assert bluesky.base_url == "https://bsky.social"


def test_more_accounts_on_one_network_take_a_suffix() -> None:
    env = {**FEED, **MASTODON, "MASTODON_BASE_URL__NEWS": "https://news.example",
           "MASTODON_ACCESS_TOKEN__NEWS": "tok2", "MASTODON_VISIBILITY__NEWS": "Unlisted",
           "TWITTER_API_KEY__EN": "k", "TWITTER_API_SECRET__EN": "s",
           "TWITTER_ACCESS_TOKEN__EN": "t", "TWITTER_ACCESS_TOKEN_SECRET__EN": "ts"}
    s = Settings.from_env(env)
    assert [d.name for d in s.destinations] == ["x:en", "mastodon", "mastodon:news"]
    news = s.destinations[2]
    assert (news.base_url, news.get("MASTODON_ACCESS_TOKEN"), news.get("MASTODON_VISIBILITY"),
            news.var("MASTODON_ACCESS_TOKEN")) == (
        "https://news.example", "tok2", "unlisted", "MASTODON_ACCESS_TOKEN__NEWS")
    assert s.warnings == ()  # suffixed names are settings, not misspellings


@pytest.mark.parametrize(("env", "named"), [
    ({"MASTODON_ACCESS_TOKEN": "t"}, "MASTODON_BASE_URL: missing"),
    ({"MASTODON_BASE_URL__NEWS": "https://m.example"}, "MASTODON_ACCESS_TOKEN__NEWS: missing"),
    ({"BLUESKY_HANDLE": "a.bsky.social"}, "BLUESKY_APP_PASSWORD: missing"),
    ({**BLUESKY_VARS, "BLUESKY_HANDLE": "not a handle"}, "BLUESKY_HANDLE='not a handle'"),
    ({**MASTODON, "MASTODON_VISIBILITY": "loud"}, "MASTODON_VISIBILITY='loud': expected one of"),
    ({**MASTODON, "MASTODON_BASE_URL": "fosstodon.org"}, "MASTODON_BASE_URL='fosstodon.org'"),
    ({"TWITTER_API_KEY": "k"}, "TWITTER_API_SECRET, TWITTER_ACCESS_TOKEN, "
                               "TWITTER_ACCESS_TOKEN_SECRET: missing"),
    ({}, "MASTODON_BASE_URL and MASTODON_ACCESS_TOKEN"),  # nothing: every network's way in
])
def test_a_half_configured_destination_is_an_error_naming_the_variable(
    env: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError) as err:
        Settings.from_env({**FEED, **env})
    assert named in str(err.value)
    if "missing" in named or not env:
        assert "DRY_RUN=1" in str(err.value)
    for secret in ("secret-tok", "abcd-efgh-ijkl-mnop"):
        assert secret not in str(err.value)


def test_secrets_stay_out_of_the_settings_repr_and_odd_values_are_warned_about() -> None:
    s = Settings.from_env({**FEED, **MASTODON, "BLUESKY_HANDLE": "a.bsky.social",
                           "BLUESKY_APP_PASSWORD": "my-real-password",
                           "MASTODON_VISIBILITY__OTHER": "public"})
    assert "secret-tok" not in repr(s) and "my-real-password" not in repr(s)
    assert any("does not look like an app password" in w for w in s.warnings)
    assert any("MASTODON_VISIBILITY__OTHER is set, but no mastodon:other account" in w
               for w in s.warnings)


def test_a_dry_run_without_destinations_prints_what_x_would_get() -> None:
    s = Settings.from_env({**FEED, "DRY_RUN": "1"})
    assert s.destinations == () and [d.name for d in s.outlets] == ["x"]
    s = Settings.from_env({**FEED, "DRY_RUN": "1", **MASTODON})
    assert [d.name for d in s.outlets] == ["mastodon"]


# -- each network's text ---------------------------------------------------------------------

LINK = "https://blog.example.org/2026/11/a-rather-long-article-slug-about-unicode-and-links"
RULES = [X, mastodon_rule(), mastodon_rule(120, 30), BLUESKY]

words = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=0, max_size=40)


@given(title=st.lists(words, max_size=40).map(" ".join),
       summary=st.lists(words, max_size=80).map(" ".join))
def test_every_destination_gets_a_text_that_fits_its_network_with_the_link_whole(
    title: str, summary: str
) -> None:
    entry = Entry(id="1", link=LINK, title=title, summary=summary)
    for rule in RULES:
        (composed,) = compose_posts("{title}: {summary} {url}", [entry], "Blog",
                                    "https://blog.example.org/", rule=rule)
        assert composed.text is not None, (rule, composed.error)
        assert rule.measure(composed.text) <= rule.limit, rule
        shown = display_link(LINK) if rule.network == "bluesky" else LINK
        assert composed.text.endswith(shown), rule
        if rule.network == "bluesky":
            assert graphemes(composed.text) <= 300
            assert len(composed.text.encode()) <= BLUESKY_MAX_BYTES


def test_each_network_counts_the_same_text_its_own_way() -> None:
    text = f"Ça va 👍🏽 {LINK}"
    assert X.measure(text) == 5 + 1 + 2 + 1 + 23  # 👍🏽 weighs 2 on X, the link 23
    assert mastodon_rule().measure(text) == 5 + 1 + 1 + 1 + 23  # one grapheme, the link 23
    assert mastodon_rule(500, 40).measure(text) == 5 + 1 + 1 + 1 + 40
    # a bare domain gets no URL allowance on Mastodon (it does on X)
    assert mastodon_rule().measure("see example.org/" + "a" * 40) == 4 + 12 + 40
    assert BLUESKY.measure(text) == 5 + 1 + 1 + 1 + len(LINK)  # text as it is: every grapheme


def test_bluesky_shows_the_link_short_as_its_apps_do() -> None:
    assert display_link("https://example.org/") == "example.org"
    assert display_link("https://example.org/a/b") == "example.org/a/b"
    assert display_link(LINK) == "blog.example.org/2026/11/a-ra..."  # 13 of the path, as the app
    assert display_link("mailto:a@example.org") == "mailto:a@example.org"


def test_two_accounts_that_would_share_a_name_are_refused() -> None:
    env = {**FEED, "MASTODON_BASE_URL__News": "https://a.example",
           "MASTODON_ACCESS_TOKEN__News": "1", "MASTODON_BASE_URL__NEWS": "https://b.example",
           "MASTODON_ACCESS_TOKEN__NEWS": "2"}
    with pytest.raises(ConfigError, match=r"both make the destination mastodon:news"):
        Settings.from_env(env)


def test_a_link_x_would_cut_short_stays_the_article_link_on_bluesky() -> None:
    link = "https://en.wikipedia.org/wiki/Foo_(bar"  # X would leave the unbalanced "(" part out
    entry = Entry(id="1", link=link, title="Foo")
    home = "https://blog.example.org/"
    results = {rule.network: compose_posts("{title} {url}", [entry], "Blog", home, rule=rule)[0]
               for rule in (X, mastodon_rule(), BLUESKY)}
    assert results["x"].link == home and results["mastodon"].link == home
    assert results["bluesky"].link == link  # the facet carries it whole
    assert results["bluesky"].text == f"Foo {display_link(link)}"


def test_a_misspelt_named_setting_is_pointed_at_with_its_suffix_and_dry_run_is_not_suggested_twice(
) -> None:
    env = {**FEED, "DRY_RUN": "1", "MASTODON_BASE_URL__NEWS": "https://m.example",
           "MASTODON_ACESS_TOKEN__NEWS": "x"}
    with pytest.raises(ConfigError) as err:
        Settings.from_env(env)
    said = str(err.value)
    assert "MASTODON_ACCESS_TOKEN__NEWS: missing" in said
    assert "did you mean MASTODON_ACCESS_TOKEN__NEWS?" in said
    assert "DRY_RUN=1" not in said  # it is set already
