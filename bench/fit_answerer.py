"""Fit the answerer's rank and answer models on the training questions; write rag/models/answerer/.

`make fit-answerer`. Data: `../shared/eval/squad/train/` only (`rag/training_data.py`, which refuses any
test-set paragraph), every paragraph an article of one corpus, split by Wikipedia article:
- Rank model (linear, listwise softmax): on the train split's answerable questions, put the sentence that
  holds the answer first among the retrieved passages' sentences.
- Answer model: on the validation split, whose questions the reader never trained on, every answer the
  reader finds in the top sentences' windows is labelled by whether its quote holds the gold answer. Three
  kinds of question: as asked (SQuAD v2's unanswerable ones too: a trap written against the paragraph),
  and each answerable one asked again of the corpus without its paragraph and without its whole article
  (the news kind: something the articles do not report, all labelled 0). Logistic regression and
  LightGBM trees (monotone where a clue's meaning fixes its direction) are compared by
  leave-one-article-out cross-validation; the better by log loss is refitted on all of it.
- Threshold: the one of best balanced accuracy on the cross-validated scores, answerable questions as
  asked against all unanswerable ones.
XQuAD and the 5-article SQuAD v2 file are never read here; bench/squad.py reports them.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from squad import (CACHE, Question, build_corpus_index, calibration, contains, query_vectors,  # noqa: E402
                   retrieve_excluding, roc_auc)

from rag import confidence, reader  # noqa: E402
from rag.answering import AnswerSettings, find_candidates, sentence_evidence  # noqa: E402
from rag.ingest import slugify  # noqa: E402
from rag.questions import analyze_question  # noqa: E402
from rag.training_data import is_validation, load_training  # noqa: E402

RANK_FEATURES = (
    "dense", "dense_excess", "overlap", "passage", "missing_rarest", "missing_in_passage", "bigrams",
    "negation_missing", "name_missing", "number_missing", "name_missing_sentence", "number_missing_sentence",
    "sentence_words", "turned_around", "paraphrased", "typed_sentence",
)
ANSWER_FEATURES = RANK_FEATURES + (
    "question_words", "expects_type", "typed", "rank", "rank_position", "reader_score", "reader_span",
    "reader_null", "reader_gap", "reader_best", "span_words",
)
# The direction a clue's meaning fixes: more of it can only make an answer likelier (+1) or less likely (-1).
MONOTONE = {
    "dense": 1, "overlap": 1, "passage": 1, "typed": 1, "typed_sentence": 1, "rank": 1, "reader_score": 1, "reader_gap": 1,
    "reader_best": 1, "paraphrased": 1, "missing_rarest": -1, "missing_in_passage": -1,
    "negation_missing": -1, "name_missing": -1, "number_missing": -1, "name_missing_sentence": -1,
    "number_missing_sentence": -1, "turned_around": -1, "rank_position": -1,
}
KINDS = ("asked", "without paragraph", "without article")


def training_corpus() -> tuple[list[dict], list[Question], list[bool], list[str]]:
    """Paragraphs as articles, the questions, whether each is of the validation split, and its article title."""
    articles, questions, validation, titles = {}, [], [], []
    for q in load_training():
        article_id = slugify(f"{q.title}-{q.paragraph}", 120)
        shift = len(q.context) - len(q.context.lstrip())  # the article text is the stripped context
        articles[article_id] = {"id": article_id, "title": q.title.replace("_", " "), "source": "Wikipedia",
                                "text": q.context}
        questions.append(Question(q.id, q.question, [t for _, t in q.answers], article_id,
                                  [s - shift for s, _ in q.answers]))
        validation.append(is_validation(q.title))
        titles.append(q.title)
    return list(articles.values()), questions, validation, titles


def holds_answer(q: Question, article_id: str, start: int, end: int) -> bool:
    """The sentence holds the gold answer where it was marked (for the rank model)."""
    return article_id == q.article_id and any(start <= s < end for s in q.answer_starts)


def quote_answers(q: Question, article_id: str, quote: str) -> bool:
    """The quote, from the question's own paragraph, holds a gold answer: what bench/squad.py counts as a
    right quote. (The rebuilt files mark an answer at its first occurrence, which is not always the one meant.)"""
    return article_id == q.article_id and contains(quote, q.answers)


def fit_softmax(groups, l2: float = 0.01, steps: int = 400, lr: float = 0.05) -> np.ndarray:
    """Listwise training: maximise the probability of the right candidate (Adam on the mean log-loss)."""
    dim = groups[0][0].shape[1]
    w, m, v = np.zeros(dim), np.zeros(dim), np.zeros(dim)
    for step in range(1, steps + 1):
        grad = l2 * w
        for x, t in groups:
            logits = x @ w
            p = np.exp(logits - logits.max())
            p /= p.sum()
            grad += x.T @ (p - t / t.sum()) / len(groups)
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad ** 2
        w -= lr * (m / (1 - 0.9 ** step)) / (np.sqrt(v / (1 - 0.999 ** step)) + 1e-8)
    return w


def rank_groups(index, questions, vectors, settings: AnswerSettings):
    """Per answerable question: every retrieved sentence's clues, labelled by whether it holds the answer."""
    groups = []
    for q, v in zip(questions, vectors):
        passages = retrieve_excluding(index, q.text, v, set(), settings)
        evidence = sentence_evidence(index, passages, analyze_question(q.text), v)
        labels = np.array([holds_answer(q, index.sentence_article(sid).id, *(int(x) for x in index.sentence_table[sid, 1:]))
                           for sid in evidence], dtype=float)
        if labels.any():
            groups.append((np.array([[e[n] for n in RANK_FEATURES] for e in evidence.values()]), labels))
    return groups


