"""News as it arrives, made into articles: web pages (trafilatura), RSS and Atom feeds (feedparser), web archives
(warcio) and URLs (rag.fetch). Each article is a dict of the usual fields (title, source, published, byline, section,
url, text), ready for `rag.corpus_writer.save_articles`; whatever is not an article is skipped with the reason."""
from __future__ import annotations

import datetime as dt
import email.utils
import io
import mmap
import re
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

from rag.corpus_writer import SaveReport, save_articles
from rag.settings import Settings, get_settings

__all__ = ["Converted", "SaveReport", "convert_bytes", "convert_path", "convert_url", "detect_kind", "save_articles"]

ARTICLE_FIELDS = ("title", "source", "published", "byline", "section", "url", "text")
HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
FEED_SUFFIXES = {".xml", ".rss", ".atom", ".rdf"}
WARC_SUFFIXES = {".warc", ".warc.gz"}
# A page is an article when it has this many words of running text (sentences of a few words or more, not link
# labels): a home page, a section front, an error page or a list of links has a handful.
MIN_PROSE_WORDS = 40
_PROSE_LINE_WORDS = 6
_ROOT_ELEMENT = re.compile(rb"\A(?:\s|<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>]*>)*<([A-Za-z_][\w:.-]*)", re.S | re.I)
_BLOCK_TAGS = {"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "tr",
               "table", "section", "article", "figure", "figcaption", "dd", "dt", "hr"}
_WARC_RECORD_START = b"WARC/1."
_GZIP_MEMBER_START = b"\x1f\x8b\x08"


@dataclass
class Converted:
    """What came out of one input: articles (dicts of ARTICLE_FIELDS), items skipped as (label, reason), and
    WARC records that are not HTML pages, counted by kind ("request", "response image/png") and passed over."""

    articles: list[dict] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    passed_over: Counter[str] = field(default_factory=Counter)

    def extend(self, other: Converted) -> None:
        self.articles.extend(other.articles)
        self.skipped.extend(other.skipped)
        self.passed_over.update(other.passed_over)


class _NotAnArticle(Exception):
    """Why one page or entry is not made into an article."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def check_published(published: str | None) -> str | None:
    """A fallback publication date as YYYY-MM-DD, or ValueError naming the value."""
    if published is None:
        return None
    try:
        return dt.date.fromisoformat(str(published).strip()).isoformat()
    except ValueError:
        raise ValueError(f"published must be a date YYYY-MM-DD, got {published!r}") from None


def _check_source(source: str | None) -> str | None:
    if source is None:
        return None
    source = source.strip()
    if not source:
        raise ValueError("source must not be empty")
    return source


def detect_kind(data: bytes, name: str = "", content_type: str | None = None) -> str | None:
    """What a body holds, by its content first and its name or media type second: "warc", "feed", "html", or None."""
    head = data[:4096]
    if head.startswith(_WARC_RECORD_START):
        return "warc"
    if head.startswith(_GZIP_MEMBER_START):
        try:
            if zlib.decompressobj(wbits=31).decompress(head, 16).startswith(_WARC_RECORD_START):
                return "warc"
        except zlib.error:
            pass
        return None
    text = head.lstrip(b"\xef\xbb\xbf")
    root = _ROOT_ELEMENT.match(text)
    tag = root.group(1).decode("ascii", "replace").lower() if root else ""
    if tag in ("rss", "feed", "rdf:rdf", "rdf"):
        return "feed"
    if tag in ("html", "head", "body") or re.match(rb"\s*<!doctype\s+html", text, re.I):
        return "html"
    kind = (content_type or "").split(";")[0].strip().lower()
    lowered = name.lower()
    if kind in ("application/rss+xml", "application/atom+xml", "application/rdf+xml", "application/feed+json") \
            or (tag and any(lowered.endswith(suffix) for suffix in FEED_SUFFIXES)):
        return "feed"
    if kind in ("text/html", "application/xhtml+xml") or any(lowered.endswith(s) for s in HTML_SUFFIXES):
        return "html" if b"<" in text else None
    return None


# ---------------------------------------------------------------------------------------------------------------
# Web pages


def _domain(url: str | None) -> str | None:
    host = urlsplit(url).hostname if url else None
    return host.removeprefix("www.") if host else None


def _lines(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.splitlines() if line.strip()]


def _link_texts(tree: object) -> set[str]:
    """The labels of the page's links, as compared with lines of text."""
    anchors = tree.iter("a")  # type: ignore[attr-defined]
    return {" ".join(anchor.text_content().split()).casefold() for anchor in anchors}


