"""Importing a digest page: the seed digest becomes exactly its five articles."""
from rag.digest import digest_articles, page_time, parse_digest
from tests.conftest import SEED_DIGEST


def test_seed_digest_imports_into_five_articles_with_titles_outlets_and_dates() -> None:
    articles = digest_articles(SEED_DIGEST.read_text(), "seed.txt")
    assert [(a.source, a.published) for a in articles] == [
        ("Yomiuri Shimbun", "2025-06-11"),
        ("Asahi Shimbun", "2025-06-10"),
        ("Jiji Press", "2025-06-09"),
        ("The Mainichi", "2025-06-05"),
        ("Yomiuri Shimbun", "2025-06-05"),
    ]
    assert [a.title for a in articles] == [
        "Japan Looks to Boost Trust with S. Korea's President Lee, Who Has Called for \u2018Pragmatic Diplomacy'",
        "Ishiba, Lee share hopes for early meeting in first phone talks",
        "Ishiba, S. Korea's Lee Agree to Develop Stable Ties",
        "Editorial: New S. Korean president urged to stabilize politics, cooperate globally",
        "Japanese PM Ishiba Seeks Early Summit with South Korea's Lee to Boost Bilateral Ties; "
        "Meeting Could Come as Early as This Month",
    ]
    assert [a.section for a in articles] == ["Politics", "Politics", "Politics", "Business", "General"]
    assert articles[1].byline == "Kei Kobayashi, and correspondent Akihiko Kaise"


def test_article_text_is_the_digest_text_unchanged() -> None:
    digest = SEED_DIGEST.read_text()
    for article in digest_articles(digest, "seed.txt"):
        assert article.text in digest


def test_the_page_is_dated_by_the_item_with_an_absolute_time() -> None:
    anchor = page_time(parse_digest(SEED_DIGEST.read_text()))
    assert anchor.isoformat() == "2025-06-11T16:21:00+09:00"


def test_seed_corpus_holds_the_imported_articles(seed_corpus) -> None:
    from rag.ingest import scan_corpus

    expected = {a.id: a for a in digest_articles(SEED_DIGEST.read_text(), "seed.txt")}
    scan = scan_corpus(seed_corpus)
    assert not scan.problems
    assert {a.id: (a.title, a.source, a.published, a.text) for a in scan.articles} == {
        i: (a.title, a.source, a.published, a.text) for i, a in expected.items()}