def top_k_recall(groups, w: np.ndarray, k: int) -> float:
    return float(np.mean([t[np.argsort(-(x @ w))[:k]].any() for x, t in groups]))


def answer_rows(index, questions, vectors, titles, settings: AnswerSettings, model: confidence.AnswerModel,
                progress: bool = True):
    """Every answer the reader finds for every validation question of each kind, with its features and label."""
    rows, labels, asks, articles, kinds, answerable = [], [], [], [], [], []
    rows_of_title: dict[str, set[int]] = {}
    for a, article in enumerate(index.catalog):
        rows_of_title.setdefault(article.title, set()).add(a)
    started = time.perf_counter()
    ask = 0
    for number, (q, v, title) in enumerate(zip(questions, vectors, titles)):
        analysis = analyze_question(q.text)
        own = index.article_index[q.article_id]
        plans = [("asked", set())]
        if q.answers:
            plans += [("without paragraph", {own}), ("without article", rows_of_title[title.replace("_", " ")])]
        for kind, excluded in plans:
            passages = retrieve_excluding(index, q.text, v, excluded, settings)
            for c in find_candidates(index, passages, analysis, v, settings, model):
                rows.append([c.evidence[n] for n in ANSWER_FEATURES])
                labels.append(float(kind == "asked" and quote_answers(q, c.article.id, c.article.text[c.start:c.end])))
                asks.append(ask)
                articles.append(title)
                kinds.append(KINDS.index(kind))
                answerable.append(kind == "asked" and bool(q.answers))
            ask += 1
        if progress and (number + 1) % 100 == 0:
            elapsed = time.perf_counter() - started
            print(f"  {number + 1}/{len(questions)} questions, {elapsed / 60:.1f} min", file=sys.stderr, flush=True)
    return {"x": np.array(rows), "y": np.array(labels), "ask": np.array(asks), "article": np.array(articles),
            "kind": np.array(kinds), "answerable": np.array(answerable)}


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 0.01, steps: int = 2000, lr: float = 0.2
                 ) -> tuple[np.ndarray, float]:
    """Logistic regression on standardised features; returns weights and bias on the raw scale."""
    mu, sigma = x.mean(0), x.std(0) + 1e-9
    z = (x - mu) / sigma
    w, b = np.zeros(x.shape[1]), 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-np.clip(z @ w + b, -50, 50)))
        w -= lr * (z.T @ (p - y) / len(y) + l2 * w)
        b -= lr * float(np.mean(p - y))
    return w / sigma, b - float(np.sum(w * mu / sigma))