def _canonical_url(tree: object, url: str | None) -> str | None:
    """The page's canonical link (else og:url) made absolute against `url`; None without an absolute one."""
    from urllib.parse import urljoin

    for xpath in ('//link[contains(concat(" ", normalize-space(@rel), " "), " canonical ")]/@href',
                  '//meta[@property="og:url"]/@content'):
        for value in tree.xpath(xpath):  # type: ignore[attr-defined]
            candidate = urljoin(url or "", value.strip())
            if urlsplit(candidate).scheme in ("http", "https") and urlsplit(candidate).hostname:
                return candidate
    return None


def _prose_words(lines: list[str], links: set[str]) -> int:
    """Words in lines of running text: long enough to be a sentence and not the label of a link."""
    return sum(len(line.split()) for line in lines
               if len(line.split()) >= _PROSE_LINE_WORDS and line.casefold() not in links)


def html_to_article(html: bytes | str, *, url: str | None = None, published: str | None = None,
                    source: str | None = None, fallback_published: str | None = None) -> dict:
    """One page's article with trafilatura: the main text without navigation, related links, comments or footer;
    title, byline (the author), published (the page's own date: JSON-LD, article:published_time, <time>, else
    `published`, else `fallback_published`), source (`source`, else og:site_name or the JSON-LD publisher, else
    the domain), section and url (the canonical link, else `url`). Raises _NotAnArticle with the reason."""
    import lxml.html
    import trafilatura

    try:
        tree = lxml.html.document_fromstring(html)
    except (ValueError, lxml.etree.ParserError) as error:
        raise _NotAnArticle(f"not a readable HTML page ({error})") from None
    latest = (dt.date.today() + dt.timedelta(days=1)).isoformat()  # a page dated in a time zone ahead of ours
    document = trafilatura.bare_extraction(
        tree, url=url, with_metadata=True, include_comments=False, include_tables=True, include_images=False,
        date_extraction_params={"extensive_search": False, "original_date": True, "max_date": latest})
    if document is None or not (document.text or "").strip():
        raise _NotAnArticle("no article on the page (a home page, an error page or a list of links?)")
    title = " ".join((document.title or "").split())
    lines = _lines(document.text)
    if lines and title and lines[0].casefold() == title.casefold():
        lines = lines[1:]  # the headline, repeated as the first line of the text
    while lines and len(lines[0].split()) < 4 and not lines[0].endswith((".", "!", "?", '"')):
        lines = lines[1:]  # what is left of a byline or dateline ("By —"), a kicker, a label
    prose = _prose_words(lines, _link_texts(tree))
    if prose < MIN_PROSE_WORDS:
        raise _NotAnArticle(f"no article on the page: {prose} words of running text, the rest links or labels "
                            "(a home page, an error page or a list of links?)")
    if not title:
        raise _NotAnArticle("no title on the page")
    date = document.date or published or fallback_published
    if not date:
        raise _NotAnArticle("no publication date on the page (give one with --published YYYY-MM-DD)")
    page_url = _canonical_url(tree, url) or url
    section = next((category for category in document.categories or [] if 0 < len(category) <= 200), None)
    return {
        "title": title,
        "source": source or document.sitename or _domain(page_url) or None,
        "published": date,
        "byline": document.author or None,
        "section": section,
        "url": page_url or None,
        "text": "\n\n".join(lines),
    }


def _convert_html(data: bytes, name: str, *, url: str | None, published: str | None, source: str | None) -> Converted:
    converted = Converted()
    try:
        converted.articles.append(html_to_article(data, url=url, published=published, source=source))
    except _NotAnArticle as error:
        converted.skipped.append((name, error.reason))
    return converted


