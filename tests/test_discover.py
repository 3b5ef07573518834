"""Feed autodiscovery: the feeds a blog's home page advertises, and the one to follow."""

from __future__ import annotations

import time

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bot.discover import MAX_PAGE_BYTES, FeedLink, choose, find_feed_links, looks_like_html
from bot.links import normalise_link


def page(head: str, body: str = "<p>Hello</p>") -> bytes:
    return (f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n{head}\n"
            f"</head>\n<body>\n{body}\n</body>\n</html>\n").encode()


# ---------------------------------------------------------------- blog platforms

WORDPRESS = page("""
<title>Jane&#039;s Notes &#8211; Writing about gardens</title>
<meta name='robots' content='max-image-preview:large' />
<link rel='dns-prefetch' href='//fonts.googleapis.com' />
<link rel="alternate" type="application/rss+xml" title="Jane&#039;s Notes &raquo; Feed"
      href="https://jane.example/feed/" />
<link rel="alternate" type="application/rss+xml" title="Jane&#039;s Notes &raquo; Comments Feed"
      href="https://jane.example/comments/feed/" />
<link rel='stylesheet' id='wp-block-library-css'
      href='https://jane.example/wp-includes/css/dist/block-library/style.min.css?ver=6.4.2'
      type='text/css' media='all' />
<link rel="https://api.w.org/" href="https://jane.example/wp-json/" />
<link rel="alternate" title="JSON" type="application/json"
      href="https://jane.example/wp-json/wp/v2/pages/7" />
<link rel="EditURI" type="application/rsd+xml" title="RSD"
      href="https://jane.example/xmlrpc.php?rsd" />
<link rel="canonical" href="https://jane.example/" />
<link rel="alternate" type="application/json+oembed"
      href="https://jane.example/wp-json/oembed/1.0/embed?url=https%3A%2F%2Fjane.example%2F" />
<link rel="alternate" type="text/xml+oembed"
      href="https://jane.example/wp-json/oembed/1.0/embed?url=https%3A%2F%2Fjane.example%2F&#038;format=xml"
      />
""")


def test_wordpress_home_page_gives_the_posts_feed_not_comments_nor_oembed_nor_rest() -> None:
    links = find_feed_links(WORDPRESS, "https://jane.example/", "text/html; charset=UTF-8")
    assert links == [
        FeedLink("https://jane.example/feed/", "Jane's Notes » Feed", "rss"),
        FeedLink("https://jane.example/comments/feed/", "Jane's Notes » Comments Feed", "rss"),
    ]
    assert choose(links) == links[0]


def test_wordpress_post_page_skips_the_post_comments_feed_even_listed_first() -> None:
    post = page("""
<link rel="alternate" type="application/rss+xml" title="Notes &raquo; Tomatoes in May Comments Feed"
      href="https://jane.example/2024/05/tomatoes/feed/" />
<link rel="alternate" type="application/rss+xml" title="Notes &raquo; Comments Feed"
      href="https://jane.example/comments/feed/" />
<link rel="alternate" type="application/rss+xml" title="Notes &raquo; Feed"
      href="https://jane.example/feed/" />
""")
    links = find_feed_links(post, "https://jane.example/2024/05/tomatoes/")
    assert [link.url for link in links] == ["https://jane.example/2024/05/tomatoes/feed/",
                                            "https://jane.example/comments/feed/",
                                            "https://jane.example/feed/"]
    assert choose(links) == FeedLink("https://jane.example/feed/", "Notes » Feed", "rss")


def test_a_comments_feed_in_another_language_or_a_plain_permalink_is_skipped() -> None:
    german = [FeedLink("https://a.example/?feed=comments-rss2", "Mein Blog » Kommentar-Feed"),
              FeedLink("https://a.example/?feed=rss2", "Mein Blog » Feed")]
    assert choose(german) == german[1]
    french = [FeedLink("https://b.example/comments/feed/", "Blog » Flux des commentaires"),
              FeedLink("https://b.example/feed/", "Blog » Flux")]
    assert choose(french) == french[1]


def test_when_every_feed_looks_like_comments_the_first_is_chosen() -> None:
    # A blog named "Fair Comment": both titles say "Comment"; the first is the main feed.
    links = [FeedLink("https://fair.example/feed/", "Fair Comment » Feed", "rss"),
             FeedLink("https://fair.example/comments/feed/", "Fair Comment » Comments Feed", "rss")]
    assert choose(links) == links[0]
    only_comments = [FeedLink("https://c.example/comments/feed/", "Comments", "rss")]
    assert choose(only_comments) == only_comments[0]
    assert choose([]) is None


