"""Reading article files (Markdown with front matter, JSON, JSONL, plain text) into `Article`s."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import yaml

from rag.errors import ArticleFormatError
from rag.types import Article

MARKDOWN_SUFFIXES = {".md", ".markdown"}
SUPPORTED_SUFFIXES = MARKDOWN_SUFFIXES | {".json", ".jsonl", ".txt"}
OPTIONAL_FIELDS = ("section", "byline", "url")
# The longest text a metadata field may hold: far above any real headline, outlet, byline or section name.
FIELD_MAX_CHARS = {"title": 500, "source": 200, "section": 200, "byline": 500, "url": 2_000}
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.S)
# Query parameters (by prefix) that say where a reader came from, not which page it is.
_TRACKING_PARAMETERS = ("utm_", "fbclid", "gclid", "mc_cid", "mc_eid", "ocid", "cmpid")


@dataclass
class CorpusScan:
    """The articles found in a corpus directory, and what was skipped and why."""

    articles: list[Article] = field(default_factory=list)
    problems: list[ArticleFormatError] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (skipped path, kept article id)
    replaced: list[tuple[str, str]] = field(default_factory=list)  # (older version's path, newer article's id)


class _AnchorRefused(Exception):
    """An anchor or alias at this line of the front matter (counted from 1, without the opening '---')."""

    def __init__(self, line: int) -> None:
        self.line = line


class _FrontMatterLoader(yaml.SafeLoader):
    """PyYAML's safe loader without anchors and aliases, which it cannot turn off otherwise: a few hundred
    bytes of nested aliases expand to gigabytes of title, past any file size limit."""

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        event = self.peek_event()
        if getattr(event, "anchor", None) is not None:
            raise _AnchorRefused(event.start_mark.line + 1)
        return super().compose_node(parent, index)


def slugify(text: str, max_length: int = 60) -> str:
    """A file-name and URL-safe id made of lowercase words."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:max_length].rstrip("-") or "article"


def content_hash(article: Article) -> str:
    """Hash of everything read from an article's file; a changed hash means it is embedded again. (Its
    `duplicate_of` depends on the other articles and is found again at every build.)"""
    record = {k: v for k, v in vars(article).items() if k not in ("path", "duplicate_of")}
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]


def text_hash(text: str) -> str:
    return hashlib.sha256(" ".join(text.split()).encode()).hexdigest()[:16]


def _normalize_date(value: object, path: str) -> str | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value).strip()
    try:
        return dt.date.fromisoformat(text[:10]).isoformat()
    except ValueError:
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise ArticleFormatError(path, f"published must be a date YYYY-MM-DD, got {shown!r}") from None


def _text_field(fields: dict, name: str, path: str) -> str | None:
    """One metadata field as stripped text, None when absent; a list, a mapping or overlong text is refused."""
    value = fields.get(name)
    if value in (None, ""):
        return None
    if isinstance(value, (list, dict)):
        kind = "list" if isinstance(value, list) else "mapping"
        raise ArticleFormatError(path, f"{name} must be text, not a {kind}")
    text = str(value).strip()
    if len(text) > FIELD_MAX_CHARS[name]:
        raise ArticleFormatError(path, f"{name} is {len(text):,} characters, over the "
                                       f"{FIELD_MAX_CHARS[name]:,}-character limit")
    return text or None


def article_from_fields(fields: dict, text: str, article_id: str, path: str) -> Article:
    """Validate the fields of one article; raises ArticleFormatError naming the problem."""
    if not isinstance(fields, dict):
        raise ArticleFormatError(path, "metadata must be a mapping of field names to values")
    title = _text_field(fields, "title", path)
    if not title:
        raise ArticleFormatError(path, "missing title")
    if not isinstance(text, str) or not text.strip():
        raise ArticleFormatError(path, "empty body: the article has no text")
    optional = {name: _text_field(fields, name, path) for name in OPTIONAL_FIELDS}
    return Article(
        id=article_id,
        title=title,
        source=_text_field(fields, "source", path) or "Unknown",
        text=text.strip(),
        published=_normalize_date(fields.get("published"), path),
        path=path,
        **optional,
    )


