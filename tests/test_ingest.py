"""Reading article files: every supported format, and every way a file can be bad."""
import json
from pathlib import Path

import pytest

from rag.errors import ArticleFormatError
from rag.ingest import (FIELD_MAX_CHARS, article_to_markdown, ignored_name_reason, read_article_file,
                        scan_corpus)

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


def alias_bomb(width: int = 10, levels: int = 5) -> str:
    """Front matter whose title expands to width ** (levels + 1) items through nested YAML aliases."""
    lines = [f"a0: &a0 [{','.join('x' * width)}]"]
    lines += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels + 1)]
    return "---\n" + "\n".join(lines) + f"\ntitle: *a{levels}\n---\nText.\n"


@pytest.mark.parametrize("front", [
    alias_bomb(),  # ~400 bytes that would expand to a title of millions of characters
    "title: &t Talks resume\nsection: *t",
    "title: Talks resume\nsource: &outlet Kyodo",
])
def test_front_matter_with_yaml_anchors_or_aliases_is_refused(tmp_path: Path, front: str) -> None:
    content = front if front.startswith("---") else f"---\n{front}\n---\nText.\n"
    assert len(content) < 500
    with pytest.raises(ArticleFormatError, match="anchors and aliases") as error:
        read_article_file(write(tmp_path, "bomb.md", content), tmp_path)
    assert error.value.path == "bomb.md"


@pytest.mark.parametrize("field, limit", sorted(FIELD_MAX_CHARS.items()))
@pytest.mark.parametrize("suffix", [".md", ".json"])
def test_an_overlong_field_is_refused_naming_the_file_and_field(tmp_path: Path, field: str, limit: int,
                                                                suffix: str) -> None:
    record = {"title": "T", "source": "S", field: "w" * (limit + 1)}
    content = (f"---\n{json.dumps(record)}\n---\nText.\n" if suffix == ".md"  # JSON is YAML too
               else json.dumps({**record, "text": "Text."}))
    with pytest.raises(ArticleFormatError, match=f"^long{suffix}: {field} is {limit + 1:,} characters, "
                                                 f"over the {limit:,}-character limit$"):
        read_article_file(write(tmp_path, f"long{suffix}", content), tmp_path)
    content = content.replace("w" * (limit + 1), "w" * limit)
    [article] = read_article_file(write(tmp_path, f"long{suffix}", content), tmp_path)
    assert getattr(article, field) == "w" * limit


@pytest.mark.parametrize("front, reason", [
    ("title: [Talks, resume]", "title must be text, not a list"),
    ("title: T\nbyline: {name: Ann}", "byline must be text, not a mapping"),
])
def test_a_field_that_is_not_text_is_refused(tmp_path: Path, front: str, reason: str) -> None:
    with pytest.raises(ArticleFormatError, match=reason):
        read_article_file(write(tmp_path, "odd.md", f"---\n{front}\n---\nText."), tmp_path)


@pytest.mark.parametrize("name, content", [
    ("deep.md", "---\ntitle: " + "[" * 100_000 + "\n---\nText."),
    ("deep.json", '{"title": ' + "[" * 100_000 + "}"),
    ("deep.jsonl", '{"title": ' + "[" * 100_000 + "}\n"),
])
def test_deeply_nested_metadata_is_a_format_error_not_a_crash(tmp_path: Path, name: str, content: str) -> None:
    with pytest.raises(ArticleFormatError, match="nested too deeply"):
        read_article_file(write(tmp_path, name, content), tmp_path)


def test_symbolic_links_out_of_the_corpus_are_skipped_with_a_reason(tmp_path: Path) -> None:
    corpus, outside = tmp_path / "corpus", tmp_path / "private"
    corpus.mkdir(), outside.mkdir()
    secret = write(outside, "secret.md", MARKDOWN.replace("Ishiba, Lee share hopes", "Secret"))
    write(outside, "other.md", MARKDOWN.replace("Ishiba, Lee share hopes", "Other"))
    (corpus / "secret.md").symlink_to(secret)
    (corpus / "private").symlink_to(outside, target_is_directory=True)
    (corpus / "relative.md").symlink_to(Path("..") / "private" / "other.md")
    write(corpus, "own.md", MARKDOWN)
    scan = scan_corpus(corpus)
    assert [a.id for a in scan.articles] == ["own"]
    assert sorted(p.path for p in scan.problems) == ["private", "relative.md", "secret.md"]
    assert all("symbolic link to a place outside the corpus" in p.reason for p in scan.problems)


def test_symbolic_links_inside_the_corpus_are_read(tmp_path: Path) -> None:
    real = tmp_path / "real"
    (real / ".drafts").mkdir(parents=True)
    write(real / ".drafts", "draft.md", MARKDOWN)
    (real / "published.md").symlink_to(Path(".drafts") / "draft.md")
    (real / "loop.md").symlink_to("loop.md")  # a link to itself is no file, as before
    (tmp_path / "corpus").symlink_to(real, target_is_directory=True)  # the corpus itself may be a link
    scan = scan_corpus(tmp_path / "corpus")
    assert [a.id for a in scan.articles] == ["published"] and not scan.problems


@pytest.mark.parametrize("name, indexed", [
    ("README.md", False), ("readme.txt", False), (".draft.md", False), ("notes/.hidden.md", False),
    ("notes/readme-first.md", True), ("2025-06-10-asahi.md", True),
])
def test_readme_and_hidden_files_are_not_articles(name: str, indexed: bool) -> None:
    assert (ignored_name_reason(Path(name)) is None) is indexed
