"""News from the web into the corpus: pages, feeds, web archives and URLs (rag.news, rag.fetch, rag.corpus_writer)."""
from __future__ import annotations

from pathlib import Path

import pytest

from rag.corpus_writer import save_articles, url_key
from rag.ingest import read_article_file, scan_corpus
from rag.news import convert_bytes, convert_path, detect_kind

NEWS = Path(__file__).parent / "data" / "news"
SOLAR_URL = "https://www.northshore-gazette.example/news/2025/06/12/floating-solar-farm-merrow"


def only_article(path: Path, **options: object) -> dict:
    converted = convert_path(path, **options)
    assert converted.skipped == [] and len(converted.articles) == 1, converted
    return converted.articles[0]


# Web pages


def test_news_page_becomes_its_article_without_navigation_related_links_or_comments() -> None:
    article = only_article(NEWS / "article.html")
    assert article["title"] == "Floating solar farm opens on Merrow reservoir"
    assert article["source"] == "Northshore Gazette"  # og:site_name
    assert article["byline"] == "Hana Ishikawa"  # JSON-LD author
    assert article["published"] == "2025-06-12"  # JSON-LD datePublished
    assert article["section"] == "Environment"
    assert article["url"] == SOLAR_URL  # the canonical link
    text = article["text"]
    assert text.startswith("The county's first floating array")  # the headline is the title, not the text
    assert "The array is made up of 12,400 panels" in text
    assert text.endswith("at Ashby and Cold Fell.")
    for noise in ("Subscribe", "Kestrel Motors", "Related stories", "Council delays vote", "giant chessboard",
                  "Who approved this", "Comments (3)", "Cookie settings", "14 Quay Street", "Share:"):
        assert noise not in text


def test_page_metadata_from_published_time_publisher_and_a_relative_canonical_link() -> None:
    converted = convert_bytes((NEWS / "bridge.html").read_bytes(), "bridge.html",
                              url="https://www.eastwick-post.example/local/footbridge?utm_source=feed")
    [article] = converted.articles
    assert article["published"] == "2025-06-10"  # article:published_time
    assert article["source"] == "Eastwick Evening Post"  # JSON-LD publisher, no og:site_name
    assert article["url"] == "https://www.eastwick-post.example/local/eastwick-footbridge-opens"
    assert article["byline"] == "Tomasz Nowak"
    assert "We use cookies" not in article["text"] and "Most read" not in article["text"]


def test_page_date_from_its_time_element_and_the_domain_as_source() -> None:
    converted = convert_bytes((NEWS / "market.html").read_bytes(), "market.html",
                              url="https://www.harwood-herald.example/town/clock-strikes-again")
    [article] = converted.articles
    assert article["published"] == "2025-05-30"  # <time datetime>
    assert article["source"] == "harwood-herald.example"
    assert article["url"] == "https://www.harwood-herald.example/town/clock-strikes-again"
    assert article["text"].startswith("The clock on Harwood town hall struck noon")  # no "By —" left over
    assert "Lovely to hear it" not in article["text"]


def test_home_page_of_links_is_skipped_with_the_reason() -> None:
    converted = convert_path(NEWS / "home.html")
    assert converted.articles == []
    [(label, reason)] = converted.skipped
    assert label.endswith("home.html")
    assert reason.startswith("no article on the page") and "list of links" in reason


def test_error_page_is_skipped_with_the_reason() -> None:
    page = (b"<html><head><title>Page not found</title></head><body><nav><a href='/'>Home</a></nav>"
            b"<h1>Sorry, we cannot find that page</h1><p>It may have moved. Try the search box.</p></body></html>")
    converted = convert_bytes(page, "gone.html")
    assert converted.articles == [] and converted.skipped[0][1].startswith("no article on the page")


