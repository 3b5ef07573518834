"""Entry.image: the picture of an article's link card, from every source a feed can give it.

Each XML document here is read on both paths (bot.fastxml and feedparser alone) and must give
the same entries; the ordinary ones must take the fast path. JSON Feed: ``image``, then
``banner_image``. The shared corpus is read on both paths too, with the images it is known
to hold.
"""

from __future__ import annotations

import json

import pytest

from bot.feedentries import IMAGE_MAX
from bot.models import Entry, ParsedFeed, storable, valid_text
from bot.parse import parse_feed
from tests.conftest import NO_SHARED, SHARED_FEEDS, corpus_files
from tests.feedcompare import both_paths, reads_fast

URL = "https://blog.example.org/feed.xml"
NS = ('xmlns:media="http://search.yahoo.com/mrss/" '
      'xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd" '
      'xmlns:content="http://purl.org/rss/1.0/modules/content/"')


def rss(*items: str | tuple[str, str], root_attrs: str = "") -> bytes:
    """An RSS 2.0 document of one item per argument: its children, or (its attributes, its
    children)."""
    body = ""
    for n, item in enumerate(items):
        attrs, children = item if isinstance(item, tuple) else ("", item)
        body += (f"<item{attrs}><title>Post {n}</title><link>https://blog.example.org/{n}</link>"
                 f"{children}</item>")
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0" {NS}{root_attrs}>'
            f"<channel><title>Blog</title><link>https://blog.example.org/</link>{body}"
            "</channel></rss>").encode()


def atom(entry: str, feed_attrs: str = "") -> bytes:
    return ('<?xml version="1.0" encoding="utf-8"?>'
            f'<feed xmlns="http://www.w3.org/2005/Atom" {NS}{feed_attrs}><title>Blog</title>'
            '<link href="https://blog.example.org/"/><entry><title>Post</title>'
            f'<id>tag:blog.example.org,2024:1</id><link href="https://blog.example.org/1"/>{entry}'
            "</entry></feed>").encode()


def images(body: bytes, url: str = URL, *, fast: bool = True) -> list[str | None]:
    """The entries' images; both paths must agree, and (``fast``) the fast one must read it."""
    slow_result, fast_result = both_paths(body, url)
    assert fast_result == slow_result
    assert isinstance(fast_result, ParsedFeed), fast_result
    if fast:
        assert reads_fast(body), "the fast path gave up on this document"
    return [e.image for e in fast_result.entries]


# --------------------------------------------------------------------------- each source

@pytest.mark.parametrize(("item", "image"), [
    ('<media:thumbnail url="https://img.example.org/t.jpg" width="75" height="50"/>',
     "https://img.example.org/t.jpg"),
    # the url as the element's text (feedparser reads that too)
    ("<media:thumbnail> https://img.example.org/text.jpg </media:thumbnail>",
     "https://img.example.org/text.jpg"),
    ('<media:content url="https://img.example.org/c.jpg" medium="image"/>',
     "https://img.example.org/c.jpg"),
    ('<media:content url="https://img.example.org/c.png" type="image/png"/>',
     "https://img.example.org/c.png"),
    ('<media:group><media:content url="https://img.example.org/v.mp4" type="video/mp4"/>'
     '<media:content url="https://img.example.org/g.jpg" medium="image"/></media:group>',
     "https://img.example.org/g.jpg"),
    ('<enclosure url="https://img.example.org/e.jpg" type="image/jpeg" length="0"/>',
     "https://img.example.org/e.jpg"),
    ('<itunes:image href="https://img.example.org/cover.jpg"/>',
     "https://img.example.org/cover.jpg"),
    ('<description>&lt;p&gt;Hi&lt;img src="https://img.example.org/in.jpg"&gt;&lt;/p&gt;'
     "</description>", "https://img.example.org/in.jpg"),
    ('<content:encoded><![CDATA[<p><img class="x" SRC=\'/wp/a.png?w=1&amp;h=2\'></p>]]>'
     "</content:encoded>", "https://blog.example.org/wp/a.png?w=1&h=2"),
])
def test_each_source_of_an_image(item: str, image: str) -> None:
    assert images(rss(item)) == [image]


def test_an_atom_image_enclosure() -> None:
    body = atom('<link rel="enclosure" type="image/jpeg" href="https://img.example.org/a.jpg"/>'
                '<link rel="enclosure" type="audio/mpeg" href="https://img.example.org/a.mp3"/>')
    assert images(body) == ["https://img.example.org/a.jpg"]
    audio_only = atom('<link rel="enclosure" type="audio/mpeg" href="https://x.example.org/a"/>')
    assert images(audio_only) == [None]