TREE_PARAMS = {"objective": "binary", "learning_rate": 0.05, "num_leaves": 15, "min_data_in_leaf": 40,
               "feature_fraction": 0.8, "bagging_fraction": 0.8, "bagging_freq": 1, "lambda_l2": 1.0,
               "num_threads": 2, "verbose": -1, "seed": 13}
TREE_ROUNDS = 300


def fit_trees(x: np.ndarray, y: np.ndarray, names: tuple[str, ...] = ANSWER_FEATURES):
    import lightgbm

    params = {**TREE_PARAMS, "monotone_constraints": [MONOTONE.get(n, 0) for n in names],
              "monotone_constraints_method": "advanced"}
    return lightgbm.train(params, lightgbm.Dataset(x, y, feature_name=list(names)), TREE_ROUNDS)


def predict(kind: str, fitted, x: np.ndarray) -> np.ndarray:
    if kind == "trees":
        return fitted.predict(x)
    w, b = fitted
    return 1 / (1 + np.exp(-np.clip(x @ w + b, -50, 50)))


def cross_validate(data: dict, kind: str, names: tuple[str, ...] = ANSWER_FEATURES) -> np.ndarray:
    """Leave-one-article-out probabilities for every row, from the features `names`."""
    x = data["x"][:, [ANSWER_FEATURES.index(n) for n in names]]
    out = np.zeros(len(data["y"]))
    for article in sorted(set(data["article"])):
        test = data["article"] == article
        fitted = fit_trees(x[~test], data["y"][~test], names) if kind == "trees" else \
            fit_logistic(x[~test], data["y"][~test])
        out[test] = predict(kind, fitted, x[test])
    return out


# Clues that may no longer pay for themselves now that the reader judges the span: each group is left out in
# turn and the chosen model cross-validated without it.
ABLATIONS = {
    "WordNet clues (turned_around, paraphrased)": ("turned_around", "paraphrased"),
    "name and number clues": ("name_missing", "number_missing", "name_missing_sentence", "number_missing_sentence"),
    "all word clues": ("bigrams", "negation_missing", "name_missing", "number_missing", "name_missing_sentence",
                       "number_missing_sentence", "turned_around", "paraphrased", "missing_rarest",
                       "missing_in_passage"),
    "the reader's logits": ("reader_score", "reader_span", "reader_null", "reader_gap", "reader_best"),
}


def per_ask(data: dict, probabilities: np.ndarray) -> dict:
    """Each question-kind's top answer by probability: its score, whether it is right, and its labels."""
    best: dict[int, int] = {}
    for row, ask in enumerate(data["ask"]):
        if ask not in best or probabilities[row] > probabilities[best[ask]]:
            best[ask] = row
    rows = np.array(sorted(best.values()))
    return {"score": probabilities[rows], "right": data["y"][rows] == 1, "answerable": data["answerable"][rows],
            "kind": data["kind"][rows]}


def balanced_accuracy(scores: np.ndarray, positive: np.ndarray, threshold: float) -> float:
    return float(np.mean(scores[positive] >= threshold) + np.mean(scores[~positive] < threshold)) / 2


def best_threshold(scores: np.ndarray, positive: np.ndarray) -> float:
    candidates = np.unique(np.round(scores, 3))
    return float(max(candidates, key=lambda t: balanced_accuracy(scores, positive, t)))


def summary(data: dict, probabilities: np.ndarray, threshold: float | None = None) -> dict:
    asks = per_ask(data, probabilities)
    positive = asks["answerable"]
    threshold = best_threshold(asks["score"], positive) if threshold is None else threshold
    ece, table = calibration(list(asks["score"]), list(asks["right"]))
    kinds = {name: asks["score"][(asks["kind"] == i) & ~positive] for i, name in enumerate(KINDS)}
    return {
        "threshold": threshold,
        "auc_all": roc_auc(asks["score"][positive], asks["score"][~positive]),
        "auc_squad_unanswerable": roc_auc(asks["score"][positive], kinds["asked"]),
        "auc_without_paragraph": roc_auc(asks["score"][positive], kinds["without paragraph"]),
        "auc_without_article": roc_auc(asks["score"][positive], kinds["without article"]),
        "top1_right": float(asks["right"][positive].mean()),
        "answerable_high": float(np.mean(asks["score"][positive] >= threshold)),
        "unanswerable_declined": {name: float(np.mean(s < threshold)) for name, s in kinds.items()},
        "balanced_accuracy": balanced_accuracy(asks["score"], positive, threshold),
        "log_loss": float(-np.mean(data["y"] * np.log(np.clip(probabilities, 1e-6, 1))
                                   + (1 - data["y"]) * np.log(np.clip(1 - probabilities, 1e-6, 1)))),
        "ece": ece, "reliability": table,
    }


