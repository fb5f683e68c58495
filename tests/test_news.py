"""News from the web into the corpus: pages, feeds, web archives and URLs (rag.news, rag.fetch, rag.corpus_writer)."""
from __future__ import annotations

import gzip
import io
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from rag.corpus_writer import save_articles
from rag.fetch import FetchError, fetch
from rag.ingest import read_article_file, scan_corpus
from rag.news import convert_bytes, convert_path, convert_url, detect_kind
from rag.settings import Settings

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
        ("https://example.org/copy", f"same text as an article already in the corpus ({solar_id})"),
    ]


# Web archives


def warc_response(writer: WARCWriter, uri: str, body: bytes, content_type: str = "text/html; charset=utf-8",
                  status: str = "200 OK", date: str = "2025-06-03T10:00:00Z", **warc_headers: str) -> None:
    http = StatusAndHeaders(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))],
                            protocol="HTTP/1.1")
    writer.write_record(writer.create_warc_record(uri, "response", payload=io.BytesIO(body), http_headers=http,
                                                  warc_headers_dict={"WARC-Date": date, **warc_headers}))


def build_warc(compressed: bool) -> tuple[bytes, list[int]]:
    """A crawl of four sites: two article pages, one without a date of its own, with around them the records a
    crawler writes (warcinfo, a request, an image, a 404 page, a page it cut short itself) and a third article
    last. Returns the file and where each record starts."""
    buffer = io.BytesIO()
    writer = WARCWriter(buffer, gzip=compressed)
    starts = []

    def record(write: Callable[[], None]) -> None:
        starts.append(buffer.tell())
        write()

    record(lambda: writer.write_record(writer.create_warcinfo_record("news.warc", {"software": "tests"})))
    request = StatusAndHeaders("GET /town/clock HTTP/1.1", [("Host", "www.harwood-herald.example")],
                               is_http_request=True)
    record(lambda: writer.write_record(writer.create_warc_record(
        "https://www.harwood-herald.example/town/clock", "request", http_headers=request)))
    record(lambda: warc_response(writer, "https://www.harwood-herald.example/town/clock",
                                 (NEWS / "market.html").read_bytes()))
    record(lambda: warc_response(writer, "https://www.harwood-herald.example/img/clock.png",
                                 b"\x89PNG\r\n\x1a\n" + bytes(200), content_type="image/png"))
    record(lambda: warc_response(writer, "https://millbrook-messenger.example/news/towpath",
                                 (NEWS / "no_date.html").read_bytes(), date="2025-06-04T08:00:00Z"))
    record(lambda: warc_response(writer, "https://www.northshore-gazette.example/news/cut-short",
                                 (NEWS / "article.html").read_bytes()[:3000], **{"WARC-Truncated": "length"}))
    record(lambda: warc_response(writer, "https://www.northshore-gazette.example/missing",
                                 b"<html><body><h1>Not found</h1></body></html>", status="404 Not Found"))
    record(lambda: warc_response(writer, "https://www.eastwick-post.example/local/footbridge",
                                 (NEWS / "bridge.html").read_bytes()))
    return buffer.getvalue(), starts


@pytest.mark.parametrize("compressed", [False, True], ids=["warc", "warc.gz"])
def test_warc_html_responses_become_articles_and_other_records_are_counted(tmp_path: Path, compressed: bool) -> None:
    data, _ = build_warc(compressed)
    path = tmp_path / ("crawl.warc.gz" if compressed else "crawl.warc")
    path.write_bytes(data)
    converted = convert_path(path)
    clock, towpath, bridge = converted.articles
    assert clock["title"] == "Town hall clock strikes again after six silent years"
    assert clock["url"] == "https://www.harwood-herald.example/town/clock"  # WARC-Target-URI
    assert clock["published"] == "2025-05-30" and clock["source"] == "harwood-herald.example"
    assert towpath["published"] == "2025-06-04"  # no date on the page: WARC-Date, the date of last resort
    assert towpath["source"] == "Millbrook Messenger"
    assert bridge["url"] == "https://www.eastwick-post.example/local/eastwick-footbridge-opens"  # its canonical link
    assert converted.skipped == [(f"{path} record 6 (https://www.northshore-gazette.example/news/cut-short)",
                                  "truncated by the crawler (WARC-Truncated: length): the page may be cut short")]
    assert converted.passed_over == {"warcinfo": 1, "request": 1, "response image/png": 1, "response HTTP 404": 1}
    assert convert_bytes(data, path.name).articles == converted.articles  # the same read from memory