def test_ghost() -> None:
    ghost = page("""
<link rel="canonical" href="https://ghost.example/">
<meta name="referrer" content="no-referrer-when-downgrade">
<meta property="og:site_name" content="Field Notes">
<script type="application/ld+json">{"@context": "https://schema.org", "@type": "WebSite"}</script>
<meta name="generator" content="Ghost 5.75">
<link rel="alternate" type="application/rss+xml" title="Field Notes" href="https://ghost.example/rss/">
<script defer src="https://cdn.jsdelivr.net/ghost/portal@~2.36/umd/portal.min.js"
        data-ghost="https://ghost.example/" crossorigin="anonymous"></script>
""")
    links = find_feed_links(ghost, "https://ghost.example/")
    assert links == [FeedLink("https://ghost.example/rss/", "Field Notes", "rss")]
    assert choose(links) == links[0]


@pytest.mark.parametrize("head, expected", [
    # Jekyll (jekyll-feed): type before rel, relative href, self-closing
    ('<link type="application/atom+xml" rel="alternate" href="/feed.xml" title="Dev Log" />',
     FeedLink("https://dev.example/feed.xml", "Dev Log", "atom")),
    # Hugo: absolute href, not self-closing
    ('<link rel="alternate" type="application/rss+xml" href="https://dev.example/index.xml" '
     'title="Dev Log">', FeedLink("https://dev.example/index.xml", "Dev Log", "rss")),
])
def test_static_site_generators(head: str, expected: FeedLink) -> None:
    assert find_feed_links(page(head), "https://dev.example/") == [expected]


def test_blogger_gives_atom_then_rss_and_ignores_its_posting_service() -> None:
    blogger = page("""
<link rel="icon" href="https://garden.blogspot.com/favicon.ico" type="image/x-icon" />
<link rel="canonical" href="https://garden.blogspot.com/" />
<link rel="alternate" type="application/atom+xml" title="Garden Diary - Atom"
      href="https://garden.blogspot.com/feeds/posts/default" />
<link rel="alternate" type="application/rss+xml" title="Garden Diary - RSS"
      href="https://garden.blogspot.com/feeds/posts/default?alt=rss" />
<link rel="service.post" type="application/atom+xml" title="Garden Diary - Atom"
      href="https://www.blogger.com/feeds/4812345678901234567/posts/default" />
""")
    links = find_feed_links(blogger, "https://garden.blogspot.com/")
    assert links == [
        FeedLink("https://garden.blogspot.com/feeds/posts/default", "Garden Diary - Atom", "atom"),
        FeedLink("https://garden.blogspot.com/feeds/posts/default?alt=rss", "Garden Diary - RSS",
                 "rss"),
    ]
    assert choose(links) == links[0]


def test_substack_custom_domain() -> None:
    substack = page("""
<link rel="preconnect" href="https://substackcdn.com" />
<link rel="alternate" type="application/rss+xml" href="https://letters.example/feed"
      title="Letters"/>
<link rel="manifest" href="/manifest.json" />
""")
    assert find_feed_links(substack, "https://letters.example/") == [
        FeedLink("https://letters.example/feed", "Letters", "rss")]


def test_micro_blog_json_feed_under_both_types_with_rss_first() -> None:
    micro = page("""
<link rel="alternate" type="application/rss+xml" title="Manton"
      href="https://manton.example/feed.xml" />
<link rel="alternate" type="application/json" title="Manton"
      href="https://manton.example/feed.json" />
<link rel="alternate" type="application/feed+json" title="Manton (JSON Feed 1.1)"
      href="https://manton.example/feed.json" />
<link rel="alternate" type="application/feed+json" href="/podcast.json" />
<link rel="me" href="https://micro.blog/manton" />
""")
    links = find_feed_links(micro, "https://manton.example/")
    assert links == [FeedLink("https://manton.example/feed.xml", "Manton", "rss"),
                     FeedLink("https://manton.example/feed.json", "Manton", "json"),
                     FeedLink("https://manton.example/podcast.json", "", "json")]
    assert choose(links) == links[0]