def test_page_without_a_date_is_skipped_unless_one_is_given() -> None:
    converted = convert_path(NEWS / "no_date.html")
    assert converted.articles == []
    assert converted.skipped == [(str(NEWS / "no_date.html"),
                                  "no publication date on the page (give one with --published YYYY-MM-DD)")]
    article = only_article(NEWS / "no_date.html", published="2025-06-02")
    assert article["published"] == "2025-06-02" and article["source"] == "Millbrook Messenger"


def test_a_date_given_does_not_replace_the_pages_own_date_and_source_replaces_the_site_name() -> None:
    article = only_article(NEWS / "article.html", published="2020-01-01", source="NSG")
    assert article["published"] == "2025-06-12" and article["source"] == "NSG"


def test_bad_options_are_refused_where_they_enter() -> None:
    with pytest.raises(ValueError, match="published must be a date YYYY-MM-DD, got '12/06/2025'"):
        convert_path(NEWS / "article.html", published="12/06/2025")
    with pytest.raises(ValueError, match="source must not be empty"):
        convert_bytes(b"<html></html>", "x.html", source="  ")


# Feeds


def test_rss_feed_gives_one_article_per_entry_with_its_full_content() -> None:
    converted = convert_path(NEWS / "feed.rss")
    museum, anchor = converted.articles
    assert museum["title"] == "Lighthouse keeper's cottage becomes a tide museum"
    assert museum["source"] == "Coastal Wire"  # the feed's title
    assert museum["published"] == "2025-06-13"  # the entry's own day, not UTC's
    assert museum["byline"] == "Owen Pritchard" and museum["section"] == "Culture"
    assert museum["url"] == "https://coastalwire.example/2025/06/13/tide-museum"
    assert "brass tide gauge" in museum["text"]  # content:encoded, not the one-line description
    assert museum["text"].count("\n\n") == 2  # one paragraph per <p>
    assert "<p>" not in anchor["text"] and "3.2 metres long" in anchor["text"]  # the description's HTML as text
    assert converted.skipped == [(f"{NEWS / 'feed.rss'} entry 3 (Ferry company promises new timetable)",
                                  "the entry has no date (give one with --published YYYY-MM-DD)")]


def test_feed_source_and_missing_dates_can_be_given() -> None:
    converted = convert_path(NEWS / "feed.rss", source="Coastal Wire Agency", published="2025-06-11")
    assert [article["source"] for article in converted.articles] == ["Coastal Wire Agency"] * 3
    assert [article["published"] for article in converted.articles] == ["2025-06-13", "2025-06-12", "2025-06-11"]


def test_atom_feed_takes_content_else_summary_and_published_else_updated() -> None:
    converted = convert_path(NEWS / "feed.atom")
    cherries, cable_car = converted.articles
    assert cherries["source"] == "Valley Chronicle" and cherries["byline"] == "Lucia Ferrante"
    assert cherries["published"] == "2025-06-14" and "1,850 tonnes" in cherries["text"]
    assert cable_car["published"] == "2025-06-13"  # <updated>: the entry has no <published>
    assert cable_car["url"] == "https://valley-chronicle.example/transport/cable-car-repairs"
    assert cable_car["text"].startswith("The cable car up the Sonnhorn will stop running on 1 July")
    assert converted.skipped == []


@pytest.mark.parametrize("name", ["feed.rss", "feed.atom"])
def test_feeds_are_told_by_their_content_not_their_name(name: str) -> None:
    data = (NEWS / name).read_bytes()
    assert detect_kind(data, "download") == detect_kind(data, "news.html") == "feed"
    assert len(convert_bytes(data, "download").articles) == 2


def test_something_else_is_skipped_with_the_reason() -> None:
    converted = convert_bytes(b"%PDF-1.7 ...", "report.pdf")
    assert converted.skipped == [("report.pdf", "not a web page, an RSS or Atom feed or a WARC file")]


# Writing into the corpus