@pytest.mark.parametrize("compressed", [False, True], ids=["warc", "warc.gz"])
def test_warc_cut_short_keeps_the_records_before_and_reports_the_last(tmp_path: Path, compressed: bool) -> None:
    data, _ = build_warc(compressed)
    path = tmp_path / "cut.warc"
    path.write_bytes(data[:-300])
    converted = convert_path(path)
    assert [article["title"][:10] for article in converted.articles] == ["Town hall ", "Volunteers"]
    label, reason = converted.skipped[-1]
    assert label == f"{path} record 8 (https://www.eastwick-post.example/local/footbridge)"
    assert reason.startswith("truncated: the file ends inside it")


@pytest.mark.parametrize("compressed", [False, True], ids=["warc", "warc.gz"])
def test_warc_damaged_record_is_reported_and_the_rest_still_read(tmp_path: Path, compressed: bool) -> None:
    data, starts = build_warc(compressed)
    damaged = data[:starts[2] + 400] + data[starts[2] + 500:]  # 100 bytes gone from the middle of the clock page
    converted = convert_bytes(damaged, "damaged.warc")
    assert [article["title"][:10] for article in converted.articles] == ["Volunteers", "New footbr"]
    assert len(converted.skipped) == 2
    label, reason = converted.skipped[0]
    assert label.startswith("damaged.warc record 3")
    assert reason.startswith(("damaged:", "unreadable:", "truncated"))
    garbage = data[:starts[3]] + b"not a record\r\n" * 20 + data[starts[3]:]
    converted = convert_bytes(garbage, "garbage.warc")
    assert len(converted.articles) == 3
    assert converted.skipped[0] == (f"garbage.warc record 4 (at byte {starts[3]:,})", "unreadable: not a gzip member"
                                    if compressed else "unreadable: Invalid WARC record, first line: not a record")


def test_warc_compressed_as_one_gzip_stream_is_refused_with_the_remedy() -> None:
    data, _ = build_warc(compressed=False)
    converted = convert_bytes(gzip.compress(data), "one-stream.warc.gz")  # warcio itself would loop for ever
    assert converted.articles == []
    assert converted.skipped == [("one-stream.warc.gz record 1", "unreadable: compressed as one gzip stream instead "
                                  "of one gzip member per record (`warcio recompress IN OUT` makes a readable copy)")]


# URLs, served by a local server


