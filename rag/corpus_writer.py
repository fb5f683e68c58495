"""Writing articles into the corpus as Markdown with front matter: validated like any article file, named stably,
written atomically, and a newer version of an article (same canonical URL) replacing the older in its file."""
from __future__ import annotations

import fcntl
import os
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from rag.errors import ArticleFormatError
from rag.ingest import (MARKDOWN_SUFFIXES, article_from_fields, article_to_markdown, canonical_url, corpus_files,
                        read_article_file, slugify, text_hash)
from rag.settings import Settings, get_settings
from rag.types import Article


@dataclass
class SaveReport:
    """What save_articles did: the ids of the articles added, updated (same URL, newer version) and unchanged, and
    the articles skipped as (label, reason), the label being the article's URL or title."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        """One line: "2 added, 1 updated, 0 unchanged, 1 skipped (1 no publication date on the page)"."""
        return summary_line(len(self.added), len(self.updated), len(self.unchanged), self.skipped)


def summary_line(added: int, updated: int, unchanged: int, skipped: list[tuple[str, str]]) -> str:
    """Counts of what was added, updated, unchanged and skipped, the skipped counted by the kind of reason."""
    reasons = ", ".join(f"{count} {reason}" for reason, count in skipped_reasons(skipped).most_common())
    return f"{added} added, {updated} updated, {unchanged} unchanged, {len(skipped)} skipped" + \
        (f" ({reasons})" if reasons else "")


def article_file_stem(fields: dict) -> str:
    """The file name (without .md) and so the id of a new article: date, outlet and title, as in
    `2025-06-12-northshore-gazette-floating-solar-farm-opens-on-merrow`."""
    return f"{fields.get('published') or 'undated'}-{slugify(str(fields.get('source') or 'unknown'), 20)}-" \
           f"{slugify(str(fields.get('title') or ''), 50)}"


@dataclass
class _Known:
    """An article already in the corpus, where it lives and whether its file holds others too."""

    article: Article
    path: Path
    shared_file: bool


class _Corpus:
    """The corpus's articles by URL, by text and by id, kept current while a batch is saved."""

    def __init__(self, corpus_dir: Path, max_bytes: int) -> None:
        self.by_url: dict[str, _Known] = {}
        self.by_text: dict[str, str] = {}
        self.ids: set[str] = set()
        paths, _ = corpus_files(corpus_dir)
        for path in paths:
            try:
                articles = read_article_file(path, corpus_dir, max_bytes)
            except ArticleFormatError:
                self.ids.add(slugify(path.stem, max_length=120))  # unreadable, but its name stays taken
                continue
            shared = len(articles) > 1 or path.suffix.lower() == ".jsonl"
            for article in articles:
                self.remember(article, path, shared)

    def remember(self, article: Article, path: Path, shared_file: bool = False) -> None:
        self.ids.add(article.id)
        self.by_text.setdefault(text_hash(article.text), article.id)
        if article.url:
            self.by_url[canonical_url(article.url)] = _Known(article, path, shared_file)


def _label(fields: dict) -> str:
    """How a skipped article is named: its URL, else the start of its title."""
    if fields.get("url"):
        return str(fields["url"])[:300]
    title = " ".join(str(fields.get("title") or "").split())
    return repr(title[:80] + "..." if len(title) > 80 else title) if title else "(an article without title or url)"


def _write_atomically(target: Path, content: str) -> None:
    """Write through a hidden temporary file in the same directory and rename it over the target, so a reader (the
    indexer, `rag watch`) sees the old file or the new one, never half of one."""
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(content)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def save_articles(articles: list[dict], corpus_dir: Path, *, settings: Settings | None = None) -> SaveReport:
    """Write each article (a dict of title, source, published, byline, section, url, text) as Markdown with front
    matter into corpus_dir. Each is validated like an article file (over-long fields are refused); a new one gets a
    file named from its date, outlet and title; one whose URL is already in the corpus replaces that file when it is
    as new or newer, keeping its id. Text the corpus already holds under another URL is skipped. Files over the
    settings' max_article_bytes are refused, as the index would."""
    max_bytes = (settings or get_settings()).max_article_bytes
    corpus_dir.mkdir(parents=True, exist_ok=True)
    report = SaveReport()
    directory = os.open(corpus_dir, os.O_RDONLY)
    try:
        fcntl.flock(directory, fcntl.LOCK_EX)  # two writers at once would pick the same new names
        corpus = _Corpus(corpus_dir, max_bytes)
        for fields in articles:
            try:
                _save_one(fields, corpus_dir, corpus, report, max_bytes)
            except ArticleFormatError as error:
                report.skipped.append((error.path, error.reason))
    finally:
        os.close(directory)  # releases the lock
    return report