def _parse_markdown(raw: str, stem: str, path: str) -> list[Article]:
    match = _FRONT_MATTER.match(raw)
    if not match:
        raise ArticleFormatError(path, "no YAML front matter (the file must start with a line '---')")
    try:
        fields = yaml.load(match.group(1), Loader=_FrontMatterLoader) or {}
    except yaml.YAMLError as error:
        raise ArticleFormatError(path, f"broken front matter: {str(error).splitlines()[0]}") from None
    except _AnchorRefused as error:
        raise ArticleFormatError(path, "YAML anchors and aliases (&name, *name) are not allowed in front matter "
                                       f"(line {error.line + 1})") from None
    except RecursionError:
        raise ArticleFormatError(path, "front matter nested too deeply") from None
    return [article_from_fields(fields, raw[match.end():], stem, path)]


def _parse_json_object(obj: object, article_id: str, path: str) -> Article:
    if not isinstance(obj, dict):
        raise ArticleFormatError(path, "expected a JSON object with title and text")
    return article_from_fields(obj, obj.get("text", ""), slugify(str(obj.get("id") or article_id)), path)


def _parse_json(raw: str, stem: str, path: str) -> list[Article]:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ArticleFormatError(path, f"invalid JSON: {error}") from None
    except RecursionError:
        raise ArticleFormatError(path, "JSON nested too deeply") from None
    if isinstance(data, list):
        return [_parse_json_object(obj, f"{stem}-{i + 1}", path) for i, obj in enumerate(data)]
    return [_parse_json_object(data, stem, path)]


def _parse_jsonl(raw: str, stem: str, path: str, max_bytes: int) -> list[Article]:
    articles = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        if len(line.encode()) > max_bytes:
            raise ArticleFormatError(f"{path}:{number}", f"line is over the {max_bytes:,}-byte limit for one article")
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as error:
            raise ArticleFormatError(f"{path}:{number}", f"invalid JSON: {error}") from None
        except RecursionError:
            raise ArticleFormatError(f"{path}:{number}", "JSON nested too deeply") from None
        articles.append(_parse_json_object(obj, f"{stem}-{number}", f"{path}:{number}"))
    if not articles:
        raise ArticleFormatError(path, "empty file")
    return articles


def _parse_text(raw: str, stem: str, path: str) -> list[Article]:
    title, _, body = raw.strip().partition("\n")
    return [article_from_fields({"title": title}, body, stem, path)]


_PARSERS = {".json": _parse_json, ".txt": _parse_text}