def test_the_first_source_in_order_of_preference_wins_wherever_it_is() -> None:
    sources = {
        "thumbnail": '<media:thumbnail url="https://img.example.org/1-thumbnail.jpg"/>',
        "content": '<media:content url="https://img.example.org/2-content.jpg" medium="image"/>',
        "enclosure": '<enclosure url="https://img.example.org/3-enclosure.jpg" '
                     'type="image/jpeg"/>',
        "itunes": '<itunes:image href="https://img.example.org/4-itunes.jpg"/>',
        "html": "<description>&lt;img src='https://img.example.org/5-html.jpg'&gt;"
                "</description>",
    }
    names = list(sources)
    for first in range(len(names)):
        present = names[first:]
        for order in (present, present[::-1]):
            (image,) = images(rss("".join(sources[n] for n in order)))
            assert image == f"https://img.example.org/{first + 1}-{names[first]}.jpg", order


def test_a_media_thumbnail_inside_media_content_counts_as_a_thumbnail() -> None:
    item = ('<media:content url="https://img.example.org/video.mp4" type="video/mp4">'
            '<media:thumbnail url="https://img.example.org/poster.jpg"/></media:content>')
    assert images(rss(item)) == ["https://img.example.org/poster.jpg"]


# --------------------------------------------------------------------------- resolving

def test_a_relative_image_is_resolved_against_the_feed_url() -> None:
    body = rss('<media:thumbnail url="/img/t.jpg"/>', '<enclosure url="e.png" type="image/png"/>',
               "<description>&lt;img src='../up.gif'&gt;</description>")
    assert images(body, "https://blog.example.org/feeds/main.xml") == [
        "https://blog.example.org/img/t.jpg", "https://blog.example.org/feeds/e.png",
        "https://blog.example.org/up.gif"]


def test_a_relative_image_is_resolved_against_xml_base() -> None:
    # the item's xml:base, the feed's, and an HTML value's own
    body = rss((' xml:base="https://cdn.example.org/posts/1/"',
                '<media:content url="pic.jpg" medium="image"/>'),
               ("", '<itunes:image href="/cover.png"/>'),
               root_attrs=' xml:base="https://static.example.org/base/"')
    assert images(body) == ["https://cdn.example.org/posts/1/pic.jpg",
                            "https://static.example.org/cover.png"]
    html = atom('<content type="html" xml:base="https://andrea.example.org/blog/post/">'
                "&lt;p&gt;&lt;img src=\"shot.png\"&gt;&lt;/p&gt;</content>",
                ' xml:base="https://andrea.example.org/blog/"')
    assert images(html) == ["https://andrea.example.org/blog/post/shot.png"]
    enclosure = atom('<link rel="enclosure" type="image/png" href="e.png" '
                     'xml:base="https://e.example.org/x/"/>')
    assert images(enclosure) == ["https://e.example.org/x/e.png"]


def test_an_image_url_is_normalised_like_a_link() -> None:
    body = rss('<media:thumbnail url="HTTPS://User:pw@IMG.Example.org/日本 語.jpg"/>')
    assert images(body) == ["https://img.example.org/%E6%97%A5%E6%9C%AC%20%E8%AA%9E.jpg"]


# --------------------------------------------------------------------------- not an image

@pytest.mark.parametrize("item", [
    "",  # nothing at all
    "<description>Just text, no picture</description>",
    '<media:content url="https://img.example.org/a.mp3" medium="audio" type="audio/mpeg"/>',
    '<media:content url="https://img.example.org/unknown"/>',  # neither medium nor type
    '<enclosure url="https://img.example.org/a.mp3" type="audio/mpeg" length="1"/>',
    '<enclosure url="https://img.example.org/a.jpg"/>',  # no type: not known to be a picture
    # a non-http image is ignored (and so is an empty one)
    '<media:thumbnail url="data:image/png;base64,iVBORw0KGgo="/>',
    '<media:thumbnail url="javascript:alert(1)"/>',
    '<itunes:image href="ftp://img.example.org/a.jpg"/>',
    '<media:thumbnail url=""/><media:thumbnail url="   "/>',
    # too long
    f'<media:thumbnail url="https://img.example.org/{"x" * IMAGE_MAX}.jpg"/>',
    # a tracking pixel, and a picture only inside an HTML comment
    "<description>&lt;img src='https://t.example.org/p.gif' width='1' height='1'&gt;"
    "&lt;!-- &lt;img src='https://img.example.org/hidden.jpg'&gt; --&gt;</description>",
    # "<img" as text of a plain-text title is no picture
    "<media:title type='plain'>&lt;img src='https://img.example.org/x.jpg'&gt;</media:title>",
])
def test_entries_without_an_image_have_none(item: str) -> None:
    assert images(rss(item)) == [None]


