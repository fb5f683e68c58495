"""The `rag` command, driven through click's test runner."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from rag.cli import EXIT_SKIPPED, main
from rag.types import Answer, Article, Reply
from tests.conftest import SEED_DIGEST
from tests.test_ingest import alias_bomb


@pytest.mark.parametrize("command, phrase", [
    ("index", "Only new and changed articles are embedded again"),
    ("add", "Add news to the corpus"),
    ("import-digest", "Split a news digest page"),
    ("ask", "--source"),
    ("serve", "--port"),
])
def test_every_command_explains_itself(command: str, phrase: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0
    assert phrase in result.output
    assert "--index" in result.output


@pytest.mark.slow
def test_import_digest_then_add_then_ask(tmp_path: Path, seed_index_dir: Path) -> None:
    runner = CliRunner()
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    shutil.copytree(seed_index_dir, index)  # the seed already indexed: importing it again embeds nothing
    result = runner.invoke(main, ["import-digest", str(SEED_DIGEST), "--corpus", str(corpus), "--index", str(index)])
    assert result.exit_code == 0, result.output
    assert "5 articles from" in result.output
    assert "0 added, 0 changed, 0 removed, 5 unchanged" in result.output

    new = tmp_path / "kyodo-visit.md"
    new.write_text("---\ntitle: Lee visits Tokyo\nsource: Kyodo News\npublished: 2025-06-20\n---\n"
                   "President Lee Jae-myung arrived in Tokyo on Friday for a two-day visit.\n")
    bad = tmp_path / "bad.md"
    bad.write_text("no front matter")
    result = runner.invoke(main, ["add", str(new), str(bad), "--corpus", str(corpus), "--index", str(index), "-q"])
    assert result.exit_code == EXIT_SKIPPED
    assert "not added" in result.output and "bad.md" in result.output
    assert "1 added, 0 changed, 0 removed, 5 unchanged" in result.output
    assert (corpus / "kyodo-visit.md").exists() and not (corpus / "bad.md").exists()

    result = runner.invoke(main, ["ask", "When did Lee arrive in Tokyo?", "--index", str(index), "--json"])
    assert result.exit_code == 0, result.output
    reply = json.loads(result.output)
    assert reply["answers"][0]["article"]["id"] == "kyodo-visit"

    result = runner.invoke(main, ["ask", "When did Lee arrive in Tokyo?", "--index", str(index)])
    assert "Kyodo News" in result.output and "Lee visits Tokyo" in result.output


@pytest.mark.slow
def test_index_reports_skipped_files_by_name_and_exit_status(tmp_path: Path, seed_corpus: Path,
                                                              seed_index_dir: Path) -> None:
    index = tmp_path / "index"
    shutil.copytree(seed_index_dir, index)
    (seed_corpus / "broken.json").write_text("{oops")
    result = CliRunner().invoke(main, ["index", "--corpus", str(seed_corpus), "--index", str(index), "-q"])
    assert result.exit_code == EXIT_SKIPPED
    assert "skipped broken.json: invalid JSON" in result.output


def test_ask_without_an_index_says_what_to_do(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["ask", "Anything?", "--index", str(tmp_path / "none")])
    assert result.exit_code == 1
    assert "run `rag index`" in result.output


def test_ask_rejects_an_empty_question() -> None:
    result = CliRunner().invoke(main, ["ask", "   "])
    assert result.exit_code == 2
    assert "QUESTION" in result.output


ARTICLE = Article(id="talks", title="Talks resume", source="Test Wire", published="2025-06-11", byline="Ann Lee",
                  text="Talks resumed on June 11. Officials expect more.")


class FakePipeline:
    """Replies with a confident answer, a low one and one from the byline (the printing is what is tested)."""

    def __init__(self, **kwargs: object) -> None:
        pass

    def ask(self, question: str, **kwargs: object) -> Reply:
        def from_text(sentence: str, span: str, score: float, weak: bool) -> Answer:
            start, span_start = ARTICLE.text.index(sentence), ARTICLE.text.index(span)
            return Answer(text=span, quote=sentence, score=score, article=ARTICLE, quote_start=start,
                          quote_end=start + len(sentence), answer_start=span_start,
                          answer_end=span_start + len(span), weak=weak)

        byline = Answer(text="Ann Lee", quote="Ann Lee", score=0.3, article=ARTICLE, quote_start=None, quote_end=None,
                        answer_start=None, answer_end=None, weak=True, field="byline")
        return Reply(question, no_answer=False,
                     answers=[from_text("Talks resumed on June 11.", "June 11", 0.91, False),
                              from_text("Officials expect more.", "more", 0.43, True), byline])


def test_ask_says_how_sure_each_answer_is_and_names_a_quoted_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("rag.pipeline.Pipeline", FakePipeline)
    result = CliRunner().invoke(main, ["ask", "When did the talks resume?"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "1. June 11  (score 0.91)"
    assert lines[1] == "   \u201cTalks resumed on June 11.\u201d"
    assert lines[3] == "2. more  (score 0.43, low confidence: possible answer)"
    assert lines[6] == "3. Byline: Ann Lee  (score 0.30, low confidence: possible answer)"
    assert lines[7] == "   \u2014 Test Wire, 2025-06-11: Talks resume"
    assert "weak match" not in result.output and "None" not in result.output


@pytest.mark.slow
def test_ask_a_question_the_articles_do_not_answer_lists_possible_answers(seed_index_dir: Path) -> None:
    result = CliRunner().invoke(main, ["ask", "What is the capital of Australia?", "--index", str(seed_index_dir)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("The articles do not seem to answer this question.\n"
                                    "The closest quotes, as possible answers only:\n1. ")
    numbered = [line for line in result.output.splitlines() if line[:1].isdigit()]
    assert numbered and all(line.endswith(", low confidence: possible answer)") for line in numbered)


@pytest.mark.slow
def test_add_says_which_files_would_not_be_indexed_and_exits_3(tmp_path: Path, seed_corpus: Path,
                                                                seed_index_dir: Path) -> None:
    index = tmp_path / "index"
    shutil.copytree(seed_index_dir, index)
    article = "---\ntitle: Lee visits Tokyo\nsource: Kyodo News\n---\nPresident Lee arrived in Tokyo on Friday.\n"
    readme, hidden = tmp_path / "README.md", tmp_path / ".visit.md"
    readme.write_text(article)
    hidden.write_text(article.replace("Friday", "Monday"))
    result = CliRunner().invoke(main, ["add", str(readme), str(hidden), "--corpus", str(seed_corpus),
                                       "--index", str(index), "-q"])
    assert result.exit_code == EXIT_SKIPPED, result.output
    assert f"not added {readme}: a file named README is not read as an article; rename it" in result.output
    assert f"not added {hidden}: a file whose name starts with '.' is not read as an article; rename it" \
        in result.output
    assert "0 added, 0 updated, 0 unchanged, 2 skipped" in result.output
    assert "0 added, 0 changed, 0 removed, 5 unchanged" in result.output
    assert not (seed_corpus / "README.md").exists() and not (seed_corpus / ".visit.md").exists()


@pytest.mark.slow
def test_index_skips_hostile_files_by_name_and_indexes_the_rest(tmp_path: Path, seed_corpus: Path,
                                                                 seed_index_dir: Path) -> None:
    index, outside = tmp_path / "index", tmp_path / "outside.md"
    shutil.copytree(seed_index_dir, index)
    outside.write_text("---\ntitle: Private\nsource: Nobody\n---\nNot for the corpus.\n")
    (seed_corpus / "leak.md").symlink_to(outside)
    (seed_corpus / "bomb.md").write_text(alias_bomb())
    result = CliRunner().invoke(main, ["index", "--corpus", str(seed_corpus), "--index", str(index), "-q"])
    assert result.exit_code == EXIT_SKIPPED, result.output
    assert "skipped bomb.md: YAML anchors and aliases (&name, *name) are not allowed in front matter" \
        in result.output
    assert f"skipped leak.md: symbolic link to a place outside the corpus ({outside.resolve()})" in result.output
    assert "0 added, 0 changed, 0 removed, 5 unchanged" in result.output
    assert "Traceback" not in result.output
