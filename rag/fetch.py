"""Fetching a web page, feed or web archive by URL, bounded in time, size and redirects."""
from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from rag.errors import RagError
from rag.settings import Settings, get_settings

USER_AGENT = "rag-news/0.1 (news question answering)"
# What a URL may hold: a page, a feed (served under any of several XML types, sometimes as text/plain) or a WARC.
ACCEPTED_TYPES = {
    "text/html", "application/xhtml+xml", "application/rss+xml", "application/atom+xml", "application/rdf+xml",
    "application/xml", "text/xml", "application/feed+json", "text/plain", "application/warc", "application/gzip",
    "application/x-gzip", "application/octet-stream",
}
_REFUSED_KINDS = {"application/pdf": "a PDF", "image/": "an image", "audio/": "audio", "video/": "a video",
                  "font/": "a font", "application/zip": "a zip archive", "application/json": "JSON data"}


class FetchError(RagError):
    """A URL that could not be fetched as a web page, feed or web archive; `reason` says why in a few words."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


@dataclass(frozen=True)
class Fetched:
    """A fetched body with the URL it finally came from (after redirects) and its media type."""

    url: str
    content: bytes
    content_type: str | None  # the media type only, lowercased: "text/html"


def media_type(header: str | None) -> str | None:
    """The media type of a Content-Type header, without parameters: 'text/html; charset=utf-8' -> 'text/html'."""
    kind = (header or "").split(";", 1)[0].strip().lower()
    return kind or None


def refused_type_reason(kind: str | None) -> str | None:
    """Why a body of this media type is not fetched (a PDF, an image...), or None when it may be a page or feed."""
    if kind is None or kind in ACCEPTED_TYPES or kind.endswith("+xml"):
        return None
    for prefix, name in _REFUSED_KINDS.items():
        if kind.startswith(prefix):
            return f"{name} ({kind}), not a web page, feed or web archive"
    return f"content type {kind} is not a web page, feed or web archive"


def check_url(url: str) -> str:
    """The URL stripped, or ValueError when it is not an absolute http(s) URL."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"url must be an absolute http(s) URL, got {url[:200]!r}")
    return url


def make_client(settings: Settings | None = None) -> httpx.Client:
    """An HTTP client for fetch(), to share connections across many fetches (a feed's entries); close it after."""
    settings = settings or get_settings()
    return httpx.Client(max_redirects=settings.fetch_max_redirects, headers={
        "User-Agent": USER_AGENT,
        "Accept": "text/html, application/xhtml+xml, application/rss+xml, application/atom+xml, "
                  "application/xml;q=0.9, */*;q=0.1"})


def fetch(url: str, *, settings: Settings | None = None, client: httpx.Client | None = None) -> Fetched:
    """GET one URL within the settings' limits: `fetch_timeout_s` in all (10 s), `fetch_max_redirects` redirects (5)
    and `fetch_max_bytes` of body (5 MB; reading stops past it). A status other than 2xx, a refused content type
    (a PDF, an image), a timeout, a redirect loop or a network error raises FetchError with the reason. `client`
    reuses connections across calls; one is made (and closed) otherwise."""
    settings = settings or get_settings()
    timeout_s, max_bytes = settings.fetch_timeout_s, settings.fetch_max_bytes
    max_redirects = settings.fetch_max_redirects
    try:
        url = check_url(url)
    except ValueError as error:
        raise FetchError(url, str(error)) from None
    own_client = client is None
    client = client or make_client(settings)
    deadline = time.monotonic() + timeout_s
    try:
        with client.stream("GET", url, follow_redirects=True, timeout=httpx.Timeout(timeout_s)) as response:
            return _read(response, url, deadline, timeout_s, max_bytes, max_redirects)
    except httpx.TooManyRedirects:
        raise FetchError(url, f"more than {max_redirects} redirects (a redirect loop?)") from None
    except httpx.TimeoutException:
        raise FetchError(url, f"timed out after {timeout_s:g} s") from None
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        raise FetchError(url, f"network error: {type(error).__name__}: {error}".rstrip(": ")) from None
    finally:
        if own_client:
            client.close()


def _read(response: httpx.Response, url: str, deadline: float, timeout_s: float, max_bytes: int,
          max_redirects: int) -> Fetched:
    if len(response.history) > max_redirects:
        raise FetchError(url, f"more than {max_redirects} redirects (a redirect loop?)")
    if response.status_code >= 400 or response.status_code < 200:
        raise FetchError(url, f"HTTP {response.status_code} {response.reason_phrase}".rstrip())
    kind = media_type(response.headers.get("content-type"))
    refused = refused_type_reason(kind)
    if refused:
        raise FetchError(url, refused)
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(url, f"body of {int(declared):,} bytes is over the {max_bytes:,}-byte limit")
    body = bytearray()
    for piece in response.iter_bytes():
        body += piece
        if len(body) > max_bytes:
            raise FetchError(url, f"body is over the {max_bytes:,}-byte limit (reading stopped)")
        if time.monotonic() > deadline:
            raise FetchError(url, f"timed out after {timeout_s:g} s")
    return Fetched(url=str(response.url), content=bytes(body), content_type=kind)