# ---------------------------------------------------------------------------------------------------------------
# Feeds


def html_fragment_text(fragment: str) -> str:
    """The text of an HTML fragment (a feed entry's content), one paragraph per block element."""
    import lxml.html

    if "<" not in fragment:
        return "\n\n".join(_lines(fragment))
    try:
        root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    except (ValueError, lxml.etree.ParserError):
        return ""
    for element in root.iter("script", "style", "noscript"):
        element.drop_tree()
    for element in root.iter():
        if isinstance(element.tag, str) and element.tag.lower() in _BLOCK_TAGS:
            element.tail = "\n" + (element.tail or "")
            if element.tag.lower() != "br":
                element.text = "\n" + (element.text or "")
    return "\n\n".join(_lines(root.text_content()))


def _entry_date(entry: dict) -> str | None:
    """The entry's date as YYYY-MM-DD in its own time zone (feedparser's parsed dates are in UTC, which can move
    an evening's article to the next day): published, else updated."""
    for key in ("published", "updated", "created"):
        raw = (entry.get(key) or "").strip()
        if not raw:
            continue
        try:
            return email.utils.parsedate_to_datetime(raw).date().isoformat()
        except (TypeError, ValueError, IndexError):
            pass
        try:
            return dt.datetime.fromisoformat(raw.replace("Z", "+00:00")).date().isoformat()
        except ValueError:
            pass
        parsed = entry.get(f"{key}_parsed")
        if parsed:
            return dt.date(parsed.tm_year, parsed.tm_mon, parsed.tm_mday).isoformat()
    return None


def _entry_text(entry: dict) -> str:
    """The entry's full content where the feed carries it (content:encoded, Atom content), else its summary."""
    contents = [item for item in entry.get("content") or [] if (item.get("value") or "").strip()]
    if contents:
        best = max(contents, key=lambda item: len(item.get("value") or ""))
        return html_fragment_text(best["value"])
    return html_fragment_text(entry.get("summary") or "")


def _entry_label(name: str, number: int, entry: dict) -> str:
    title = " ".join((entry.get("title") or "").split())
    return f"{name} entry {number}" + (f" ({title[:80]})" if title else "")


def _convert_feed(data: bytes, name: str, *, url: str | None, published: str | None, source: str | None,
                  follow_links: bool, progress: bool, settings: Settings) -> Converted:
    import feedparser

    converted = Converted()
    # A stream, never bytes or str: feedparser would open a string that names a file or URL.
    parsed = feedparser.parse(io.BytesIO(data), response_headers={"content-location": url} if url else None)
    if not parsed.get("version") and not parsed.entries:
        problem = parsed.get("bozo_exception")
        converted.skipped.append((name, "not a readable RSS or Atom feed" + (f" ({problem})" if problem else "")))
        return converted
    if not parsed.entries:
        converted.skipped.append((name, "the feed has no entries"))
        return converted
    feed_title = " ".join((parsed.feed.get("title") or "").split())
    feed_source = source or feed_title or _domain(parsed.feed.get("link")) or _domain(url)
    entries: Iterator = enumerate(parsed.entries, start=1)
    client = None
    with ExitStack() as stack:
        if follow_links:
            from tqdm.auto import tqdm

            from rag.fetch import make_client

            client = stack.enter_context(make_client(settings))
            entries = iter(tqdm(list(entries), desc="following links", unit="page", leave=False,
                                disable=not progress or len(parsed.entries) <= 3))
        for number, entry in entries:
            label = _entry_label(name, number, entry)
            try:
                article = (_followed_entry(entry, client, published=published, source=source, settings=settings)
                           if follow_links
                           else _entry_article(entry, published=published, source=feed_source))
            except _NotAnArticle as error:
                converted.skipped.append((label, error.reason))
                continue
            converted.articles.append(article)
    return converted