def test_application_json_counts_only_when_it_looks_like_a_feed() -> None:
    links = find_feed_links(page("""
<link rel="alternate" type="application/json" href="/api/site.json" title="Site data">
<link rel="alternate" type="application/json" href="/api/v1/status" title="Status">
<link rel="alternate" type="application/json" title="JSON"
      href="/index.php?rest_route=/wp/v2/pages/7">
<link rel="alternate" type="application/json" href="/api/posts?format=jsonfeed" title="Posts">
"""), "https://site.example/")
    assert [link.url for link in links] == ["https://site.example/api/site.json",
                                            "https://site.example/api/posts?format=jsonfeed"]


def test_mastodon_profile_rss_and_not_its_activitypub_actor() -> None:
    mastodon = page("""
<link rel="alternate" type="application/rss+xml" href="https://mastodon.example/@alice.rss">
<link rel="alternate" type="application/activity+json" href="https://mastodon.example/users/alice">
<link rel="canonical" href="https://mastodon.example/@alice">
<link rel="alternate" type="application/rdf+xml" href="https://mastodon.example/@alice.rdf">
""")
    assert find_feed_links(mastodon, "https://mastodon.example/@alice") == [
        FeedLink("https://mastodon.example/@alice.rss", "", "rss")]


def test_rel_feed_is_a_feed_but_not_an_html_h_feed() -> None:
    links = find_feed_links(page("""
<link rel="feed" href="/all.atom">
<link rel="feed" type="application/rdf+xml" href="/index.rdf" title="RSS 1.0">
<link rel="feed" type="text/html" href="/notes/" title="Notes (h-feed)">
<link rel="alternate" hreflang="de" href="https://site.example/de/">
<link rel="alternate stylesheet" type="application/rss+xml" href="/odd.xml">
"""), "https://site.example/")
    assert links == [FeedLink("https://site.example/all.atom", "", ""),
                     FeedLink("https://site.example/index.rdf", "RSS 1.0", "rdf")]


# ---------------------------------------------------------------- hrefs

def test_relative_and_protocol_relative_hrefs_resolve_against_the_page() -> None:
    links = find_feed_links(page("""
<link rel="alternate" type="application/rss+xml" href="feed.xml">
<link rel="alternate" type="application/rss+xml" href="../all/rss">
<link rel="alternate" type="application/atom+xml" href="//feeds.example.net/blog?x=1&amp;y=2">
"""), "https://blog.example/posts/index.html")
    assert [link.url for link in links] == ["https://blog.example/posts/feed.xml",
                                            "https://blog.example/all/rss",
                                            "https://feeds.example.net/blog?x=1&y=2"]


def test_base_href_is_used_for_every_link_and_resolved_against_the_page() -> None:
    body = page("""
<link rel="alternate" type="application/rss+xml" href="feed.xml">
<base href="/blog/" target="_self">
<base href="https://ignored.example/">
""")
    assert [link.url for link in find_feed_links(body, "https://site.example/index.html")] == [
        "https://site.example/blog/feed.xml"]


def test_a_base_that_is_not_http_is_ignored() -> None:
    body = page('<base href="javascript:void(0)">'
                '<link rel="alternate" type="application/rss+xml" href="/rss">')
    assert [link.url for link in find_feed_links(body, "https://site.example/a/")] == [
        "https://site.example/rss"]


def test_iris_become_uris() -> None:
    links = find_feed_links(page("""
<link rel="alternate" type="application/rss+xml" href="/kategorie/bücher/feed/" title="Bücher">
<link rel="alternate" type="application/rss+xml" href="https://bücher.example/feed">
"""), "https://blog.example/")
    assert links == [
        FeedLink("https://blog.example/kategorie/b%C3%BCcher/feed/", "Bücher", "rss"),
        FeedLink("https://xn--bcher-kva.example/feed", "", "rss"),
    ]


def test_only_http_links_and_no_link_back_to_the_page_itself() -> None:
    links = find_feed_links(page("""
<link rel="alternate" type="application/rss+xml" href="javascript:alert(1)">
<link rel="alternate" type="application/rss+xml" href="mailto:me@site.example">
<link rel="alternate" type="application/rss+xml" href="ftp://site.example/feed.xml">
<link rel="alternate" type="application/rss+xml" href="">
<link rel="alternate" type="application/rss+xml">
<link rel="alternate" type="application/rss+xml" href="#">
<link rel="alternate" type="application/rss+xml" href="https://site.example/blog/">
<link rel="alternate" type="application/rss+xml" href="feed://site.example/rss.xml">
<link rel="alternate" type="application/atom+xml" href="feed:https://site.example/atom.xml">
"""), "https://site.example/blog/")
    assert [link.url for link in links] == ["http://site.example/rss.xml",
                                            "https://site.example/atom.xml"]


