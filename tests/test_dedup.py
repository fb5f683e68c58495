"""The same story twice: one URL in two files, one text under two URLs, and one wire copy carried by several
outlets with small edits (kept, marked `duplicate_of`, and counted as one report when corroborating)."""
from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from rag.answering import Candidate, Fact, corroborate
from rag.cli import main
from rag.dedup import NearDuplicateSettings, duplicate_group, mark_near_duplicates, near_duplicates
from rag.index import BuildReport, build_index, current_build, load_index, near_duplicate_settings
from rag.ingest import canonical_url, scan_corpus
from rag.pipeline import Pipeline
from rag.settings import Settings
from rag.types import Article
from rag.watch import skipped_lines
from web.app import create_app

from .conftest import SEED_CORPUS
from .servers import serving
from .test_browser import ask, browser, chromium_path, new_page, screenshot  # noqa: F401 (fixtures)

DEFAULTS = near_duplicate_settings(Settings())
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def write(corpus: Path, name: str, text: str, **fields: str) -> Path:
    corpus.mkdir(parents=True, exist_ok=True)
    front = "".join(f"{key}: '{value}'\n" for key, value in {"title": name.title(), **fields}.items())
    path = corpus / f"{name}.md"
    path.write_text(f"---\n{front}---\n{text}\n")
    return path


def seed_text(prefix: str) -> str:
    """The text of the seed article whose id starts with `prefix`."""
    return next(a.text for a in scan_corpus(SEED_CORPUS).articles if a.id.startswith(prefix))


JIJI = "2025-06-09-jiji-press"
ASAHI = "2025-06-10-asahi-shimbun"
YOMIURI_CALL = "2025-06-11-yomiuri-shimbun"


# Same canonical URL in two files: the newer version is indexed, the older reported as replaced.