def _entry_article(entry: dict, *, published: str | None, source: str | None) -> dict:
    title = " ".join((entry.get("title") or "").split())
    if not title:
        raise _NotAnArticle("the entry has no title")
    text = _entry_text(entry)
    if not text:
        raise _NotAnArticle("the entry has no text")
    date = _entry_date(entry) or published
    if not date:
        raise _NotAnArticle("the entry has no date (give one with --published YYYY-MM-DD)")
    tags = [tag.get("term") for tag in entry.get("tags") or [] if 0 < len(tag.get("term") or "") <= 200]
    return {"title": title, "source": source, "published": date, "byline": entry.get("author") or None,
            "section": tags[0] if tags else None, "url": entry.get("link") or None, "text": text}


def _followed_entry(entry: dict, client: object, *, published: str | None, source: str | None,
                    settings: Settings) -> dict:
    """The entry's own page, fetched and extracted like any page; the entry's date stands in for a missing one."""
    from rag.fetch import FetchError, fetch

    link = entry.get("link")
    if not link:
        raise _NotAnArticle("the entry has no link to follow")
    try:
        page = fetch(link, settings=settings, client=client)  # type: ignore[arg-type]
    except FetchError as error:
        raise _NotAnArticle(f"following its link: {error.reason}") from None
    if detect_kind(page.content, page.url, page.content_type) != "html":
        raise _NotAnArticle(f"following its link: {page.url} is not a web page")
    return html_to_article(page.content, url=page.url, published=_entry_date(entry) or published, source=source)


# ---------------------------------------------------------------------------------------------------------------
# Web archives


def _warc_date(record: object) -> str | None:
    raw = record.rec_headers.get_header("WARC-Date") or ""  # type: ignore[attr-defined]
    try:
        return dt.datetime.fromisoformat(raw.strip().replace("Z", "+00:00")).date().isoformat()
    except ValueError:
        return None


def _next_record_start(buffer: bytes | mmap.mmap, start: int, compressed: bool) -> int:
    """Where the next readable record begins at or after `start`, or -1. A WARC has no index, so after damage the
    reader looks for the next gzip member that opens a WARC record (or, uncompressed, the next 'WARC/1.x' line)."""
    if not compressed:
        while (found := buffer.find(_WARC_RECORD_START, start)) != -1:
            if re.match(rb"WARC/1\.[01]\r?\n", buffer[found:found + 10]):
                return found
            start = found + 1
        return -1
    while (found := buffer.find(_GZIP_MEMBER_START, start)) != -1:
        try:
            if zlib.decompressobj(wbits=31).decompress(buffer[found:found + 4096], 16).startswith(_WARC_RECORD_START):
                return found
        except zlib.error:
            pass
        start = found + 1
    return -1


def _convert_warc(buffer: bytes | mmap.mmap, stream: BinaryIO, name: str, *, published: str | None,
                  source: str | None, max_record_bytes: int) -> Converted:
    """Every HTML response record of a WARC as an article; other records counted; a damaged or truncated record
    reported, and reading goes on from the next record that can be read."""
    converted = Converted()
    read = _read_gzip_warc if buffer[:3] == _GZIP_MEMBER_START else _read_plain_warc
    read(buffer, stream, name, converted, published=published, source=source, max_record_bytes=max_record_bytes)
    return converted


def _unreadable(error: Exception) -> str:
    reason = "".join(c if c.isascii() and c.isprintable() else "?" for c in " ".join(str(error).split()))
    return f"unreadable: {reason[:120] or type(error).__name__}"