def read_article_file(path: Path, root: Path | None = None, max_bytes: int = 2_000_000) -> list[Article]:
    """Read one file into articles; its id comes from the file name, so it is stable across rebuilds."""
    shown = str(path.relative_to(root)) if root else str(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise ArticleFormatError(shown, f"unsupported file type {suffix or '(none)'}; use .md, .json, .jsonl or .txt")
    size = path.stat().st_size
    if size > max_bytes and suffix != ".jsonl":  # a JSONL file holds many articles: its lines are checked instead
        raise ArticleFormatError(shown, f"file is {size:,} bytes, over the {max_bytes:,}-byte limit for one article")
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise ArticleFormatError(shown, "binary file, not text")
    try:
        raw = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ArticleFormatError(shown, f"not UTF-8 text (byte {error.start})") from None
    stem = slugify(path.stem, max_length=120)
    if suffix == ".jsonl":
        return _parse_jsonl(raw, stem, shown, max_bytes)
    parse = _parse_markdown if suffix in MARKDOWN_SUFFIXES else _PARSERS[suffix]
    return parse(raw, stem, shown)


def ignored_name_reason(relative: Path) -> str | None:
    """Why a corpus file of this name (relative to the corpus) is not read as an article, or None if it is."""
    if any(part.startswith(".") for part in relative.parts):
        return "a file whose name starts with '.' is not read as an article; rename it"
    if relative.stem.upper() == "README":
        return "a file named README is not read as an article; rename it"
    return None


def corpus_files(corpus_dir: Path) -> tuple[list[Path], list[ArticleFormatError]]:
    """Article files under the corpus directory, in a stable order, and the symbolic links skipped because they
    lead outside it (the server would serve whatever they point at). Hidden files and README are not articles."""
    root = Path(os.path.realpath(corpus_dir))
    files, problems = [], []

    def outside(path: Path) -> bool:
        target = Path(os.path.realpath(path))
        if target.is_relative_to(root):
            return False
        problems.append(ArticleFormatError(str(path.relative_to(corpus_dir)),
                                           f"symbolic link to a place outside the corpus ({target})"))
        return True

    for directory, dirnames, filenames in os.walk(corpus_dir):  # linked directories are listed, not entered
        here = Path(directory)
        dirnames[:] = [name for name in dirnames if not name.startswith(".")]
        for name in dirnames:
            if (here / name).is_symlink():
                outside(here / name)  # one inside the corpus is read where it really is
        for name in filenames:
            path = here / name
            if ignored_name_reason(path.relative_to(corpus_dir)) is None and path.is_file() \
                    and not (path.is_symlink() and outside(path)):
                files.append(path)
    return sorted(files), sorted(problems, key=lambda problem: problem.path)


def canonical_url(url: str) -> str:
    """The form links to one page share: http or https, the host's case, "www.", a default port, the fragment, a
    trailing slash and tracking parameters (utm_*, fbclid...) make no other page; the path's case does (as in
    rag add's writer, rag/corpus_writer.py)."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").removeprefix("www.")
    try:
        if parts.port not in (None, 80, 443):
            host = f"{host}:{parts.port}"
    except ValueError:  # a port that is not a number
        host = parts.netloc.lower()
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                       if not k.lower().startswith(_TRACKING_PARAMETERS)])
    scheme = "https" if parts.scheme.lower() in ("http", "https") else parts.scheme.lower()
    return urlunsplit((scheme, host, parts.path.rstrip("/") or "/", query, ""))


def _newest_versions(found: list[tuple[Article, float]]) -> tuple[list[Article], list[tuple[str, str]]]:
    """Of the articles sharing a canonical URL, the newer version (by published date, undated oldest, then the
    file's modification time): the articles kept, in their order, and (older version's path, kept id) pairs."""
    def age(item: tuple[Article, float]) -> tuple:
        article, modified = item
        return article.published is not None, article.published or "", modified, article.path or ""

    by_url: dict[str, list[tuple[Article, float]]] = {}
    for item in found:
        if item[0].url:
            by_url.setdefault(canonical_url(item[0].url), []).append(item)
    older: dict[str, str] = {}  # id of an older version -> id of the newest
    for versions in by_url.values():
        newest = max(versions, key=age)[0]
        older.update((a.id, newest.id) for a, _ in versions if a is not newest)
    replaced = [(a.path or a.id, older[a.id]) for a, _ in found if a.id in older]
    return [a for a, _ in found if a.id not in older], replaced


def scan_corpus(corpus_dir: Path, max_bytes: int = 2_000_000) -> CorpusScan:
    """Read every article file; bad files and duplicates are reported, never fatal. Of two articles with one text
    (whitespace aside) the first is kept, and of two versions of one URL the newer."""
    if not corpus_dir.is_dir():
        raise FileNotFoundError(f"corpus directory {corpus_dir} does not exist")
    scan = CorpusScan()
    seen_ids: dict[str, str] = {}
    found: list[tuple[Article, float]] = []  # with the modification time of its file
    paths, scan.problems = corpus_files(corpus_dir)
    for path in paths:
        try:
            articles = read_article_file(path, corpus_dir, max_bytes)
            modified = path.stat().st_mtime
        except ArticleFormatError as error:
            scan.problems.append(error)
            continue
        for article in articles:
            if article.id in seen_ids:
                scan.problems.append(ArticleFormatError(
                    article.path or str(path), f"id {article.id!r} is already used by {seen_ids[article.id]}"))
                continue
            seen_ids[article.id] = article.path or str(path)
            found.append((article, modified))
    seen_texts: dict[str, str] = {}
    distinct = []
    for article, modified in found:
        key = text_hash(article.text)
        if key in seen_texts:
            scan.duplicates.append((article.path or article.id, seen_texts[key]))
            continue
        seen_texts[key] = article.id
        distinct.append((article, modified))
    scan.articles, scan.replaced = _newest_versions(distinct)
    return scan


def article_to_markdown(article: Article) -> str:
    """The main corpus format: YAML front matter, then the text unchanged."""
    fields = {"title": article.title, "source": article.source, "published": article.published}
    fields.update({name: getattr(article, name) for name in OPTIONAL_FIELDS})
    front = yaml.safe_dump({k: v for k, v in fields.items() if v is not None},
                           sort_keys=False, allow_unicode=True, width=10_000)
    return f"---\n{front}---\n{article.text}\n"
