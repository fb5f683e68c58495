"""The JSON shape of a reply, shared by the `/ask` API and `rag ask --json`."""
from __future__ import annotations

from rag.types import Answer, Corroboration, Reply


def corroboration_to_dict(corroboration: Corroboration) -> dict:
    c = corroboration
    return {"article": c.article.meta(), "quote": c.quote, "quote_start": c.quote_start, "quote_end": c.quote_end}


def answer_to_dict(answer: Answer) -> dict:
    return {
        "text": answer.text,
        "quote": answer.quote,
        "score": answer.score,
        "weak": answer.weak,
        "confidence": answer.confidence,
        "field": answer.field,
        "article": answer.article.meta(),
        "quote_start": answer.quote_start,
        "quote_end": answer.quote_end,
        "answer_start": answer.answer_start,
        "answer_end": answer.answer_end,
        "also_reported_by": [corroboration_to_dict(c) for c in answer.also_reported_by],
        "carried_by": [corroboration_to_dict(c) for c in answer.carried_by],
    }


def reply_to_dict(reply: Reply) -> dict:
    return {
        "question": reply.question,
        "no_answer": reply.no_answer,
        "took_ms": reply.took_ms,
        "answers": [answer_to_dict(a) for a in reply.answers],
    }