def _read_plain_warc(buffer: bytes | mmap.mmap, stream: BinaryIO, name: str, converted: Converted, *,
                     published: str | None, source: str | None, max_record_bytes: int) -> None:
    from warcio.archiveiterator import ArchiveIterator

    size = len(buffer)
    position, number = 0, 0
    while position < size:
        stream.seek(position)
        iterator = ArchiveIterator(stream, check_digests=True)
        resume = -1
        try:
            for record in iterator:
                number += 1
                body = _html_payload(record, converted, max_record_bytes)
                start = iterator.get_record_offset()  # reads the record to its end, which checks its digests
                end = start + iterator.get_record_length()
                problem = _damage(record) or ("truncated: the file ends inside it" if end > size else None)
                if problem:
                    converted.skipped.append((_record_label(name, number, record), problem))
                    resume = _next_record_start(buffer, start + 1, compressed=False)
                    break
                if body is not None:
                    _warc_page(record, body, converted, _record_label(name, number, record), published=published,
                               source=source, max_record_bytes=max_record_bytes)
                position = end
            else:
                rest = buffer[position:min(size, position + 64)]
                if position < size and (size - position > 64 or rest.strip(b"\r\n\x00 \t")):
                    number += 1
                    converted.skipped.append((f"{name} record {number} (at byte {position:,})",
                                              "truncated or damaged: no whole record can be read from here"))
                    resume = _next_record_start(buffer, position + 1, compressed=False)
        except Exception as error:  # noqa: BLE001 - warcio raises what it meets (AttributeError...) on damaged input
            at = max(position, iterator.offset or 0)
            number += 1
            converted.skipped.append((f"{name} record {number} (at byte {at:,})", _unreadable(error)))
            resume = _next_record_start(buffer, at + 1, compressed=False)
        if resume <= position:
            break
        position = resume


class _Window:
    """`length` bytes of a seekable stream from `start`, read as a stream of their own."""

    def __init__(self, stream: BinaryIO, start: int, length: int) -> None:
        self.stream, self.start, self.length, self.position = stream, start, length, 0

    def read(self, size: int = -1) -> bytes:
        left = self.length - self.position
        size = left if size is None or size < 0 else min(size, left)
        if size <= 0:
            return b""
        self.stream.seek(self.start + self.position)
        data = self.stream.read(size)
        self.position += len(data)
        return data

    def tell(self) -> int:
        return self.position


def _gzip_members(buffer: bytes | mmap.mmap) -> Iterator[tuple[int, int, int, str | None]]:
    """Each gzip member of a .warc.gz as (start, end, size decompressed, problem or None), found by decompressing
    it (the output is not kept). A broken member is reported and the walk goes on at the next one."""
    size, position = len(buffer), 0
    while position < size:
        if buffer[position:position + 3] != _GZIP_MEMBER_START:
            following = _next_record_start(buffer, position + 1, compressed=True)
            if buffer[position:following if following != -1 else size].strip(b"\r\n\x00 \t"):
                yield position, following, 0, "unreadable: not a gzip member"
            if following == -1:
                return
            position = following
            continue
        decompressor = zlib.decompressobj(wbits=31)
        offset, produced = position, 0
        try:
            while offset < size and not decompressor.eof:
                chunk = data = buffer[offset:offset + 65_536]
                while data and not decompressor.eof:
                    produced += len(decompressor.decompress(data, 1 << 20))
                    data = decompressor.unconsumed_tail
                offset += len(chunk) - len(decompressor.unused_data)
        except zlib.error as error:
            following = _next_record_start(buffer, position + 1, compressed=True)
            yield position, following if following != -1 else size, produced, f"damaged: broken gzip data ({error})"
            if following == -1:
                return
            position = following
            continue
        if not decompressor.eof:
            yield position, size, produced, "truncated: the file ends inside it"
            return
        yield position, offset, produced, None
        position = offset


def _peek_target_uri(buffer: bytes | mmap.mmap, start: int) -> str | None:
    """The WARC-Target-URI in the first bytes of a gzip member that cannot be read whole, to name it."""
    try:
        head = zlib.decompressobj(wbits=31).decompress(buffer[start:start + 8192], 8192)
    except zlib.error:
        return None
    match = re.search(rb"\r?\nWARC-Target-URI:[ \t]*<?([^\s>]+)", head.split(b"\r\n\r\n", 1)[0])
    return match.group(1).decode("utf-8", "replace")[:300] if match else None