def test_an_unusable_source_gives_way_to_the_next() -> None:
    item = ('<media:thumbnail url="data:image/gif;base64,R0lGOD=="/>'
            f'<media:content url="https://img.example.org/{"y" * IMAGE_MAX}" medium="image"/>'
            '<enclosure url="https://img.example.org/ok.jpg" type="image/jpeg"/>')
    assert images(rss(item)) == ["https://img.example.org/ok.jpg"]


def test_json_feed_image_then_banner_image() -> None:
    def feed(*items: dict[str, object]) -> bytes:
        return json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "J",
                           "items": [{"id": str(n), "url": f"https://j.example.org/{n}", **item}
                                     for n, item in enumerate(items)]}).encode()

    body = feed({"image": "https://img.example.org/i.jpg",
                 "banner_image": "https://img.example.org/b.jpg"},
                {"banner_image": "/banner.png"},
                {"image": "mailto:x@example.org", "banner_image": "https://img.example.org/b2"},
                {"image": 42},
                {},
                {"image": "https://img.example.org/\ud800.jpg"})
    parsed = parse_feed(body, "https://j.example.org/feed.json")
    assert [e.image for e in parsed.entries] == [
        "https://img.example.org/i.jpg", "https://j.example.org/banner.png",
        "https://img.example.org/b2", None, None,
        None]  # a lone surrogate is no URL


def test_storable_cleans_the_image_too() -> None:
    # parsing never gives one (normalise_link refuses it), but an Entry made elsewhere may
    entry = Entry(id="a", link=None, title="t", image="https://img.example.org/\ud800.jpg")
    image = storable(entry).image
    assert image == valid_text(entry.image or "") and image.startswith("https://img.")
    image.encode("utf-8")  # no lone surrogate left
    assert storable(Entry(id="a", link=None, title="t")).image is None


# --------------------------------------------------------------------------- the corpus

@pytest.mark.skipif(not SHARED_FEEDS.is_dir(), reason=NO_SHARED)
def test_every_corpus_feed_gives_the_same_images_on_both_paths() -> None:
    with_images = {}
    for path in corpus_files():
        body, url = path.read_bytes(), f"https://example.org/feeds/{path.name}"
        slow, fast = both_paths(body, url)
        assert fast == slow, path.name
        if isinstance(slow, ParsedFeed):
            found = [e.image for e in slow.entries if e.image is not None]
            assert all(i.startswith(("http://", "https://")) and len(i) <= IMAGE_MAX
                       for i in found), path.name
            with_images[path.name] = len(found)
    # one source of each kind, on the fast path where the feed is read there
    assert with_images["small_atom.xml"] == 20  # media:thumbnail
    assert with_images["macworld.rss"] == 30  # image enclosures
    assert with_images["atp.rss"] == 100  # itunes:image (its media:content is audio)
    assert with_images["urdu_UTF8.xml"] == 26  # media:thumbnail
    assert with_images["phpxml.rss"] == 15  # root-relative <img src> in the description
    assert with_images["3960.json"] == 20  # JSON Feed "image"
    assert with_images["DaringFireball.atom"] == 0


# read on the fast path (macworld.rss: its <categories> wrapper, pappacoda.atom: xhtml, are not)
FAST = {"small_atom.xml", "theomnishow.rss", "phpxml.rss"}


@pytest.mark.skipif(not SHARED_FEEDS.is_dir(), reason=NO_SHARED)
@pytest.mark.parametrize(("name", "position", "image"), [
    ("small_atom.xml", 0, "https://avatars.githubusercontent.com/u/323546?s=30&v=4"),
    ("macworld.rss", 0, "https://images.idgesg.net/images/article/2017/08/"
                        "best-smart-locks-100730768-medium.jpg"),
    ("theomnishow.rss", 0, "https://theomnishow.omnigroup.com/assets/img/"
                           "omnishow-cover-1x3000.jpg"),
    ("phpxml.rss", 0, "https://example.org/pictures/100/scheids.jpg"),  # against the feed URL
    # against the xml:base of the xhtml content
    ("pappacoda.atom", 2, "https://andrea.pappacoda.it/blog/c_su_windows/"
                          "c_su_windows_visual_studio_componenti.png"),
])
def test_corpus_images(name: str, position: int, image: str) -> None:
    body = (SHARED_FEEDS / "real" / name).read_bytes()
    url = f"https://example.org/feeds/{name}"
    slow, fast = both_paths(body, url)
    assert fast == slow
    assert isinstance(fast, ParsedFeed)
    assert fast.entries[position].image == image
    assert reads_fast(body) == (name in FAST), name
