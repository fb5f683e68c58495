"""Reading article files (Markdown with front matter, JSON, JSONL, plain text) into `Article`s."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from rag.errors import ArticleFormatError
from rag.types import Article

MARKDOWN_SUFFIXES = {".md", ".markdown"}
SUPPORTED_SUFFIXES = MARKDOWN_SUFFIXES | {".json", ".jsonl", ".txt"}
OPTIONAL_FIELDS = ("section", "byline", "url")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.S)


@dataclass
class CorpusScan:
    """The articles found in a corpus directory, and what was skipped and why."""

    articles: list[Article] = field(default_factory=list)
    problems: list[ArticleFormatError] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (skipped path, kept article id)


def slugify(text: str, max_length: int = 60) -> str:
    """A file-name and URL-safe id made of lowercase words."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:max_length].rstrip("-") or "article"


def content_hash(article: Article) -> str:
    """Hash of everything indexed about an article; a changed hash means it is embedded again."""
    record = {k: v for k, v in vars(article).items() if k != "path"}
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
        raise ArticleFormatError(path, f"published must be a date YYYY-MM-DD, got {text!r}") from None


def article_from_fields(fields: dict, text: str, article_id: str, path: str) -> Article:
    """Validate the fields of one article; raises ArticleFormatError naming the problem."""
    if not isinstance(fields, dict):
        raise ArticleFormatError(path, "metadata must be a mapping of field names to values")
    title = str(fields.get("title") or "").strip()
    if not title:
        raise ArticleFormatError(path, "missing title")
    if not isinstance(text, str) or not text.strip():
        raise ArticleFormatError(path, "empty body: the article has no text")
    optional = {}
    for name in OPTIONAL_FIELDS:
        value = fields.get(name)
        optional[name] = str(value).strip() if value not in (None, "") else None
    return Article(
        id=article_id,
        title=title,
        source=str(fields.get("source") or "").strip() or "Unknown",
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
        fields = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as error:
        raise ArticleFormatError(path, f"broken front matter: {str(error).splitlines()[0]}") from None
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


def corpus_files(corpus_dir: Path) -> list[Path]:
    """Article files under the corpus directory, in a stable order; hidden files and README are not articles."""
    return sorted(
        p for p in corpus_dir.rglob("*")
        if p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(corpus_dir).parts)
        and p.stem.upper() != "README"
    )


def scan_corpus(corpus_dir: Path, max_bytes: int = 2_000_000) -> CorpusScan:
    """Read every article file; bad files and duplicates are reported, never fatal."""
    if not corpus_dir.is_dir():
        raise FileNotFoundError(f"corpus directory {corpus_dir} does not exist")
    scan = CorpusScan()
    seen_ids: dict[str, str] = {}
    seen_texts: dict[str, str] = {}
    for path in corpus_files(corpus_dir):
        try:
            articles = read_article_file(path, corpus_dir, max_bytes)
        except ArticleFormatError as error:
            scan.problems.append(error)
            continue
        for article in articles:
            if article.id in seen_ids:
                scan.problems.append(ArticleFormatError(
                    article.path or str(path), f"id {article.id!r} is already used by {seen_ids[article.id]}"))
                continue
            key = text_hash(article.text)
            if key in seen_texts:
                scan.duplicates.append((article.path or str(path), seen_texts[key]))
                continue
            seen_ids[article.id] = article.path or str(path)
            seen_texts[key] = article.id
            scan.articles.append(article)
    return scan


def article_to_markdown(article: Article) -> str:
    """The main corpus format: YAML front matter, then the text unchanged."""
    fields = {"title": article.title, "source": article.source, "published": article.published}
    fields.update({name: getattr(article, name) for name in OPTIONAL_FIELDS})
    front = yaml.safe_dump({k: v for k, v in fields.items() if v is not None},
                           sort_keys=False, allow_unicode=True, width=10_000)
    return f"---\n{front}---\n{article.text}\n"