def _read_gzip_warc(buffer: bytes | mmap.mmap, stream: BinaryIO, name: str, converted: Converted, *,
                    published: str | None, source: str | None, max_record_bytes: int) -> None:
    """A .warc.gz read one gzip member (one record) at a time: warcio is never handed more than one member, since
    it can loop for ever on a file compressed as one stream."""
    from warcio.archiveiterator import ArchiveIterator

    for number, (start, end, produced, problem) in enumerate(_gzip_members(buffer), start=1):
        label = f"{name} record {number} (at byte {start:,})"
        if problem:
            target = _peek_target_uri(buffer, start)
            converted.skipped.append((f"{name} record {number} ({target})" if target else label, problem))
            continue
        try:
            record = next(iter(ArchiveIterator(_Window(stream, start, end - start), check_digests=True)), None)
            if record is None:
                converted.skipped.append((label, "unreadable: no WARC record in it"))
                continue
            label = _record_label(name, number, record)
            body = _html_payload(record, converted, max_record_bytes)
            while record.raw_stream.read(65_536):  # to its end, which checks its digests
                pass
            declared = record.rec_headers.get_header("Content-Length") or ""
            whole = record.rec_headers.total_len + int(declared) + 4 if declared.isdigit() else produced
            if produced > whole + 4:  # the member goes on past its record: warcio would be at risk
                converted.skipped.append((label, "unreadable: compressed as one gzip stream instead of one gzip "
                                                 "member per record (`warcio recompress IN OUT` makes a readable "
                                                 "copy)"))
                return
            problem = _damage(record)
        except Exception as error:  # noqa: BLE001 - warcio raises what it meets (AttributeError...) on damaged input
            converted.skipped.append((label, _unreadable(error)))
            continue
        if problem:
            converted.skipped.append((label, problem))
        elif body is not None:
            _warc_page(record, body, converted, label, published=published, source=source,
                       max_record_bytes=max_record_bytes)


def _record_label(name: str, number: int, record: object) -> str:
    target = record.rec_headers.get_header("WARC-Target-URI")  # type: ignore[attr-defined]
    return f"{name} record {number}" + (f" ({target})" if target else "")


def _html_payload(record: object, converted: Converted, max_record_bytes: int) -> bytes | None:
    """The page of an HTML response record (up to one byte past the limit); other records are counted and None."""
    rec_type = record.rec_type  # type: ignore[attr-defined]
    if rec_type != "response":
        converted.passed_over[rec_type] += 1
        return None
    http = record.http_headers  # type: ignore[attr-defined]
    kind = ((http.get_header("Content-Type") if http else None) or "").split(";")[0].strip().lower()
    if kind not in ("text/html", "application/xhtml+xml"):
        converted.passed_over[f"response {kind or 'without a content type'}"] += 1
        return None
    status = http.get_statuscode() or ""
    if not status.startswith("2"):
        converted.passed_over[f"response HTTP {status}"] += 1
        return None
    return record.content_stream().read(max_record_bytes + 1)  # type: ignore[attr-defined]


def _damage(record: object) -> str | None:
    """Why a record read to its end cannot be trusted: the file ends inside it, or its digest does not match."""
    missing = getattr(record.raw_stream, "limit", 0)  # type: ignore[attr-defined]
    if missing > 0:
        return f"truncated: the file ends inside it ({missing:,} bytes missing)"
    checker = record.digest_checker  # type: ignore[attr-defined]
    if checker.passed is False:
        return "damaged: " + "; ".join(checker.problems)
    return None


def _warc_page(record: object, body: bytes, converted: Converted, label: str, *, published: str | None,
               source: str | None, max_record_bytes: int) -> None:
    truncated = record.rec_headers.get_header("WARC-Truncated")  # type: ignore[attr-defined]
    if truncated:
        converted.skipped.append((label, f"truncated by the crawler (WARC-Truncated: {truncated}): the page may be "
                                         "cut short"))
        return
    if len(body) > max_record_bytes:
        converted.skipped.append((label, f"page over the {max_record_bytes:,}-byte limit"))
        return
    target = record.rec_headers.get_header("WARC-Target-URI")  # type: ignore[attr-defined]
    try:
        converted.articles.append(html_to_article(body, url=target, published=published, source=source,
                                                  fallback_published=_warc_date(record)))
    except _NotAnArticle as error:
        converted.skipped.append((label, error.reason))
    except Exception as error:  # noqa: BLE001 - one odd page of thousands does not stop the archive
        converted.skipped.append((label, _unreadable(error)))