def test_a_newer_version_under_the_same_url_replaces_the_older_when_the_corpus_is_read(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    write(corpus, "ferry-v1", "The ferry resumes in July.", source="Coast Daily", published="2025-06-10",
          url="https://coast.example/ferry")
    write(corpus, "ferry-v2", "The ferry resumes on July 1, the operator said.", source="Coast Daily",
          published="2025-06-11", url="https://coast.example/ferry")
    write(corpus, "other", "Another story.", source="Coast Daily", published="2025-06-09",
          url="https://coast.example/other")
    scan = scan_corpus(corpus)
    assert sorted(a.id for a in scan.articles) == ["ferry-v2", "other"]
    assert scan.replaced == [("ferry-v1.md", "ferry-v2")]
    assert scan.duplicates == [] and scan.problems == []


def test_with_the_same_date_the_file_modified_last_is_the_newer_version(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    older = write(corpus, "b-copy", "First version.", published="2025-06-10", url="https://coast.example/a")
    newer = write(corpus, "a-copy", "Second version, corrected.", published="2025-06-10",
                  url="https://coast.example/a")
    os.utime(older, (1_700_000_000, 1_700_000_000))
    os.utime(newer, (1_700_000_100, 1_700_000_100))
    scan = scan_corpus(corpus)
    assert [a.id for a in scan.articles] == ["a-copy"]
    assert scan.replaced == [("b-copy.md", "a-copy")]


def test_an_undated_version_is_older_than_a_dated_one(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    write(corpus, "dated", "Dated version.", published="2025-06-01", url="https://coast.example/a")
    undated = write(corpus, "undated", "Undated version.", url="https://coast.example/a")
    os.utime(undated, (2_000_000_000, 2_000_000_000))
    assert [a.id for a in scan_corpus(corpus).articles] == ["dated"]


@pytest.mark.parametrize("a, b", [
    ("https://coast.example/news/ferry", "http://WWW.Coast.Example/news/ferry/"),
    ("https://coast.example/news/ferry", "https://coast.example:443/news/ferry#comments"),
    ("https://coast.example/news/ferry?id=7", "https://coast.example/news/ferry?utm_source=feed&id=7"),
])
def test_links_to_one_page_written_differently_are_one_url(a: str, b: str) -> None:
    assert canonical_url(a) == canonical_url(b)


@pytest.mark.parametrize("a, b", [
    ("https://coast.example/news/ferry", "https://coast.example/news/ferry-2"),
    ("https://coast.example/news?id=7", "https://coast.example/news?id=8"),
    ("https://coast.example/News/Ferry", "https://coast.example/news/ferry"),  # paths are case-sensitive
])
def test_links_to_different_pages_stay_apart(a: str, b: str) -> None:
    assert canonical_url(a) != canonical_url(b)


def test_rag_watch_reports_the_replaced_file_by_name() -> None:
    report = BuildReport(replaced=[("ferry-v1.md", "ferry-v2")])
    assert skipped_lines(report) == ["skipped ferry-v1.md: replaced by ferry-v2, a newer version of the same URL"]


# Same text under another URL: indexed once, the other reported (the exact-text rule).

def test_the_same_text_under_another_url_is_indexed_once_even_with_other_whitespace(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    text = "The ferry service between Busan and Fukuoka will resume on July 1.\n\nTickets go on sale next week."
    write(corpus, "a-coast", text, source="Coast Daily", url="https://coast.example/ferry")
    write(corpus, "b-harbor", "  " + text.replace(" ", "   ").replace("\n\n", "\n \n\t"), source="Harbor Times",
          url="https://harbor.example/ferry")
    scan = scan_corpus(corpus)
    assert [a.id for a in scan.articles] == ["a-coast"]
    assert scan.duplicates == [("b-harbor.md", "a-coast")]
    assert scan.replaced == []


# Near-duplicates: both kept, the later one records duplicate_of.

def edited_copy(text: str) -> str:
    """A paper's version of a wire story: its own dateline, two words changed, the last sentence cut."""
    body = text.replace("agreed Monday", "agreed on Monday").replace("phone talks", "telephone talks")
    return "SEOUL (Harbor Times) -- " + body[:body.rindex("END")].rstrip()


def article(article_id: str, text: str, published: str | None, source: str = "Wire") -> Article:
    return Article(id=article_id, title=article_id, source=source, text=text, published=published)


def test_a_wire_copy_with_small_edits_records_duplicate_of_on_the_later_one() -> None:
    jiji = seed_text(JIJI)
    original = article("z-original", jiji, "2025-06-09")
    copy = article("a-copy", edited_copy(jiji), "2025-06-10")
    marked = mark_near_duplicates([copy, original], DEFAULTS)
    assert [(a.id, a.duplicate_of) for a in marked] == [("a-copy", "z-original"), ("z-original", None)]


def test_on_the_same_date_the_earlier_is_told_by_id() -> None:
    jiji = seed_text(JIJI)
    found = near_duplicates([article("b", edited_copy(jiji), "2025-06-09"), article("a", jiji, "2025-06-09")],
                            DEFAULTS)
    assert found == {"b": "a"}


def test_two_different_stories_about_the_same_event_are_not_near_duplicates() -> None:
    # Jiji, Asahi and the Yomiuri all report the Ishiba-Lee phone call of June 9, each in its own words.
    stories = [article(prefix, seed_text(prefix), None) for prefix in (JIJI, ASAHI, YOMIURI_CALL)]
    assert near_duplicates(stories, DEFAULTS) == {}


def test_a_copy_of_a_copy_belongs_to_the_first_articles_group() -> None:
    duplicate_of = {"c": "b", "b": "a", "a": None, "x": None}
    assert [duplicate_group(i, duplicate_of.get) for i in "abcx"] == ["a", "a", "a", "x"]


def test_near_duplicate_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="threshold must be in"):
        NearDuplicateSettings(threshold=0, shingle_words=3)
    with pytest.raises(ValueError, match="shingle_words must be >= 1, got 0"):
        NearDuplicateSettings(threshold=0.4, shingle_words=0)


# The index stores duplicate_of and keeps it current.

def catalog(index_dir: Path) -> dict[str, str | None]:
    return {a.id: a.duplicate_of for a in load_index(index_dir).catalog}


@pytest.mark.slow
def test_the_index_stores_duplicate_of_and_a_rebuild_recomputes_it(tmp_path: Path) -> None:
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    jiji = seed_text(JIJI)
    write(corpus, "jiji", jiji, source="Jiji Press", published="2025-06-09")
    write(corpus, "harbor", edited_copy(jiji), source="Harbor Times", published="2025-06-10")
    write(corpus, "asahi", seed_text(ASAHI), source="Asahi Shimbun", published="2025-06-10")
    build_index(corpus, index, Settings(), progress=False)
    assert catalog(index) == {"jiji": None, "harbor": "jiji", "asahi": None}

    (corpus / "jiji.md").unlink()  # the original leaves: its copy is nobody's duplicate any more
    build_index(corpus, index, Settings(), progress=False)
    assert catalog(index) == {"harbor": None, "asahi": None}

    write(corpus, "coast", edited_copy(jiji).replace("SEOUL", "BUSAN"), published="2025-06-11")
    report = build_index(corpus, index, Settings(), progress=False)
    assert report.added == ["coast"] and report.unchanged == ["asahi", "harbor"]
    assert catalog(index) == {"harbor": None, "asahi": None, "coast": "harbor"}


@pytest.mark.slow
def test_an_index_built_before_duplicate_of_loads_and_is_rebuilt_without_embedding_again(tmp_path: Path) -> None:
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    jiji = seed_text(JIJI)
    write(corpus, "jiji", jiji, source="Jiji Press", published="2025-06-09")
    write(corpus, "harbor", edited_copy(jiji), source="Harbor Times", published="2025-06-10")
    build_index(corpus, index, Settings(), progress=False)
    build = current_build(index)
    # What an older program wrote: no duplicate_of in the catalog, no near-duplicate settings in the manifest.
    lines = [json.loads(line) for line in (build / "articles.jsonl").read_text().splitlines()]
    (build / "articles.jsonl").write_text("".join(
        json.dumps({k: v for k, v in line.items() if k != "duplicate_of"}) + "\n" for line in lines))
    manifest = json.loads((build / "manifest.json").read_text())
    del manifest["near_duplicates"]
    (build / "manifest.json").write_text(json.dumps(manifest))
    assert catalog(index) == {"jiji": None, "harbor": None}

    report = build_index(corpus, index, Settings(), progress=False)
    assert report.build and report.unchanged == ["harbor", "jiji"] and report.embedded_chunks == 0
    assert catalog(index) == {"jiji": None, "harbor": "jiji"}
    assert not build_index(corpus, index, Settings(), progress=False).build  # now up to date


@pytest.mark.slow
def test_rag_index_reports_the_replaced_file_by_name(tmp_path: Path) -> None:
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    write(corpus, "ferry-v1", "The ferry resumes in July.", published="2025-06-10", url="https://coast.example/f")
    write(corpus, "ferry-v2", "The ferry resumes on July 1.", published="2025-06-11", url="https://coast.example/f")
    result = CliRunner().invoke(main, ["index", "--corpus", str(corpus), "--index", str(index), "-q"])
    assert "skipped ferry-v1.md: replaced by ferry-v2, a newer version of the same URL" in result.output
    assert result.exit_code == 3
    assert catalog(index) == {"ferry-v2": None}


# Corroboration counts a wire copy once: three papers carrying it are "carried by", not "also reported by".

def candidate(article_id: str, source: str, duplicate_of: str | None = None) -> Candidate:
    text = "The ferry resumes on July 1."
    return Candidate(0, Article(article_id, article_id, source, text, duplicate_of=duplicate_of), 0, len(text),
                     (21, 27), True, {})


def counted(leader: Candidate, *others: Candidate) -> tuple[list[str], list[str]]:
    """(ids also reported by, ids carried by) once `others` are counted for the leader's fact, in this order."""
    fact = Fact(leader)
    for other in others:
        corroborate(fact, other, lambda a: a.duplicate_of or a.id)
    return [c.article.id for c in fact.reports], [c.article.id for c in fact.carriers]


WIRE_A, WIRE_B, WIRE_C = (candidate("a", "Coast Daily"), candidate("b", "Harbor Times", "a"),
                          candidate("c", "Island Post", "a"))
OWN = candidate("d", "Seoul Ledger")


def test_copies_of_the_answers_article_are_carried_by_and_another_outlets_own_report_is_also_reported_by() -> None:
    assert counted(WIRE_A, WIRE_B, OWN, WIRE_C) == (["d"], ["b", "c"])
    assert counted(WIRE_B, WIRE_A, WIRE_C, OWN) == (["d"], ["a", "c"])


def test_a_copy_of_a_corroborating_report_is_carried_by_too() -> None:
    assert counted(OWN, WIRE_B, WIRE_A, WIRE_C) == (["b"], ["a", "c"])


def test_a_second_article_of_a_counted_outlet_is_neither() -> None:
    same_outlet_copy = candidate("e", "Coast Daily", "a")
    same_outlet_own = candidate("f", "Seoul Ledger")
    assert counted(WIRE_A, same_outlet_copy, OWN, same_outlet_own, WIRE_B) == (["d"], ["b"])


WIRE = ("BUSAN, June 12 (Harbor Wire) -- The ferry service between Busan and Fukuoka will resume on July 1 after a "
        "two-year pause, the operator Kampu Lines said on Thursday. The company will run one round trip a day with "
        "its refitted vessel, the Seabird, which carries up to 400 passengers. Tickets go on sale next week at both "
        "ports and online. The route was suspended in 2023 when the previous vessel failed a safety inspection. "
        "Local businesses in both cities lobbied for its return, citing the loss of day-trippers.")
COPIES = {  # three papers carry the wire story with small edits of their own
    "coast": ("Coast Daily", "2025-06-12", WIRE.replace("(Harbor Wire)", "(Coast Daily)")),
    "harbor": ("Harbor Times", "2025-06-12", WIRE.replace("lobbied", "had lobbied")),
    "island": ("Island Post", "2025-06-13", WIRE.replace("at both ports and online", "at both ports")
               + " The Island Post will report on the first crossing."),
}
INDEPENDENT = ("Seoul Ledger", "2025-06-12",
               "Port officials told reporters that the ferry between Busan and Fukuoka will resume service on "
               "July 1, ending a suspension of two years. A new timetable will be published on Monday. The port "
               "authority expects about 300 passengers a day in the first month.")
QUESTION = "When will the ferry between Busan and Fukuoka resume?"


@pytest.fixture(scope="module")
def wire_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wire")
    for name, (source, published, text) in {**COPIES, "ledger": INDEPENDENT}.items():
        write(root / "corpus", name, text, source=source, published=published, title=f"{source}: ferry to resume",
              url=f"https://{name}.example/ferry")
    build_index(root / "corpus", root / "index", Settings(), progress=False)
    return root / "index"


@pytest.mark.slow
def test_wire_copies_are_carried_by_and_only_the_independent_outlet_is_also_reported_by(wire_index: Path) -> None:
    assert catalog(wire_index) == {"coast": None, "harbor": "coast", "island": "coast", "ledger": None}
    top = Pipeline(index_dir=wire_index).ask(QUESTION).answers[0]
    assert "July 1" in top.text
    reports = [top.article.id] + [o.article.id for o in top.also_reported_by]
    carried = [o.article.id for o in top.carried_by]
    # Two independent reports (the wire story once, the Ledger's own), and the wire story's other carriers.
    assert sorted(reports) == sorted(["ledger", next(i for i in reports if i in COPIES)])
    assert sorted(carried) == sorted(set(COPIES) - set(reports))
    for other in (*top.also_reported_by, *top.carried_by):
        assert other.article.text[other.quote_start:other.quote_end] == other.quote
    if top.article.id in COPIES:  # the answer quotes a wire copy: the Ledger alone is also reported by
        assert [o.article.source for o in top.also_reported_by] == ["Seoul Ledger"]


@pytest.mark.slow
def test_the_json_api_and_the_page_show_duplicate_of_and_carried_by(wire_index: Path) -> None:
    with TestClient(create_app(Pipeline(index_dir=wire_index))) as client:
        listed = {a["id"]: a["duplicate_of"] for a in client.get("/articles").json()}
        assert listed == {"coast": None, "harbor": "coast", "island": "coast", "ledger": None}
        assert client.get("/articles/harbor").json()["duplicate_of"] == "coast"
        schema = client.get("/openapi.json").json()["components"]["schemas"]
        assert "duplicate_of" in schema["ArticleMeta"]["properties"]
        assert "carried_by" in schema["AnswerOut"]["properties"]

        answer = client.post("/ask", json={"question": QUESTION}).json()["answers"][0]
        carried = {c["article"]["id"] for c in answer["carried_by"]}
        assert len(carried) == 2 and carried <= set(COPIES)
        for c in answer["carried_by"]:
            text = client.get(f"/articles/{c['article']['id']}").json()["text"]
            assert text[c["quote_start"]:c["quote_end"]] == c["quote"]

        html = client.post("/", data={"question": QUESTION}, headers={"Accept": BROWSER_ACCEPT}).text
        carried_line = html.split('<p class="carried">')[1].split("</p>")[0]
        assert carried_line.lstrip().startswith("Carried by")
        assert all(f"/articles/{i}?start=" in carried_line for i in carried)
        also_line = html.split('<p class="also">')[1].split("</p>")[0]
        assert not any(f"/articles/{i}?" in also_line for i in carried)
        # A follow-up without JavaScript shows the earlier turn again whole, its carriers too.
        history = [unescape(v) for v in re.findall(r'<input type="hidden" name="history" value="([^"]*)">', html)]
        follow = client.post("/", data={"question": "Who runs the ferry?", "history": history}).text
        earlier = follow.split(QUESTION)[1].split('<li class="turn"')[0]
        assert '<p class="carried">' in earlier


@pytest.mark.slow
def test_rag_ask_json_shows_carried_by_and_duplicate_of(wire_index: Path) -> None:
    result = CliRunner().invoke(main, ["ask", QUESTION, "--index", str(wire_index), "--json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)["answers"][0]
    assert len(answer["carried_by"]) == 2
    assert all(c["article"]["duplicate_of"] == "coast" or c["article"]["id"] == "coast"
               for c in answer["carried_by"])
    assert "duplicate_of" in answer["article"]


@pytest.fixture(scope="module")
def wire_server(wire_index: Path, chromium_path: str) -> Iterator[str]:
    """The app over the wire corpus on a free localhost port."""
    with serving(create_app(Pipeline(Settings(), index_dir=wire_index))) as url:
        yield url


@pytest.mark.slow
@pytest.mark.browser
def test_the_chat_shows_carried_by_apart_from_also_reported_by(browser, wire_server: str) -> None:
    page = new_page(browser, wire_server)
    page.goto("/")
    answer = ask(page, QUESTION).locator(".answer").first
    carried = answer.locator("p.carried")
    assert carried.inner_text().startswith("Carried by ")
    carried_ids = {link.get_attribute("href").split("?")[0].rsplit("/", 1)[1] for link in carried.locator("a").all()}
    also_ids = {link.get_attribute("href").split("?")[0].rsplit("/", 1)[1]
                for link in answer.locator("p.also a").all()}
    assert len(carried_ids) == 2 and carried_ids <= set(COPIES) and not carried_ids & also_ids
    screenshot(page, "chat-carried-by.png", full_page=False)
    assert page.errors == [], "scripts on the page failed"
    page.context.close()
