"""Answer quality on SQuAD-format data in open retrieval: every paragraph is an article of one corpus.

XQuAD (240 paragraphs, 1,190 questions): is the gold answer inside the top quote / any top-3 quote,
and answer-span exact match and F1 with SQuAD's normalisation. SQuAD v2 (5 articles): how well the
reply's top score separates answerable from unanswerable questions (AUC), and accuracy at the threshold.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag import embedding  # noqa: E402
from rag.answering import AnswerSettings, answer_question, find_candidates  # noqa: E402
from rag.index import IndexData, build_index, load_index  # noqa: E402
from rag.metrics import contains, f1_score, normalize_answer, roc_auc  # noqa: E402,F401  (fit_answerer and dev_questions import them from here)
from rag.questions import analyze_question  # noqa: E402
from rag.retrieval import dense_candidates, fuse, lexical_candidates  # noqa: E402
from rag.types import Passage  # noqa: E402
from rag.ingest import slugify  # noqa: E402
from rag.settings import Settings  # noqa: E402

EVAL = ROOT.parent / "shared" / "eval"
CACHE = ROOT / "bench" / ".cache"


@dataclass
class Question:
    id: str
    text: str
    answers: list[str]  # empty: unanswerable
    article_id: str
    answer_starts: list[int]  # offsets of the answers in the article text


def load_squad(path: Path) -> tuple[list[dict], list[Question]]:
    """Paragraphs as article records (JSONL-ready) and their questions."""
    data = json.loads(path.read_text())
    articles, questions = [], []
    for doc in data["data"]:
        for number, paragraph in enumerate(doc["paragraphs"]):
            article_id = slugify(f"{doc['title']}-{number}", 120)
            context = paragraph["context"]
            shift = len(context) - len(context.lstrip())  # the article text is the stripped context
            articles.append({"id": article_id, "title": doc["title"].replace("_", " "),
                             "source": "Wikipedia", "text": context})
            for qa in paragraph["qas"]:
                answers = [] if qa.get("is_impossible") else qa["answers"]
                questions.append(Question(
                    qa["id"], qa["question"], [a["text"] for a in answers], article_id,
                    [a["answer_start"] - shift for a in answers]))
    return articles, questions


def build_corpus_index(name: str, articles: list[dict], settings: Settings | None = None) -> IndexData:
    """Index the paragraphs once; later runs find them unchanged and embed nothing."""
    corpus = CACHE / name / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    (corpus / f"{name}.jsonl").write_text("".join(json.dumps(a) + "\n" for a in articles))
    index_dir = CACHE / name / "index"
    build_index(corpus, index_dir, settings or Settings(), progress=sys.stderr.isatty())
    return load_index(index_dir)


def query_vectors(name: str, questions: list[Question]) -> np.ndarray:
    path = CACHE / name / "questions.npy"
    if path.exists():
        cached = np.load(path)
        if len(cached) == len(questions):
            return cached
    vectors = embedding.embed([q.text for q in questions], batch_size=64)
    np.save(path, vectors)
    return vectors


def retrieve_excluding(index: IndexData, question: str, vector: np.ndarray, excluded: set[int],
                       settings: AnswerSettings) -> list[Passage]:
    """Retrieval as if the corpus lacked some articles (rows of the catalog): a question it does not answer."""
    mask = ~np.isin(index.chunk_article, list(excluded)) if excluded else None
    dense = dense_candidates(index, vector, settings.candidates, mask)
    sparse = lexical_candidates(index, question, settings.candidates, mask)
    return [Passage(i, index.chunk(i), score, dense.get(i, 0.0), sparse.get(i, 0.0))
            for i, score in fuse(dense, sparse, settings.fusion)[:settings.passages]]


def top_score_without(index: IndexData, q: Question, vector: np.ndarray, settings: AnswerSettings) -> float:
    """The top answer's score when the question's own paragraph is not in the corpus."""
    passages = retrieve_excluding(index, q.text, vector, {index.article_index[q.article_id]}, settings)
    candidates = find_candidates(index, passages, analyze_question(q.text), vector, settings)
    return round(candidates[0].score, 4) if candidates else 0.0


def calibration(scores: list[float], right: list[bool], bins: int = 10) -> tuple[float, list[tuple]]:
    """Expected calibration error of "the top quote answers" and the reliability table
    (score range, questions, mean score, share whose top quote answers)."""
    s, r = np.asarray(scores), np.asarray(right, dtype=float)
    table, ece = [], 0.0
    edges = np.linspace(0, 1, bins + 1)
    for lo, hi in zip(edges, edges[1:]):
        inside = (s >= lo) & ((s < hi) if hi < 1 else (s <= hi))
        if inside.any():
            ece += inside.sum() / len(s) * abs(s[inside].mean() - r[inside].mean())
            table.append((f"{lo:.1f}-{hi:.1f}", int(inside.sum()), float(s[inside].mean()), float(r[inside].mean())))
    return float(ece), table


def evaluate_xquad(settings: AnswerSettings = AnswerSettings(), limit: int | None = None) -> dict:
    """Open retrieval over the 240 paragraphs; then each question again without its paragraph (the news kind
    of unanswerable question: the articles do not report it)."""
    articles, questions = load_squad(EVAL / "squad" / "xquad.en.json")
    index = build_corpus_index("xquad", articles)
    vectors = query_vectors("xquad", questions)
    threshold = settings.threshold()
    top1 = top3 = em = f1 = paragraph_hit = high = 0.0
    scores, right, scores_without = [], [], []
    questions, vectors = (questions[:limit], vectors[:limit]) if limit else (questions, vectors)
    for q, v in zip(questions, vectors):
        reply = answer_question(index, q.text, v, 3, settings=settings)
        quotes = [a.quote for a in reply.answers]
        top1 += bool(quotes) and contains(quotes[0], q.answers)
        top3 += any(contains(x, q.answers) for x in quotes)
        paragraph_hit += bool(reply.answers) and reply.answers[0].article.id == q.article_id
        high += not reply.no_answer
        scores.append(reply.answers[0].score if reply.answers else 0.0)
        right.append(bool(quotes) and contains(quotes[0], q.answers))
        if reply.answers:
            text = reply.answers[0].text
            em += max(normalize_answer(text) == normalize_answer(g) for g in q.answers)
            f1 += max(f1_score(text, g) for g in q.answers)
        scores_without.append(top_score_without(index, q, v, settings))
    n = len(questions)
    ece, table = calibration(scores + scores_without, right + [False] * n)
    return {"questions": n, "quote_top1": top1 / n, "quote_top3": top3 / n, "span_em": em / n, "span_f1": f1 / n,
            "top1_paragraph": paragraph_hit / n, "threshold": threshold, "answered_high": high / n,
            "declined_without_paragraph": float(np.mean(np.asarray(scores_without) < threshold)),
            "auc_without_paragraph": roc_auc(scores, scores_without), "ece": ece, "reliability": table}


def evaluate_abstention(settings: AnswerSettings = AnswerSettings()) -> dict:
    articles, questions = load_squad(EVAL / "squad" / "squad_v2_dev_5articles.json")
    index = build_corpus_index("squad_v2", articles)
    vectors = query_vectors("squad_v2", questions)
    threshold = settings.threshold()
    answerable, unanswerable, scores, right = [], [], [], []
    correct_declined = correct_answered = 0
    for q, v in zip(questions, vectors):
        reply = answer_question(index, q.text, v, 1, settings=settings)
        score = reply.answers[0].score if reply.answers else 0.0
        (answerable if q.answers else unanswerable).append(score)
        scores.append(score)
        right.append(bool(q.answers) and bool(reply.answers) and contains(reply.answers[0].quote, q.answers))
        if q.answers:
            correct_answered += not reply.no_answer
        else:
            correct_declined += reply.no_answer
    ece, table = calibration(scores, right)
    return {"answerable": len(answerable), "unanswerable": len(unanswerable),
            "auc": roc_auc(answerable, unanswerable),
            "declined_unanswerable": correct_declined / max(1, len(unanswerable)),
            "answered_answerable": correct_answered / max(1, len(answerable)),
            "threshold": threshold, "ece": ece, "reliability": table}


def reliability_markdown(table: list[tuple]) -> str:
    rows = ["| score | questions | mean score | top quote answers |", "|---|---|---|---|"]
    rows += [f"| {bin_} | {n} | {mean:.3f} | {share:.3f} |" for bin_, n, mean, share in table]
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the first 100 XQuAD questions only, no SQuAD v2")
    parser.add_argument("--json", type=Path, help="save the results here")
    args = parser.parse_args()
    results = {"xquad": evaluate_xquad(limit=100 if args.quick else None)}
    if not args.quick:
        results["squad_v2"] = evaluate_abstention()
    x = results["xquad"]
    print("## Answer quality: XQuAD in open retrieval over its 240 paragraphs (a test set: nothing fitted on it)\n")
    print("| questions | quote top-1 | quote top-3 | span EM | span F1 | top-1 from the gold paragraph |")
    print("|---|---|---|---|---|---|")
    print(f"| {x['questions']} | {x['quote_top1']:.1%} | {x['quote_top3']:.1%} | {100 * x['span_em']:.1f} | "
          f"{100 * x['span_f1']:.1f} | {x['top1_paragraph']:.1%} |\n")
    print("### News-like abstention: the same questions, then each without its paragraph in the corpus\n")
    print("| threshold | answered with confidence high | declined without the paragraph | AUC | ECE |")
    print("|---|---|---|---|---|")
    print(f"| {x['threshold']} | {x['answered_high']:.1%} | {x['declined_without_paragraph']:.1%} | "
          f"{x['auc_without_paragraph']:.3f} | {x['ece']:.3f} |\n")
    print("Reliability (both kinds together; a question without its paragraph never has a right quote):\n")
    print(reliability_markdown(x["reliability"]) + "\n")
    if "squad_v2" in results:
        a = results["squad_v2"]
        print("## Abstention: SQuAD v2 dev, first 5 articles, open retrieval over their 173 paragraphs (a test set)\n")
        print("| answerable | unanswerable | AUC | threshold | unanswerable declined | answerable answered | ECE |")
        print("|---|---|---|---|---|---|---|")
        print(f"| {a['answerable']} | {a['unanswerable']} | {a['auc']:.3f} | {a['threshold']} | "
              f"{a['declined_unanswerable']:.1%} | {a['answered_answerable']:.1%} | {a['ece']:.3f} |\n")
        print("Reliability:\n")
        print(reliability_markdown(a["reliability"]) + "\n")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