def test_the_same_feed_twice_is_listed_once_with_its_first_title() -> None:
    links = find_feed_links(page("""
<link rel="alternate" type="application/rss+xml" title="Blog" href="https://Blog.example/feed/">
<link rel="alternate" type="application/rss+xml" title="Blog (plugin)" href="/feed/">
"""), "https://blog.example/")
    assert links == [FeedLink("https://blog.example/feed/", "Blog", "rss")]


# ---------------------------------------------------------------- messy pages

def test_no_feed_at_all() -> None:
    body = page('<link rel="stylesheet" href="/style.css"><link rel="icon" href="/favicon.ico">',
                '<a href="/feed.xml">RSS</a>')
    assert find_feed_links(body, "https://plain.example/") == []
    assert choose(find_feed_links(body, "https://plain.example/")) is None


def test_broken_html_uppercase_unquoted_outside_head_and_commented_out() -> None:
    broken = b"""<HTML><HEAD><TITLE>Old Site</TITLE>
<!-- <link rel="alternate" type="application/rss+xml" href="/old-feed.rss"> -->
<SCRIPT>document.write('<link rel="alternate" type="application/rss+xml" href="/js.rss">')
</SCRIPT>
<LINK REL=Alternate TYPE=APPLICATION/RSS+XML TITLE=News HREF=/news.rss>
<div><p>unclosed <b>tags <i>everywhere
<![if !IE]> conditional <![endif]>
<p>stray < and & and </nope>
<link rel="ALTERNATE FEED" type="application/atom+xml; charset=utf-8" href='/atom.xml' title='Atom'
<link rel=alternate type=application/rss+xml href=/swallowed.rss title="Swallowed">
<link rel=alternate type=application/atom+xml href=/body.atom title="In the body"/>
</BODY>"""
    links = find_feed_links(broken, "http://old.example/")
    # The unclosed <link ... title='Atom' takes in the next tag's attributes as a browser does:
    # "<link" becomes an attribute name and the repeated rel, type, href and title count not.
    assert links == [FeedLink("http://old.example/news.rss", "News", "rss"),
                     FeedLink("http://old.example/atom.xml", "Atom", "atom"),
                     FeedLink("http://old.example/body.atom", "In the body", "atom")]


def test_a_link_after_an_unterminated_comment_is_not_a_link() -> None:
    body = b"<head><link rel=alternate type=application/rss+xml href=/a.rss><!-- never closed -> " \
           b"<link rel=alternate type=application/rss+xml href=/b.rss>"
    assert [link.url for link in find_feed_links(body, "https://x.example/")] == [
        "https://x.example/a.rss"]


def test_windows_1252_page_declared_in_meta() -> None:
    body = ('<html><head><meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1">'
            '<link rel="alternate" type="application/rss+xml" title="Café – Neuigkeiten"'
            ' href="/café/feed.xml"></head></html>').encode("cp1252")
    assert find_feed_links(body, "https://cafe.example/") == [
        FeedLink("https://cafe.example/caf%C3%A9/feed.xml", "Café – Neuigkeiten", "rss")]


def test_shift_jis_page_declared_in_the_header_and_undeclared_latin_1() -> None:
    body = ('<html><head><link rel="alternate" type="application/rss+xml" title="日記"'
            ' href="/日記.rdf"></head></html>').encode("shift_jis")
    assert find_feed_links(body, "https://nikki.example/", "text/html; charset=Shift_JIS") == [
        FeedLink("https://nikki.example/%E6%97%A5%E8%A8%98.rdf", "日記", "rss")]
    undeclared = '<link rel="alternate" type="application/rss+xml" title="Señal" href="/s">'
    assert find_feed_links(undeclared.encode("latin-1"), "https://x.example/")[0].title == "Señal"


def test_the_header_charset_wins_and_bytes_that_do_not_decode_are_replaced() -> None:
    body = (b'<meta charset="windows-1251"><link rel="alternate" type="application/rss+xml" '
            b'title="Caf\xc3\xa9 \xff" href="/feed">')
    links = find_feed_links(body, "https://x.example/", "text/html; charset=utf-8")
    assert links == [FeedLink("https://x.example/feed", "Café \ufffd", "rss")]


