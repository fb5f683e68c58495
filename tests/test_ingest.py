"""Reading article files: every supported format, and every way a file can be bad."""
import json
from pathlib import Path

import pytest

from rag.errors import ArticleFormatError
from rag.ingest import article_to_markdown, read_article_file, scan_corpus

MARKDOWN = """---
title: "Ishiba, Lee share hopes"
source: Asahi Shimbun
published: 2025-06-10
section: Politics
byline: Kei Kobayashi
url: https://example.org/a
---
They talked on the telephone on June 9. It lasted 25 minutes.
"""


def write(directory: Path, name: str, content: str | bytes) -> Path:
    path = directory / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def test_markdown_with_front_matter_is_the_main_format(tmp_path: Path) -> None:
    [article] = read_article_file(write(tmp_path, "2025-06-10-asahi.md", MARKDOWN), tmp_path)
    assert article.id == "2025-06-10-asahi"
    assert (article.title, article.source, article.published) == ("Ishiba, Lee share hopes", "Asahi Shimbun",
                                                                  "2025-06-10")
    assert (article.section, article.byline, article.url) == ("Politics", "Kei Kobayashi", "https://example.org/a")
    assert article.text == "They talked on the telephone on June 9. It lasted 25 minutes."


def test_json_jsonl_and_text_files_are_accepted(tmp_path: Path) -> None:
    record = {"title": "T", "source": "S", "published": "2025-06-01", "text": "Body one."}
    [from_json] = read_article_file(write(tmp_path, "one.json", json.dumps(record)), tmp_path)
    lines = "\n".join(json.dumps({**record, "text": f"Body {i}."}) for i in range(3))
    from_jsonl = read_article_file(write(tmp_path, "many.jsonl", lines), tmp_path)
    [from_text] = read_article_file(write(tmp_path, "plain.txt", "A title line\nThe body.\nMore body."), tmp_path)
    assert from_json.text == "Body one." and from_json.id == "one"
    assert [a.id for a in from_jsonl] == ["many-1", "many-2", "many-3"]
    assert (from_text.title, from_text.text) == ("A title line", "The body.\nMore body.")


def test_markdown_round_trips_through_the_writer(tmp_path: Path) -> None:
    [article] = read_article_file(write(tmp_path, "a.md", MARKDOWN), tmp_path)
    [again] = read_article_file(write(tmp_path, "a.md", article_to_markdown(article)), tmp_path)
    assert again == article


@pytest.mark.parametrize("name, content, reason", [
    ("broken.md", "---\ntitle: [unclosed\n---\nText.", "broken front matter"),
    ("untitled.md", "---\nsource: X\n---\nText.", "missing title"),
    ("empty.md", "---\ntitle: T\n---\n   \n", "empty body"),
    ("nofront.md", "Just text.", "no YAML front matter"),
    ("latin1.txt", "Title\nCaf\xe9".encode("latin-1"), "not UTF-8"),
    ("binary.txt", b"\x00\x01\x02binary", "binary file"),
    ("bad.json", "{not json", "invalid JSON"),
    ("baddate.md", "---\ntitle: T\npublished: June 9th\n---\nText.", "published must be a date"),
    ("image.png", b"\x89PNG", "unsupported file type"),
])
def test_a_malformed_file_is_rejected_with_its_path_and_reason(tmp_path: Path, name: str, content, reason) -> None:
    with pytest.raises(ArticleFormatError, match=reason) as error:
        read_article_file(write(tmp_path, name, content), tmp_path)
    assert error.value.path == name


def test_a_file_over_the_size_limit_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "huge.txt", "Title\n" + "word " * 1000)
    with pytest.raises(ArticleFormatError, match="over the 1,000-byte limit"):
        read_article_file(path, tmp_path, max_bytes=1000)


def test_scan_skips_bad_files_and_duplicates_and_keeps_the_rest(tmp_path: Path) -> None:
    write(tmp_path, "good.md", MARKDOWN)
    write(tmp_path, "copy.md", MARKDOWN.replace("Ishiba, Lee share hopes", "Same text, other title"))
    write(tmp_path, "broken.md", "---\ntitle: [\n---\nx")
    write(tmp_path, ".hidden.md", "not an article")
    scan = scan_corpus(tmp_path)
    assert [a.id for a in scan.articles] == ["copy"]  # files are read in name order; the first copy is kept
    assert [p.path for p in scan.problems] == ["broken.md"]
    assert scan.duplicates == [("good.md", "copy")]