def _save_one(fields: dict, corpus_dir: Path, corpus: _Corpus, report: SaveReport, max_bytes: int) -> None:
    label = _label(fields) if isinstance(fields, dict) else "(not a mapping)"
    if not isinstance(fields, dict):
        raise ArticleFormatError(label, "an article must be a mapping of field names to values")
    unknown = sorted(set(fields) - {"title", "source", "published", "byline", "section", "url", "text"})
    if unknown:
        raise ArticleFormatError(label, f"unknown fields: {', '.join(map(str, unknown))}")
    metadata = {name: value for name, value in fields.items() if name != "text"}
    draft = article_from_fields(metadata, fields.get("text", ""), "draft", label)  # refuses what ingest refuses
    url = draft.url
    if url and urlsplit(url).scheme not in ("http", "https"):
        raise ArticleFormatError(label, f"url must be an http(s) URL, got {url[:100]!r}")
    known = corpus.by_url.get(canonical_url(url)) if url else None
    if known:
        _replace(draft, known, corpus_dir, corpus, report, max_bytes)
        return
    same_text = corpus.by_text.get(text_hash(draft.text))
    if same_text:
        raise ArticleFormatError(label, f"same text as an article already in the corpus ({same_text})")
    stem = base = article_file_stem(vars(draft))
    number = 1
    while stem in corpus.ids or (corpus_dir / f"{stem}.md").exists():
        number += 1
        stem = f"{base}-{number}"
    article = _article(draft, stem, f"{stem}.md")
    content = _checked_markdown(article, label, max_bytes)
    _write_atomically(corpus_dir / f"{stem}.md", content)
    corpus.remember(article, corpus_dir / f"{stem}.md")
    report.added.append(stem)


def _replace(draft: Article, known: _Known, corpus_dir: Path, corpus: _Corpus, report: SaveReport,
             max_bytes: int) -> None:
    """The newer version of an article takes the older one's file and id (in Markdown, whatever the old format)."""
    old = known.article
    label = draft.url or draft.title
    if known.shared_file:
        raise ArticleFormatError(label, f"its url is in a file of several articles ({old.path}): change it there")
    if old.published and draft.published and draft.published < old.published:
        raise ArticleFormatError(label, f"older than the version in the corpus (article {old.id}, published "
                                        f"{old.published})")
    same_text = corpus.by_text.get(text_hash(draft.text))
    if same_text and same_text != old.id:
        raise ArticleFormatError(label, f"same text as an article already in the corpus ({same_text})")
    markdown = known.path.suffix.lower() in MARKDOWN_SUFFIXES
    target = known.path if markdown else known.path.parent / f"{old.id}.md"
    article = _article(draft, old.id, str(target.relative_to(corpus_dir)))
    content = _checked_markdown(article, label, max_bytes)
    if known.path == target and target.read_text(encoding="utf-8") == content:
        report.unchanged.append(old.id)
        return
    _write_atomically(target, content)
    if known.path != target:
        known.path.unlink(missing_ok=True)  # the old version in another format (.json, .txt) under the same id
    corpus.remember(article, target)
    report.updated.append(old.id)


def _article(draft: Article, article_id: str, path: str) -> Article:
    return Article(**{**vars(draft), "id": article_id, "path": path})


def _checked_markdown(article: Article, label: str, max_bytes: int) -> str:
    content = article_to_markdown(article)
    size = len(content.encode())
    if size > max_bytes:
        raise ArticleFormatError(label, f"article is {size:,} bytes, over the {max_bytes:,}-byte limit for one article")
    return content


def skipped_reasons(skipped: list[tuple[str, str]]) -> Counter[str]:
    """Skipped items counted by the kind of reason: the reason up to its first ': ' or ' ('."""
    counts: Counter[str] = Counter()
    for _, reason in skipped:
        counts[reason.split(": ")[0].split(" (")[0].strip()] += 1
    return counts