def test_only_the_first_half_megabyte_is_read() -> None:
    link = b'<link rel="alternate" type="application/rss+xml" href="/late.xml">'
    early = page("", "<p>" + "x" * 1000 + "</p>") + link
    assert len(find_feed_links(early, "https://x.example/")) == 1
    late = page("", "<p>" + "x" * MAX_PAGE_BYTES + "</p>") + link
    assert find_feed_links(late, "https://x.example/") == []


# ---------------------------------------------------------------- looks_like_html

@pytest.mark.parametrize("body, content_type, expected", [
    (WORDPRESS, "text/html; charset=UTF-8", True),
    (WORDPRESS, None, True),
    (b"\xef\xbb\xbf  <!doctype HTML><title>x</title>", None, True),
    (b"<head><link rel=alternate href=/f></head>", "text/html", True),
    (b"<head><link rel=alternate href=/f></head>", "application/octet-stream", False),
    (b'<?xml version="1.0"?><rss version="2.0"><channel/></rss>', "text/html", False),
    (b'<feed xmlns="http://www.w3.org/2005/Atom"></feed>', "text/html", False),
    (b'{"version": "https://jsonfeed.org/version/1.1", "items": []}', "text/html", False),
    (b'<?xml version="1.0"?><rss version="2.0"><channel/></rss>', "application/rss+xml", False),
])
def test_looks_like_html(body: bytes, content_type: str | None, expected: bool) -> None:
    assert looks_like_html(body, content_type) is expected


# ---------------------------------------------------------------- properties

_FEED_LINK_TAG = st.builds(
    lambda rel, kind, href, title: (f'<link rel="{rel}" type="{kind}" href="{href}" '
                                    f'title="{title}">'),
    st.sampled_from(["alternate", "feed", "ALTERNATE feed", "stylesheet alternate", "me"]),
    st.sampled_from(["application/rss+xml", "application/atom+xml", "application/json",
                     "application/feed+json", "application/rdf+xml", "text/html", ""]),
    st.text(max_size=40),
    st.text(max_size=20),
)
_PAGES = st.one_of(
    st.binary(max_size=2000),
    st.lists(st.one_of(_FEED_LINK_TAG, st.text(max_size=30),
                       st.sampled_from(["<base href='//b.example/x/'>", "<!--", "-->", "<![x[",
                                        "<script>", "</script>", "<?x", "<!x", "&amp;", "<"])),
             max_size=12).map(lambda parts: "".join(parts).encode("utf-8", "surrogatepass")),
)


@given(body=_PAGES,
       page_url=st.one_of(st.just("https://site.example/blog/"), st.text(max_size=30)),
       content_type=st.one_of(st.none(), st.sampled_from(
           ["text/html", "text/html; charset=utf-16", "text/html; charset=base64",
            "text/html; charset=utf-7", "text/html; charset=shift_jis",
            "text/html; charset=\x00"])))
@example(body=b"<![x[<link rel=alternate type=application/rss+xml href=/f>", page_url="",
         content_type=None)
@example(body=b"<meta charset=rot13><link rel=feed href=//x.example>",
         page_url="https://a.example/", content_type=None)
def test_find_feed_links_never_raises_and_gives_only_absolute_http_urls(
        body: bytes, page_url: str, content_type: str | None) -> None:
    links = find_feed_links(body, page_url, content_type)
    urls = [link.url for link in links]
    assert len(urls) == len(set(urls))
    for link in links:
        assert link.url.startswith(("http://", "https://"))
        assert normalise_link(link.url) == link.url
        assert link.kind in ("rss", "atom", "json", "rdf", "")
        assert link.title == " ".join(link.title.split())
    chosen = choose(links)
    assert (chosen is None) == (not links)
    assert chosen is None or chosen in links


def test_a_large_page_is_read_quickly() -> None:
    head = "".join(f'<link rel="alternate" type="application/rss+xml" href="/f{i}.xml">'
                   for i in range(2000))
    body = page(head, "<div class='post'><p>text &amp; more</p></div>" * 10000)
    start = time.perf_counter()
    links = find_feed_links(body, "https://big.example/")
    assert len(links) == 2000
    assert time.perf_counter() - start < 2.0
