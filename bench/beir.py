"""Load BEIR-layout retrieval sets and score runs with BEIR/pytrec_eval metrics.

Stdlib only, so it imports in any venv. Layout under ``ROOT/<name>/``:
``corpus.jsonl[.gz]`` ({"_id","title","text"}), ``queries.jsonl`` ({"_id","text"})
and a qrels TSV ``query-id corpus-id score`` with a header line.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "shared" / "eval" / "retrieval"
QRELS_FILES: dict[str, str] = {"scifact": "qrels/test.tsv", "time_news_1963": "qrels.tsv"}

Qrels = dict[str, dict[str, int]]  # query id -> doc id -> graded relevance


@dataclass(frozen=True)
class Doc:
    id: str
    title: str
    text: str

    @property
    def full_text(self) -> str:
        """Title and body joined by a space (just the body when there is no title)."""
        return f"{self.title} {self.text}" if self.title else self.text


@dataclass(frozen=True)
class Dataset:
    name: str
    docs: list[Doc]  # corpus order
    queries: dict[str, str]  # only queries that have qrels
    qrels: Qrels

    def subset(self, n_docs: int) -> Dataset:
        """First ``n_docs`` documents, qrels restricted to them, and the queries left with a relevant doc."""
        docs = self.docs[:n_docs]
        keep = {d.id for d in docs}
        qrels: Qrels = {}
        for qid, rels in self.qrels.items():
            kept = {did: r for did, r in rels.items() if did in keep}
            if any(r > 0 for r in kept.values()):
                qrels[qid] = kept
        return Dataset(self.name, docs, {q: self.queries[q] for q in qrels}, qrels)


def _jsonl(path: Path) -> Iterator[dict[str, str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def load_qrels(path: Path) -> Qrels:
    """Read a qrels TSV with a header line."""
    qrels: Qrels = {}
    with open(path, encoding="utf-8") as f:
        next(f)
        for line in f:
            parts = line.split()
            if len(parts) == 3:
                qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    return qrels


def load(name: str, root: Path = ROOT) -> Dataset:
    """Load dataset ``name``; keeps only queries that appear in its qrels."""
    base = root / name
    corpus = base / "corpus.jsonl"
    if not corpus.exists():
        corpus = base / "corpus.jsonl.gz"
    docs = [Doc(str(d["_id"]), d.get("title") or "", d.get("text") or "") for d in _jsonl(corpus)]
    qrels = load_qrels(base / QRELS_FILES.get(name, "qrels.tsv"))
    all_queries = {str(q["_id"]): q["text"] for q in _jsonl(base / "queries.jsonl")}
    queries = {qid: all_queries[qid] for qid in qrels if qid in all_queries}
    return Dataset(name, docs, queries, {qid: qrels[qid] for qid in queries})


def ndcg_at_k(ranked_ids: Sequence[str], qrels_for_query: Mapping[str, int], k: int = 10) -> float:
    """nDCG@k as pytrec_eval ``ndcg_cut``: linear graded gains, 1/log2(rank+1) discount, ideal from qrels."""
    dcg = sum(qrels_for_query.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked_ids[:k]))
    ideal = sorted((r for r in qrels_for_query.values() if r > 0), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked_ids: Sequence[str], qrels_for_query: Mapping[str, int], k: int = 10) -> float:
    """Share of relevant docs (relevance > 0) found in the top k."""
    relevant = {d for d, r in qrels_for_query.items() if r > 0}
    return len(relevant.intersection(ranked_ids[:k])) / len(relevant) if relevant else 0.0


def _dedup(ids: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def evaluate(run: Mapping[str, Sequence[str]], qrels: Qrels, k: int = 10) -> dict[str, float]:
    """Mean nDCG@k and recall@k over every query in ``qrels`` (a query missing from ``run`` scores 0)."""
    if not qrels:
        return {f"ndcg@{k}": 0.0, f"recall@{k}": 0.0}
    ranked = {qid: _dedup(run.get(qid, [])) for qid in qrels}
    n = len(qrels)
    return {
        f"ndcg@{k}": sum(ndcg_at_k(ranked[q], rels, k) for q, rels in qrels.items()) / n,
        f"recall@{k}": sum(recall_at_k(ranked[q], rels, k) for q, rels in qrels.items()) / n,
    }