class _Handler(BaseHTTPRequestHandler):
    """The pages of a small news site and the ways fetching a URL goes wrong."""

    stop = threading.Event()

    def log_message(self, *args: object) -> None:
        pass

    def send(self, status: int, body: bytes, content_type: str = "text/html; charset=utf-8",
             headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        base = f"http://{self.headers['Host']}"
        path = self.path
        if path == "/news/footbridge":
            self.send(200, (NEWS / "bridge.html").read_bytes())
        elif path == "/news/lifeboat":
            self.send(200, (NEWS / "lifeboat.html").read_bytes())
        elif path == "/news/clock":
            self.send(200, (NEWS / "market.html").read_bytes())
        elif path == "/old-footbridge-link":
            self.send(301, b"", headers={"Location": "/news/footbridge"})
        elif path.startswith("/loop"):
            self.send(302, b"", headers={"Location": f"/loop{len(path)}"})
        elif path == "/slow":
            self.stop.wait(5)
            self.send(200, b"<html><body>too late</body></html>")
        elif path == "/drip":
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            for _ in range(20):
                if self.stop.wait(0.25):
                    return
                self.wfile.write(b"<p>still coming</p>\n")
                self.wfile.flush()
        elif path == "/report.pdf":
            self.send(200, b"%PDF-1.7\n" + bytes(500), content_type="application/pdf")
        elif path == "/photo.jpg":
            self.send(200, b"\xff\xd8\xff\xe0" + bytes(500), content_type="image/jpeg")
        elif path == "/huge":  # no Content-Length: only reading tells the size
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            try:
                for _ in range(100):
                    self.wfile.write(b"<p>" + b"word " * 2000 + b"</p>\n")
            except (BrokenPipeError, ConnectionResetError):
                pass
        elif path == "/huge-declared":
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(500_000_000))
            self.end_headers()
        elif path == "/feed.rss":
            feed = (NEWS / "feed.rss").read_text().replace("https://coastalwire.example/2025/06/13/tide-museum",
                                                           f"{base}/news/footbridge")
            feed = feed.replace("https://coastalwire.example/2025/06/12/second-anchor", f"{base}/news/clock")
            feed = feed.replace("https://coastalwire.example/2025/06/11/ferry-timetable", f"{base}/missing")
            self.send(200, feed.encode(), content_type="application/rss+xml")
        else:
            self.send(404, b"<html><body><h1>Page not found</h1></body></html>")


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that gave up (timeout, size limit) leaves a broken pipe: expected here


@pytest.fixture(scope="module")
def news_site() -> Iterator[str]:
    server = _QuietServer(("127.0.0.1", 0), _Handler)
    _Handler.stop.clear()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    _Handler.stop.set()
    server.shutdown()
    server.server_close()


FAST = Settings(fetch_timeout_s=1.0, fetch_max_bytes=200_000)


def test_url_of_a_page_is_fetched_and_its_canonical_link_kept(news_site: str) -> None:
    converted = convert_url(f"{news_site}/old-footbridge-link", settings=FAST)  # one redirect is fine
    [article] = converted.articles
    assert article["title"] == "New footbridge links the two halves of Eastwick market"
    assert article["url"] == f"{news_site}/local/eastwick-footbridge-opens"
    assert article["published"] == "2025-06-10" and "58 metres long" in article["text"]


@pytest.mark.parametrize("path, reason", [
    ("/missing", "HTTP 404 Not Found"),
    ("/report.pdf", "a PDF (application/pdf), not a web page, feed or web archive"),
    ("/photo.jpg", "an image (image/jpeg), not a web page, feed or web archive"),
    ("/loop", "more than 5 redirects (a redirect loop?)"),
    ("/slow", "timed out after 1 s"),
    ("/drip", "timed out after 1 s"),
    ("/huge", "body is over the 200,000-byte limit (reading stopped)"),
    ("/huge-declared", "body of 500,000,000 bytes is over the 200,000-byte limit"),
])
def test_url_that_cannot_be_fetched_is_skipped_with_the_reason(news_site: str, path: str, reason: str) -> None:
    started = time.monotonic()
    converted = convert_url(f"{news_site}{path}", settings=FAST)
    assert converted.articles == [] and converted.skipped == [(f"{news_site}{path}", reason)]
    assert time.monotonic() - started < 3


def test_fetch_raises_one_error_type_with_the_reason(news_site: str) -> None:
    with pytest.raises(FetchError) as caught:
        fetch(f"{news_site}/report.pdf", settings=FAST)
    assert caught.value.reason.startswith("a PDF") and caught.value.url == f"{news_site}/report.pdf"
    with pytest.raises(FetchError, match="url must be an absolute http"):
        fetch("file:///etc/passwd")
    with pytest.raises(FetchError, match="network error"):
        fetch("http://127.0.0.1:9/", settings=FAST)  # nothing listens on the discard port


def test_feed_url_with_follow_links_takes_each_entrys_page(news_site: str) -> None:
    converted = convert_url(f"{news_site}/feed.rss", follow_links=True, settings=FAST)
    bridge, clock = converted.articles
    assert "58 metres long" in bridge["text"] and bridge["source"] == "Eastwick Evening Post"  # the page, not the feed
    assert clock["published"] == "2025-05-30" and "38,000 pounds" in clock["text"]
    assert converted.skipped == [
        (f"{news_site}/feed.rss entry 3 (Ferry company promises new timetable)",
         "following its link: HTTP 404 Not Found")]


