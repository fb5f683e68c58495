"""Splitting a news digest page (the seed's format) into articles.

A digest page lists items separated by blank lines. Each item is: an optional outlet line, a relative
time ("14 hours ago", "a day ago"), one or more "- " lines (section, then outlet), the title, the body.
An item whose outlet is not given above it names it after its closing bracket ("... Ltd.] Jiji Press").
Relative times are resolved against the page's own time, which comes from an item that also carries an
absolute timestamp ("Jun 9, 2025 16:21 (JST)" shown as "2 days ago" dates the page Jun 11, 2025 16:21 JST).
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from rag.errors import ArticleFormatError
from rag.ingest import article_from_fields, slugify
from rag.types import Article

_RELATIVE = re.compile(r"^(?:(\d+)|an?)\s+(minute|hour|day|week|month|year)s?\s+ago$", re.I)
_UNIT_HOURS = {"minute": 1 / 60, "hour": 1, "day": 24, "week": 24 * 7, "month": 24 * 30, "year": 24 * 365}
_ABSOLUTE = re.compile(
    r"\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.?\s+(\d{1,2}),\s+(\d{4})\s+(\d{1,2}):(\d{2})"
    r"(?:\s*\((JST|KST|UTC|GMT)\))?"
)
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_ZONES = {"JST": 9, "KST": 9, "UTC": 0, "GMT": 0}
_TRAILING_OUTLET = re.compile(r"\]\s*([A-Z][\w.&' -]{1,40})\s*$")
_BYLINE = re.compile(r"\(This article was written by (.+?)\.?\)\s*$|\A\s*By ([A-Z][\w.' -]+?)\s*(?:\n|—|--)")


@dataclass(frozen=True)
class DigestItem:
    outlet: str | None
    age_hours: float
    sections: tuple[str, ...]
    title: str
    body: str
    timestamp: dt.datetime | None  # absolute time printed in the body, if any


def _age_hours(line: str) -> float | None:
    match = _RELATIVE.match(line.strip())
    if not match:
        return None
    count = int(match.group(1)) if match.group(1) else 1
    return count * _UNIT_HOURS[match.group(2).lower()]


def _timestamp(body: str) -> dt.datetime | None:
    match = _ABSOLUTE.search(body)
    if not match:
        return None
    month, day, year, hour, minute, zone = match.groups()
    tz = dt.timezone(dt.timedelta(hours=_ZONES.get(zone or "JST", 9)))
    return dt.datetime(int(year), _MONTHS.index(month.lower()) + 1, int(day), int(hour), int(minute), tzinfo=tz)


def _parse_item(lines: list[str]) -> DigestItem | None:
    ages = [i for i, line in enumerate(lines) if _age_hours(line) is not None]
    if not ages:
        return None  # page header such as "Latest news with #Japan-SouthKorea"
    at = ages[0]
    outlet = lines[at - 1].strip() if at > 0 else None
    rest = lines[at + 1:]
    dashes = []
    while rest and rest[0].startswith("- "):
        dashes.append(rest.pop(0)[2:].strip())
    if len(rest) < 2:
        raise ValueError(f"item {' '.join(lines[:2])!r} has no title and body")
    body = "\n".join(rest[1:]).strip()
    if outlet is None and len(dashes) > 1:
        outlet = dashes[-1]
    if outlet is None and (trailing := _TRAILING_OUTLET.search(body)):
        outlet = trailing.group(1).strip()
    sections = tuple(d for d in dashes if d != outlet)
    return DigestItem(outlet, _age_hours(lines[at]) or 0.0, sections, rest[0].strip(), body, _timestamp(body))


def parse_digest(text: str) -> list[DigestItem]:
    """Items of a digest page, in page order."""
    blocks = [b for b in re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n")) if b.strip()]
    items = []
    for block in blocks:
        item = _parse_item([line for line in block.split("\n") if line.strip()])
        if item:
            items.append(item)
    return items


def page_time(items: list[DigestItem]) -> dt.datetime:
    """When the page was made: an item's absolute timestamp plus its relative age."""
    for item in items:
        if item.timestamp is not None:
            return item.timestamp + dt.timedelta(hours=item.age_hours)
    raise ValueError("no item carries an absolute date to anchor the relative ones; pass --page-time")


def digest_articles(text: str, source_name: str, now: dt.datetime | None = None) -> list[Article]:
    """Turn a digest page into articles with resolved dates; ids come from date, outlet and title."""
    items = parse_digest(text)
    if not items:
        raise ArticleFormatError(source_name, "no digest items found")
    anchor = now or page_time(items)
    articles = []
    for item in items:
        when = item.timestamp or anchor - dt.timedelta(hours=item.age_hours)
        published = when.astimezone(anchor.tzinfo).date().isoformat() if anchor.tzinfo else when.date().isoformat()
        byline = _BYLINE.search(item.body)
        fields = {
            "title": item.title,
            "source": item.outlet or "Unknown",
            "published": published,
            "section": item.sections[0] if item.sections else None,
            "byline": next((g for g in byline.groups() if g), None) if byline else None,
        }
        article_id = f"{published}-{slugify(fields['source'], 20)}-{slugify(item.title, 50)}"
        articles.append(article_from_fields(fields, item.body, article_id, source_name))
    return articles