def test_saved_articles_are_markdown_the_index_reads_with_stable_names(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    articles = convert_path(NEWS / "feed.atom").articles + [only_article(NEWS / "article.html")]
    report = save_articles(articles, corpus)
    assert report.added == ["2025-06-14-valley-chronicle-orchard-growers-expect-a-record-cherry-harvest",
                            "2025-06-13-valley-chronicle-cable-car-to-close-for-three-weeks-of-repairs",
                            "2025-06-12-northshore-gazette-floating-solar-farm-opens-on-merrow-reservoir"]
    assert report.updated == report.unchanged == report.skipped == []
    [solar] = read_article_file(corpus / f"{report.added[2]}.md", corpus)
    assert (solar.title, solar.source, solar.published, solar.byline, solar.section, solar.url) == (
        "Floating solar farm opens on Merrow reservoir", "Northshore Gazette", "2025-06-12", "Hana Ishikawa",
        "Environment", SOLAR_URL)
    assert solar.text == articles[2]["text"]
    assert sorted(path.name for path in corpus.iterdir()) == sorted(f"{stem}.md" for stem in report.added)  # no temp
    assert len(scan_corpus(corpus).articles) == 3

    again = save_articles(articles, corpus)
    assert again.added == again.updated == [] and again.unchanged == report.added


def test_newer_version_of_an_article_replaces_the_older_and_keeps_its_id(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    first = only_article(NEWS / "article.html")
    [article_id] = save_articles([first], corpus).added
    edited = {**first, "title": "Floating solar farm on Merrow reservoir starts up",
              "text": first["text"].replace("12,400 panels", "12,600 panels"),
              "url": SOLAR_URL.replace("https://www.", "http://WWW.") + "/?utm_source=rss#comments"}
    report = save_articles([edited], corpus)
    assert report.updated == [article_id] and report.added == []
    [saved] = read_article_file(corpus / f"{article_id}.md", corpus)
    assert saved.id == article_id and "12,600 panels" in saved.text and saved.title.endswith("starts up")
    assert len(list(corpus.iterdir())) == 1

    older = {**first, "published": "2025-06-01", "text": first["text"] + " An older draft."}
    report = save_articles([older], corpus)
    assert report.updated == [] and report.skipped == [
        (SOLAR_URL, f"older than the version in the corpus (article {article_id}, published 2025-06-12)")]


def test_newer_version_replaces_an_article_file_of_another_format_under_the_same_id(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "solar-farm.json").write_text(
        '{"title": "Solar farm", "source": "NSG", "published": "2025-06-11", "url": "%s", "text": "Draft."}'
        % SOLAR_URL)
    report = save_articles([only_article(NEWS / "article.html")], corpus)
    assert report.updated == ["solar-farm"]
    assert [path.name for path in corpus.iterdir()] == ["solar-farm.md"]


def test_articles_the_corpus_would_refuse_are_skipped_with_the_reason(tmp_path: Path) -> None:
    good = only_article(NEWS / "article.html")
    report = save_articles([
        good,
        {**good, "title": "x" * 501, "url": None},
        {**good, "url": "https://example.org/a", "source": "s" * 201},
        {**good, "url": "https://example.org/b", "text": "  "},
        {**good, "url": "javascript:alert(1)"},
        {**good, "url": "https://example.org/copy"},
    ], tmp_path / "corpus")
    solar_id = "2025-06-12-northshore-gazette-floating-solar-farm-opens-on-merrow-reservoir"
    assert report.added == [solar_id]
    assert report.skipped == [
        (f"'{'x' * 80}...'", "title is 501 characters, over the 500-character limit"),
        ("https://example.org/a", "source is 201 characters, over the 200-character limit"),
        ("https://example.org/b", "empty body: the article has no text"),
        ("javascript:alert(1)", "url must be an http(s) URL, got 'javascript:alert(1)'"),
        ("https://example.org/copy", f"same text as article {solar_id}, already in the corpus"),
    ]


def test_url_key_ignores_what_does_not_make_another_page() -> None:
    assert url_key("HTTP://Example.org:80/a/b/?utm_source=x&id=3#top") == url_key("https://example.org/a/b?id=3")
    assert url_key("https://example.org/a?id=3") != url_key("https://example.org/a?id=4")