# ---------------------------------------------------------------------------------------------------------------
# Entry points


def convert_bytes(data: bytes, name: str, content_type: str | None = None, *, url: str | None = None,
                  published: str | None = None, source: str | None = None, follow_links: bool = False,
                  progress: bool = False, settings: Settings | None = None) -> Converted:
    """Articles from a web page, a feed or a WARC held in memory, told apart by content (then `name`'s suffix and
    `content_type`). `url` is where it came from; `published` (YYYY-MM-DD) stands in for a missing date; `source`
    names the outlet of every article; `follow_links` fetches each feed entry's page for its full text (with a
    progress bar if `progress`). What is not an article is skipped with the reason; a bad option raises ValueError."""
    published, source = check_published(published), _check_source(source)
    settings = settings or get_settings()
    kind = detect_kind(data, name, content_type)
    if kind == "html":
        if len(data) > settings.fetch_max_bytes:
            return Converted(skipped=[(name, f"page is over the {settings.fetch_max_bytes:,}-byte limit")])
        return _convert_html(data, name, url=url, published=published, source=source)
    if kind == "feed":
        return _convert_feed(data, name, url=url, published=published, source=source, follow_links=follow_links,
                             progress=progress, settings=settings)
    if kind == "warc":
        return _convert_warc(data, io.BytesIO(data), name, published=published, source=source,
                             max_record_bytes=settings.fetch_max_bytes)
    return Converted(skipped=[(name, "not a web page, an RSS or Atom feed or a WARC file")])


def convert_path(path: Path, *, published: str | None = None, source: str | None = None, follow_links: bool = False,
                 progress: bool = False, settings: Settings | None = None) -> Converted:
    """Articles from a file: an HTML page, an RSS or Atom feed, or a WARC (.warc or .warc.gz, mapped rather than
    read whole). Options as for convert_bytes."""
    published, source = check_published(published), _check_source(source)
    settings = settings or get_settings()
    name = str(path)
    try:
        return _convert_file(path, name, published=published, source=source, follow_links=follow_links,
                             progress=progress, settings=settings)
    except OSError as error:
        return Converted(skipped=[(name, f"cannot be read: {error.strerror or error}")])


def _convert_file(path: Path, name: str, *, published: str | None, source: str | None, follow_links: bool,
                  progress: bool, settings: Settings) -> Converted:
    with open(path, "rb") as handle:
        head = handle.read(4096)
        if detect_kind(head, name) == "warc":
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buffer:
                return _convert_warc(buffer, handle, name, published=published, source=source,
                                     max_record_bytes=settings.fetch_max_bytes)
        data = head + handle.read(settings.fetch_max_bytes + 1 - len(head))
        if len(data) > settings.fetch_max_bytes:
            return Converted(skipped=[(name, f"file is over the {settings.fetch_max_bytes:,}-byte limit for a page "
                                             "or feed")])
    return convert_bytes(data, name, published=published, source=source, follow_links=follow_links,
                         progress=progress, settings=settings)


def convert_url(url: str, *, published: str | None = None, source: str | None = None, follow_links: bool = False,
                progress: bool = False, settings: Settings | None = None) -> Converted:
    """Articles from a URL of a page, feed or WARC, fetched within the settings' limits (10 s, 5 MB, 5 redirects; no
    PDF or image): one that cannot be fetched is skipped with the reason. Options as for convert_bytes."""
    from rag.fetch import FetchError, fetch

    published, source = check_published(published), _check_source(source)
    try:
        page = fetch(url, settings=settings)
    except FetchError as error:
        return Converted(skipped=[(url, error.reason)])
    return convert_bytes(page.content, page.url, page.content_type, url=page.url, published=published,
                         source=source, follow_links=follow_links, progress=progress, settings=settings)
