"""The 14 dev questions over the seed corpus: are the unanswerable ones declined, the others answered right?

A reply is correct when its top answer (or, leniently, its quote) contains an acceptable answer after
lower-casing and dropping punctuation and articles, and it cites an article whose title matches.
It is a smoke signal, not a result (see ../shared/eval/README.md).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag.index import build_index  # noqa: E402
from rag.pipeline import Pipeline  # noqa: E402
from rag.settings import Settings  # noqa: E402
from squad import CACHE, EVAL, normalize_answer  # noqa: E402


def seed_pipeline() -> Pipeline:
    """The repo's corpus indexed under bench/.cache (incremental: a rerun embeds nothing)."""
    corpus = CACHE / "seed" / "corpus"
    shutil.rmtree(corpus, ignore_errors=True)
    shutil.copytree(ROOT / "corpus", corpus)
    build_index(corpus, CACHE / "seed" / "index", Settings(), progress=False)
    return Pipeline(index_dir=CACHE / "seed" / "index")


def _questions() -> list[dict]:
    return [json.loads(line) for line in (EVAL / "dev_questions.jsonl").read_text().splitlines() if line.strip()]


def _judge(row: dict, reply) -> tuple[bool, bool]:
    """Whether the top answer would be right if given (it cites a matching title and its span or, leniently,
    its quote holds an acceptable answer), and whether it is right by the span alone."""
    top = reply.answers[0] if reply.answers else None
    golds = [normalize_answer(a) for a in row["answers"]]
    if top is None or not any(t in top.article.title for t in row["titles"]):
        return False, False
    strict = any(g in normalize_answer(top.text) for g in golds)
    return strict or any(g in normalize_answer(top.quote) for g in golds), strict


def dev_scores(pipeline: Pipeline) -> list[tuple[bool, float, bool]]:
    """Per dev question: is it answerable, its top score, and would its top answer be right if given."""
    out = []
    for row in _questions():
        reply = pipeline.ask(row["question"])
        out.append((bool(row["answers"]), reply.answers[0].score if reply.answers else 0.0, _judge(row, reply)[0]))
    return out


def evaluate_dev(pipeline: Pipeline | None = None, verbose: bool = False) -> dict:
    pipeline = pipeline or seed_pipeline()
    rows = _questions()
    answered_right = answered_right_strict = declined = answerable = 0
    for row in rows:
        reply = pipeline.ask(row["question"])
        if not row["answers"]:
            declined += reply.no_answer
            outcome = "declined" if reply.no_answer else "answered (wrong: no answer exists)"
        else:
            answerable += 1
            right, strict = _judge(row, reply)
            right = right and not reply.no_answer
            answered_right += right
            answered_right_strict += right and strict
            outcome = "right" if right else ("declined" if reply.no_answer else "wrong")
        if verbose:
            top = reply.answers[0] if reply.answers else None
            print(f"{row['id']} {outcome:9s} {row['question']!r} -> {top.text if top else None!r} "
                  f"({top.score if top else 0:.2f})", file=sys.stderr)
    return {"answerable": answerable, "answered_right": answered_right, "answered_right_span": answered_right_strict,
            "unanswerable": len(rows) - answerable, "declined": declined}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="(the same: the set is tiny)")
    parser.add_argument("--json", type=Path, help="save the results here")
    args = parser.parse_args()
    results = evaluate_dev(verbose=True)
    print("## Dev questions on the seed corpus (a smoke signal: 14 questions)\n")
    print("| answerable answered right (quote or span) | of which by the span | unanswerable declined |")
    print("|---|---|---|")
    print(f"| {results['answered_right']} / {results['answerable']} | {results['answered_right_span']} | "
          f"{results['declined']} / {results['unanswerable']} |\n")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