def reader_fingerprint() -> str:
    return hashlib.sha256((reader.MODEL_DIR / reader.WEIGHTS).read_bytes()).hexdigest()[:16]


CARD = """# Answerer: sentence rank and answer model

Read by `rag/confidence.py`; `make fit-answerer` (`python bench/fit_answerer.py`) refits it (about {minutes} min).

- **Data:** `../shared/eval/squad/train/` only (SQuAD 1.1/2.0, CC BY-SA 4.0), every paragraph an article of one
  corpus. The rank model learns from {rank_questions} answerable questions of the train split; the answer model
  from the validation split ({validation_questions} questions of {validation_articles} articles the reader never
  trained on) in three kinds: as asked, and each answerable one asked again without its paragraph and without
  its article ({asks} asks, {rows} answers). XQuAD and the 5-article SQuAD v2 file are never read.
- **Licence:** fitted on CC BY-SA 4.0 data; released with the project (MIT).
- **Rank model:** linear over {rank_features}; on the validation questions the top sentence holds the answer
  for {rank_top1:.1%}, one of the top {reader_sentences} for {rank_topk:.1%}.
- **Answer model:** {kind} over {n_features} features (the reader's logits, the rank, the word clues).
  Chosen by leave-one-article-out log loss: logistic {logistic_loss:.4f}, trees {trees_loss:.4f}.
- **Cross-validated on the validation articles** (top answer per question): AUC answerable vs all
  unanswerable {cv[auc_all]:.3f} (vs SQuAD v2's own {cv[auc_squad_unanswerable]:.3f}, vs without paragraph
  {cv[auc_without_paragraph]:.3f}, vs without article {cv[auc_without_article]:.3f}); top answer right
  {cv[top1_right]:.1%}; expected calibration error {cv[ece]:.3f}.
- **Threshold:** {threshold} (best balanced accuracy of those scores, {cv[balanced_accuracy]:.3f}): answerable
  answered with confidence high {cv[answerable_high]:.1%}; declined: {declined}.
- **Without some clues** (the same cross-validation, the chosen model): {ablations}.
- Test-set scores are in `bench/REPORT.md`.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rank-questions", type=int, default=3000, help="train-split questions for the rank model")
    parser.add_argument("--validation-questions", type=int, default=0, help="at most this many (0: all)")
    parser.add_argument("--out", type=Path, default=confidence.MODEL_DIR)
    args = parser.parse_args()
    started = time.perf_counter()
    settings = AnswerSettings()
    articles, questions, validation, titles = training_corpus()
    index = build_corpus_index("squad_train", articles)
    vectors = query_vectors("squad_train", questions)
    rng = random.Random(13)

    train_ids = [i for i, (q, v) in enumerate(zip(questions, validation)) if q.answers and not v]
    rng.shuffle(train_ids)
    groups = rank_groups(index, [questions[i] for i in train_ids[:args.rank_questions]],
                         vectors[train_ids[:args.rank_questions]], settings)
    w_rank = fit_softmax(groups)
    val_ids = [i for i, v in enumerate(validation) if v]
    rng.shuffle(val_ids)
    if args.validation_questions:
        val_ids = val_ids[:args.validation_questions]
    val_groups = rank_groups(index, [questions[i] for i in val_ids if questions[i].answers],
                             vectors[[i for i in val_ids if questions[i].answers]], settings)
    rank_top1 = top_k_recall(val_groups, w_rank, 1)
    rank_topk = top_k_recall(val_groups, w_rank, settings.reader_sentences)
    print(f"rank model: {len(groups)} train questions; validation top-1 {rank_top1:.3f}, "
          f"top-{settings.reader_sentences} {rank_topk:.3f}", file=sys.stderr)
    fit = {"rank": {"features": list(RANK_FEATURES), "weights": [round(float(x), 4) for x in w_rank]}}

    rank_only = confidence.from_dict({**fit, "threshold": 0.5, "answer": {
        "kind": "logistic", "features": list(RANK_FEATURES), "weights": [0.0] * len(RANK_FEATURES), "bias": 0.0}})
    cache = CACHE / "fit_answerer" / f"rows2-{reader_fingerprint()}-{hashlib.sha256(json.dumps(fit).encode()).hexdigest()[:8]}-{len(val_ids)}.npz"
    if cache.exists():
        data = dict(np.load(cache))
    else:
        data = answer_rows(index, [questions[i] for i in val_ids], vectors[val_ids], [titles[i] for i in val_ids],
                           settings, rank_only)
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, **data)
    results = {kind: summary(data, cross_validate(data, kind)) for kind in ("logistic", "trees")}
    for kind, r in results.items():
        print(f"{kind}: log loss {r['log_loss']:.4f}, AUC {r['auc_all']:.3f} (squad {r['auc_squad_unanswerable']:.3f}, "
              f"no paragraph {r['auc_without_paragraph']:.3f}, no article {r['auc_without_article']:.3f}), "
              f"top-1 right {r['top1_right']:.3f}, ECE {r['ece']:.3f}, threshold {r['threshold']}, "
              f"answerable high {r['answerable_high']:.3f}, declined {r['unanswerable_declined']}", file=sys.stderr)
    kind = min(results, key=lambda k: results[k]["log_loss"])
    chosen = results[kind]
    ablations = {}
    for name, dropped in ABLATIONS.items():
        r = summary(data, cross_validate(data, kind, tuple(n for n in ANSWER_FEATURES if n not in dropped)))
        ablations[name] = {k: r[k] for k in ("log_loss", "auc_all", "auc_squad_unanswerable", "top1_right")}
        print(f"without {name}: log loss {r['log_loss']:.4f}, AUC {r['auc_all']:.3f} (squad "
              f"{r['auc_squad_unanswerable']:.3f}), top-1 right {r['top1_right']:.3f}", file=sys.stderr)
    if kind == "trees":
        trees = fit_trees(data["x"], data["y"])
        fit["answer"] = {"kind": "trees", "features": list(ANSWER_FEATURES), "trees": trees.model_to_string()}
    else:
        w, b = fit_logistic(data["x"], data["y"])
        fit["answer"] = {"kind": "logistic", "features": list(ANSWER_FEATURES),
                         "weights": [round(float(x), 5) for x in w], "bias": round(b, 5)}
    fit["threshold"] = round(chosen["threshold"], 3)
    fit["validation"] = {k: {n: v for n, v in r.items()} for k, r in results.items()}
    fit["chosen"] = kind
    fit["ablations"] = ablations
    args.out.mkdir(parents=True, exist_ok=True)
    temporary = args.out / (confidence.MODEL_FILE + ".tmp")
    temporary.write_text(json.dumps(fit, indent=1) + "\n")
    temporary.replace(args.out / confidence.MODEL_FILE)
    declined = ", ".join(f"{name} {share:.1%}" for name, share in chosen["unanswerable_declined"].items())
    (args.out / "README.md").write_text(CARD.format(
        minutes=round((time.perf_counter() - started) / 60), rank_questions=len(groups),
        validation_questions=len(val_ids), validation_articles=len({titles[i] for i in val_ids}),
        asks=int(data["ask"].max()) + 1, rows=len(data["y"]), rank_features=", ".join(RANK_FEATURES),
        rank_top1=rank_top1, rank_topk=rank_topk, reader_sentences=settings.reader_sentences, kind=kind,
        n_features=len(ANSWER_FEATURES), logistic_loss=results["logistic"]["log_loss"],
        trees_loss=results["trees"]["log_loss"], cv=chosen, threshold=fit["threshold"], declined=declined,
        ablations="; ".join(f"{name}: log loss {r['log_loss']:.4f}, AUC {r['auc_all']:.3f}, top answer right "
                            f"{r['top1_right']:.1%}" for name, r in ablations.items())))
    print(json.dumps({k: v for k, v in fit.items() if k != "answer"}, indent=1, default=str))


if __name__ == "__main__":
    main()
