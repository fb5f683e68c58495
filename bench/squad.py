"""Answer quality on SQuAD-format data in open retrieval: every paragraph is an article of one corpus.

XQuAD (240 paragraphs, 1,190 questions): is the gold answer inside the top quote / any top-3 quote,
and answer-span exact match and F1 with SQuAD's normalisation. SQuAD v2 (5 articles): how well the
reply's top score separates answerable from unanswerable questions (AUC), and accuracy at the threshold.
"""
from __future__ import annotations

import argparse
import collections
import json
import re
import string
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag import embedding  # noqa: E402
from rag.answering import AnswerSettings, answer_question  # noqa: E402
from rag.index import IndexData, build_index, load_index  # noqa: E402
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


def normalize_answer(text: str) -> str:
    """SQuAD's official normalisation: lower case, no punctuation, articles or extra whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def f1_score(prediction: str, gold: str) -> float:
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = collections.Counter(pred) & collections.Counter(ref)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def contains(quote: str, golds: list[str]) -> bool:
    q = normalize_answer(quote)
    return any(normalize_answer(g) in q for g in golds)


def roc_auc(positive: list[float], negative: list[float]) -> float:
    """Probability that a random positive outscores a random negative (ties count half)."""
    pos, neg = np.asarray(positive), np.asarray(negative)
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def evaluate_xquad(settings: AnswerSettings = AnswerSettings(), limit: int | None = None) -> dict:
    articles, questions = load_squad(EVAL / "squad" / "xquad.en.json")
    index = build_corpus_index("xquad", articles)
    vectors = query_vectors("xquad", questions)
    top1 = top3 = em = f1 = paragraph_hit = 0.0
    questions = questions[:limit] if limit else questions
    for q, v in zip(questions, vectors):
        reply = answer_question(index, q.text, v, 3, settings=settings)
        quotes = [a.quote for a in reply.answers]
        top1 += bool(quotes) and contains(quotes[0], q.answers)
        top3 += any(contains(x, q.answers) for x in quotes)
        paragraph_hit += bool(reply.answers) and reply.answers[0].article.id == q.article_id
        if reply.answers:
            text = reply.answers[0].text
            em += max(normalize_answer(text) == normalize_answer(g) for g in q.answers)
            f1 += max(f1_score(text, g) for g in q.answers)
    n = len(questions)
    return {"questions": n, "quote_top1": top1 / n, "quote_top3": top3 / n, "span_em": em / n, "span_f1": f1 / n,
            "top1_paragraph": paragraph_hit / n}


def evaluate_abstention(settings: AnswerSettings = AnswerSettings()) -> dict:
    articles, questions = load_squad(EVAL / "squad" / "squad_v2_dev_5articles.json")
    index = build_corpus_index("squad_v2", articles)
    vectors = query_vectors("squad_v2", questions)
    answerable, unanswerable = [], []
    correct_declined = correct_answered = 0
    for q, v in zip(questions, vectors):
        reply = answer_question(index, q.text, v, 1, settings=settings)
        score = reply.answers[0].score if reply.answers else 0.0
        (answerable if q.answers else unanswerable).append(score)
        if q.answers:
            correct_answered += not reply.no_answer
        else:
            correct_declined += reply.no_answer
    return {"answerable": len(answerable), "unanswerable": len(unanswerable),
            "auc": roc_auc(answerable, unanswerable),
            "declined_unanswerable": correct_declined / max(1, len(unanswerable)),
            "answered_answerable": correct_answered / max(1, len(answerable)),
            "threshold": settings.no_answer_threshold}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the first 100 XQuAD questions only, no SQuAD v2")
    parser.add_argument("--json", type=Path, help="save the results here")
    args = parser.parse_args()
    results = {"xquad": evaluate_xquad(limit=100 if args.quick else None)}
    if not args.quick:
        results["squad_v2"] = evaluate_abstention()
    x = results["xquad"]
    print("## Answer quality: XQuAD in open retrieval over its 240 paragraphs\n")
    print("| questions | quote top-1 | quote top-3 | span EM | span F1 | top-1 from the gold paragraph |")
    print("|---|---|---|---|---|---|")
    print(f"| {x['questions']} | {x['quote_top1']:.1%} | {x['quote_top3']:.1%} | {100 * x['span_em']:.1f} | "
          f"{100 * x['span_f1']:.1f} | {x['top1_paragraph']:.1%} |\n")
    if "squad_v2" in results:
        a = results["squad_v2"]
        print("## Abstention: SQuAD v2 dev, first 5 articles, open retrieval over their 173 paragraphs\n")
        print("| answerable | unanswerable | AUC | threshold | unanswerable declined | answerable answered |")
        print("|---|---|---|---|---|---|")
        print(f"| {a['answerable']} | {a['unanswerable']} | {a['auc']:.3f} | {a['threshold']} | "
              f"{a['declined_unanswerable']:.1%} | {a['answered_answerable']:.1%} |\n")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