# rag add, end to end with the real models

QUESTIONS = [  # (question, words of the article that answers it, where the article came from)
    ("How many panels make up the floating solar farm on the Merrow reservoir?", "12,400", "page file"),
    ("How much will adults pay to visit the tide museum at Gull Point?", "four pounds", "RSS content:encoded"),
    ("How long is the iron anchor the divers lifted in the harbour?", "3.2 metres", "RSS description"),
    ("When will the island ferry company publish its new timetable?", "next week", "RSS, --published"),
    ("How many tonnes of cherries do the upper valley growers expect to pick?", "1,850", "Atom content"),
    ("When will the cable car up the Sonnhorn stop running?", "1 July", "Atom summary"),
    ("How much money did Harwood raise for the town hall clock?", "38,000", "WARC"),
    ("How much crushed limestone was used on the Millbrook towpath?", "260 tonnes", "WARC, WARC-Date"),
    ("How long is the new footbridge at Eastwick market?", "58 metres", "WARC, canonical link"),
    ("What is the top speed of the new Port Aske lifeboat?", "25 knots", "URL"),
]


@pytest.mark.slow
def test_rag_add_takes_pages_feeds_archives_and_urls_and_each_article_answers_a_question(
        tmp_path: Path, news_site: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from rag.cli import EXIT_SKIPPED, main
    from rag.pipeline import Pipeline
    from rag.settings import get_settings

    monkeypatch.setenv("RAG_FETCH_TIMEOUT_S", "1")
    get_settings.cache_clear()
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    warc = tmp_path / "crawl.warc.gz"
    warc.write_bytes(build_warc(compressed=True)[0])
    result = CliRunner().invoke(main, [
        "add", str(NEWS / "article.html"), str(NEWS / "home.html"), str(NEWS / "feed.rss"), str(NEWS / "feed.atom"),
        str(warc), f"{news_site}/news/lifeboat", f"{news_site}/missing", "--published", "2025-06-11",
        "--corpus", str(corpus), "--index", str(index), "-q"])
    assert result.exit_code == EXIT_SKIPPED, result.output
    assert "Traceback" not in result.output
    assert f"not added {NEWS / 'home.html'}: no article on the page" in result.output
    assert f"not added {news_site}/missing: HTTP 404 Not Found" in result.output
    assert ("10 added, 0 updated, 0 unchanged, 3 skipped (1 no article on the page, 1 truncated by the crawler, "
            f"1 HTTP 404 Not Found) into {corpus}") in result.output
    assert "passed over 4 WARC records that are not HTML pages (1 warcinfo, 1 request, 1 response image/png, " \
           "1 response HTTP 404)" in result.output
    assert "10 added, 0 changed, 0 removed, 0 unchanged" in result.output  # the index's own line

    pipeline = Pipeline(index_dir=index)
    articles = {article.id: article for article in scan_corpus(corpus).articles}
    for question, words, origin in QUESTIONS:
        reply = pipeline.ask(question)
        assert reply.answers, (question, origin)
        best = reply.answers[0]
        assert words in best.quote, (question, origin, best.quote)
        assert best.quote == articles[best.article.id].text[best.quote_start:best.quote_end]

    # The same story again with an edit: it replaces the older version under the same id.
    edited = tmp_path / "solar-edited.html"
    edited.write_text((NEWS / "article.html").read_text().replace("12,400 panels", "12,600 panels"))
    result = CliRunner().invoke(main, ["add", str(edited), "--corpus", str(corpus), "--index", str(index), "-q"])
    assert result.exit_code == 0, result.output
    assert f"0 added, 1 updated, 0 unchanged, 0 skipped into {corpus}" in result.output
    assert "0 added, 1 changed, 0 removed, 9 unchanged" in result.output
    reply = Pipeline(index_dir=index).ask(QUESTIONS[0][0])
    assert "12,600" in reply.answers[0].quote
