"""The index in Milvus beside the FAISS path (issue 20): retrieval quality and search latency, /ask latency, and a
synthetic index of up to a million chunks in Milvus Lite.

1. TIME and SciFact: each corpus is indexed as bench/retrieval.py indexes it (bench/.cache/<name>/index, FAISS),
   then the same build is written into Milvus Lite (bench/.cache/<name>/milvus.db) by `build_index` with a
   MilvusStore, its rows read from the local build instead of embedded again. Every query goes through
   `rag.retrieval.retrieve` with the answerer's defaults (candidates, fusion) on both: FAISS + BM25 fused here,
   or one `hybrid_search` fused inside Milvus. A chunk ranking becomes a document ranking at each document's best
   chunk (as bench/retrieval.py does); nDCG@10 and recall@10 by bench/beir.py. Search p50/p95 is timed as
   bench/retrieval.py times it (query embedding included, one query at a time, the two paths in turn).
2. /ask on the seed corpus: `rag serve --index` (FAISS) and `rag serve --milvus seed.db` (Milvus Lite, indexed
   with `rag index --milvus`) run side by side and are asked the same questions (bench/latency.py's) in turn, one
   request at a time: p50/p95 and each server's peak memory.
3. A synthetic index of `--scale-chunks` chunks in Milvus Lite, in a fresh process: the chunks collection as
   rag/milvus.py creates it (dense vector with the index MilvusStore picks by size, chunk text analysed into a BM25
   sparse field, outlet and date), vectors from bench/scale.py's clustered mixture and text of words from a
   Zipf-distributed vocabulary. Build time (insert, flush, load), p50/p95 of 200 dense searches (nprobe as rag
   searches) and of 200 hybrid searches as rag sends them, recall@10 of the dense search against exact search
   (computed batch by batch with numpy while inserting), the process's memory (Milvus Lite runs inside it:
   client and Milvus in one figure) and the data's size on disk. Then which vector index types this Milvus Lite
   builds, tried on a small collection.

Usage: .venv/bin/python bench/milvus.py [--quick] [--scale-chunks N] [--json PATH]
"""
from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import beir
from corpora import CACHE, ROOT, beir_records, build_cached_index, load_line, machine_load, markdown_table, \
    percentile, query_vectors

from rag import embedding  # noqa: E402
from rag.answering import AnswerSettings  # noqa: E402
from rag.errors import RagError  # noqa: E402
from rag.index import BuildReport, IndexData, build_index, load_index, reuse_problem  # noqa: E402
from rag.milvus import IVF_NPROBE, Milvus, MilvusStore, create_chunks_collection  # noqa: E402
from rag.retrieval import retrieve  # noqa: E402
from rag.settings import Settings  # noqa: E402

K = 10
PASSAGES = 100  # chunks asked of retrieve per query: enough for 10 distinct documents
LATENCY_QUERIES = 50  # queries timed per set
TEST_SETS = ("time_news_1963", "scifact")
QUICK_DOCS = 30
NDCG_TOLERANCE = 0.01
SCALE_CHUNKS = 1_000_000
QUICK_SCALE_CHUNKS = 20_000
SCALE_QUERIES = 200
SCALE_WARMUP = 20
PREFIX = "bench"
INDEX_TYPES = ("FLAT", "IVF_FLAT", "IVF_SQ8", "IVF_PQ", "HNSW", "DISKANN", "SCANN", "GPU_IVF_FLAT")


class SeededStore(MilvusStore):
    """A MilvusStore whose first build reuses the rows of a local build (nothing is embedded again)."""

    def __init__(self, milvus: Milvus, local: Path) -> None:
        super().__init__(milvus)
        self.local = local

    def reusable(self, settings: Settings, report: BuildReport) -> tuple[IndexData | None, dict[str, str]]:
        previous = load_index(self.local)
        report.rebuilt_all = reuse_problem(previous.manifest, settings)
        if report.rebuilt_all:
            return None, {}
        # Every article is unchanged, which would leave the build where it is; a build whose near-duplicate settings
        # differ is written again from its rows without embedding anything, so say so.
        previous.manifest = {**previous.manifest, "near_duplicates": None}
        return previous, previous.content_hashes()


def milvus_copy(index_name: str) -> tuple[IndexData, float]:
    """The cached local build of bench/.cache/<index_name> in Milvus Lite (written once, then kept up to date);
    the seconds its writing took (0 when it was up to date)."""
    milvus = Milvus(str(CACHE / index_name / "milvus.db"), prefix=PREFIX)
    local = CACHE / index_name / "index"
    try:
        milvus.open()
        store = MilvusStore(milvus)
    except RagError:  # none yet, or of an older layout: written again from the local build's rows
        store = SeededStore(milvus, local)
    report = build_index(CACHE / index_name / "corpus", local, Settings(), progress=False, store=store)
    if report.embedded_chunks:
        print(f"{index_name}: {report.embedded_chunks} chunks embedded for Milvus", file=sys.stderr)
    index = milvus.open()
    return index, report.seconds if report.build else 0.0


def document_ranking(index: IndexData, passages: list) -> list[str]:
    ranked: dict[str, None] = {}
    for passage in passages:
        ranked.setdefault(index.catalog[int(index.chunk_article[passage.chunk_id])].id, None)
    return list(ranked)


def retrieval_side_by_side(name: str, quick: bool) -> dict:
    """nDCG@10, recall@10 and search p50/p95 of one test set through FAISS and through Milvus Lite."""
    dataset = beir.load(name)
    if quick:
        dataset = dataset.subset(QUICK_DOCS)
    index_name = f"{name}-quick" if quick else name
    _, local = build_cached_index(index_name, beir_records(dataset.docs, dataset.name))
    remote, write_s = milvus_copy(index_name)
    settings = AnswerSettings()
    ids = list(dataset.queries)
    texts = [dataset.queries[q] for q in ids]
    vectors_ = query_vectors(index_name, texts)
    paths = {"FAISS": local, "Milvus Lite": remote}
    runs: dict[str, dict[str, list[str]]] = {path: {} for path in paths}
    timings: dict[str, list[float]] = {path: [] for path in paths}
    for text in texts[:3]:  # warm-up
        for index in paths.values():
            retrieve(index, text, embedding.embed_query(text), K, None, settings.candidates, settings.fusion)
    for text in texts[:LATENCY_QUERIES]:  # timed as bench/retrieval.py times a search: embedding included
        for path, index in paths.items():
            started = time.perf_counter()
            retrieve(index, text, embedding.embed_query(text), K, None, settings.candidates, settings.fusion)
            timings[path].append((time.perf_counter() - started) * 1000)
    for qid, text, vector in zip(ids, texts, vectors_):
        for path, index in paths.items():
            passages = retrieve(index, text, vector, PASSAGES, None, settings.candidates, settings.fusion)
            runs[path][qid] = document_ranking(index, passages)
    out: dict = {"dataset": name, "queries": len(ids), "timed_queries": len(timings["FAISS"]),
                 "chunks": len(local.chunk_table), "milvus_write_s": write_s}
    for path in paths:
        scores = beir.evaluate(runs[path], dataset.qrels, K)
        out[path] = {**scores, "p50_ms": percentile(timings[path], 50), "p95_ms": percentile(timings[path], 95)}
    out["ndcg_difference"] = out["Milvus Lite"][f"ndcg@{K}"] - out["FAISS"][f"ndcg@{K}"]
    out["same_top_document"] = sum(runs["FAISS"][q][:1] == runs["Milvus Lite"][q][:1] for q in ids) / len(ids)
    remote.close()
    return out


def ask_side_by_side(quick: bool) -> dict:
    """/ask p50/p95 of `rag serve` on the seed corpus, FAISS and Milvus Lite, asked in turn."""
    import httpx

    from latency import WARM_UP, free_port, memory_kb, questions, start_server, summary

    index_dir = (CACHE / "latency" / "index").resolve()
    build_index(ROOT / "corpus", index_dir, Settings(), progress=False)
    database = CACHE / "milvus-seed" / "seed.db"
    rag = Path(sys.executable).parent / "rag"
    done = subprocess.run([str(rag), "index", "--corpus", str(ROOT / "corpus"), "--milvus", str(database), "-q"],
                          cwd=ROOT, capture_output=True, text=True)
    if done.returncode not in (0, 3):
        raise RuntimeError(f"rag index --milvus failed: {done.stderr.strip()}")
    texts = questions(20 if quick else 100)
    servers = {}
    results: dict = {"questions": len(texts)}
    logs = {path: open(CACHE / "milvus-seed" / f"server-{slug}.log", "w")
            for path, slug in (("FAISS", "faiss"), ("Milvus Lite", "milvus"))}
    try:
        for path, options in (("FAISS", []), ("Milvus Lite", ["--milvus", str(database)])):
            port = free_port()
            started = time.perf_counter()
            servers[path] = (start_server(index_dir, port, logs[path], options), port)
            results[path] = {"start_s": time.perf_counter() - started}
        clients = {path: httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
                   for path, (_, port) in servers.items()}
        timings: dict[str, list[float]] = {path: [] for path in servers}
        quotes_agree = 0
        for number, text in enumerate(texts[:WARM_UP] + texts):
            replies = {}
            for path, client in clients.items():
                started = time.perf_counter()
                response = client.post("/ask", json={"question": text})
                elapsed = (time.perf_counter() - started) * 1000
                response.raise_for_status()
                replies[path] = [a.get("quote") for a in response.json().get("answers", [])][:1]
                if number >= WARM_UP:
                    timings[path].append(elapsed)
            quotes_agree += number >= WARM_UP and replies["FAISS"] == replies["Milvus Lite"]
        for path, (server, _) in servers.items():
            results[path].update(summary(timings[path]))
            results[path]["peak_rss_mb"] = memory_kb(server.pid, "VmHWM") / 1024
        results["same_top_quote"] = quotes_agree / len(texts)
        for client in clients.values():
            client.close()
    finally:
        for server, _ in servers.values():
            server.terminate()
            server.wait(timeout=30)
        for log in logs.values():
            log.close()
    return results


def memory_mb() -> dict[str, float]:
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return {"rss_mb": int(status["VmRSS"].split()[0]) / 1024, "peak_mb": int(status["VmHWM"].split()[0]) / 1024}


def synthetic_scale(n: int, directory: Path) -> dict:
    """Build and search an n-chunk chunks collection in Milvus Lite under `directory` (run in a fresh process)."""
    from pymilvus import AnnSearchRequest, MilvusClient, WeightedRanker

    from scale import Mixture

    rng = np.random.default_rng(20)
    mixture = Mixture.make(rng)
    vocabulary = np.array(["".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), rng.integers(3, 10)))
                           for _ in range(20_000)])
    zipf = 1.0 / np.arange(1, len(vocabulary) + 1)
    zipf /= zipf.sum()
    queries = mixture.sample(SCALE_QUERIES + SCALE_WARMUP, rng)
    query_texts = [" ".join(rng.choice(vocabulary[:2_000], 5)) for _ in queries]
    out: dict = {"chunks": n, "memory_start": memory_mb()}
    uri = str(directory / "scale.db")
    milvus = Milvus(uri, prefix=PREFIX)
    client = MilvusClient(uri)
    index_type, metric, params = MilvusStore(milvus)._dense_index(n)
    out["index"] = {"type": index_type, "params": params, "nprobe": IVF_NPROBE}
    create_chunks_collection(client, "chunks", 384, (index_type, metric, params))  # as rag writes it

    best_scores = np.full((len(queries), K), -np.inf, dtype=np.float32)
    best_ids = np.zeros((len(queries), K), dtype=np.int64)
    inserting = 0.0
    started = time.perf_counter()
    batch = 1_000  # rag/milvus.py's INSERT_BATCH
    for lo in range(0, n, batch):
        rows = min(batch, n - lo)
        chunk_vectors = mixture.sample(rows, rng)
        words = rng.choice(vocabulary, (rows, 50), p=zipf)
        data = [{"id": lo + i, "article": (lo + i) // 8, "start": 0, "end": 300, "first": 0, "last": 3,
                 "text": " ".join(words[i]), "dense": chunk_vectors[i].tolist(), "source": f"outlet {i % 20}",
                 "published": 20250101 + i % 28} for i in range(rows)]
        step = time.perf_counter()
        client.insert("chunks", data)
        inserting += time.perf_counter() - step
        scores = queries @ chunk_vectors.T  # exact search, batch by batch
        merged_scores = np.concatenate([best_scores, scores], axis=1)
        merged_ids = np.concatenate([best_ids, np.broadcast_to(np.arange(lo, lo + rows), scores.shape)], axis=1)
        keep = np.argsort(-merged_scores, axis=1)[:, :K]
        best_scores, best_ids = np.take_along_axis(merged_scores, keep, 1), np.take_along_axis(merged_ids, keep, 1)
        if lo and lo % 100_000 == 0:
            print(f"  {lo:,} chunks inserted, {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    out["insert_s"] = inserting
    step = time.perf_counter()
    client.flush("chunks")
    client.load_collection("chunks")
    out["index_built"] = wait_for_index(directory / "scale.db", "chunks", timeout=3_600)
    out["flush_load_s"] = time.perf_counter() - step  # until every segment has its dense index
    out["build_s"] = time.perf_counter() - started  # data generation and exact search included
    out["memory_built"] = memory_mb()

    dense_params = {"metric_type": "IP", "params": {"nprobe": IVF_NPROBE}}
    dense_ms, hybrid_ms, found = [], [], []
    first_search = time.perf_counter()
    for number, (vector, text) in enumerate(zip(queries, query_texts)):
        step = time.perf_counter()
        hits = client.search("chunks", [vector.tolist()], anns_field="dense", limit=K, search_params=dense_params,
                             output_fields=["id"])[0]
        elapsed = (time.perf_counter() - step) * 1000
        if number == 0:
            out["first_search_s"] = time.perf_counter() - first_search
        requests = [AnnSearchRequest([vector.tolist()], "dense", dense_params, 200),
                    AnnSearchRequest([text], "sparse", {"metric_type": "BM25"}, 200)]
        step = time.perf_counter()
        # Raw scores weighted as rag weighs them (the weights' values do not change the work).
        client.hybrid_search("chunks", requests, WeightedRanker(0.5, 0.02, norm_score=False), limit=200,
                             output_fields=["id"])
        hybrid_elapsed = (time.perf_counter() - step) * 1000
        if number >= SCALE_WARMUP:
            dense_ms.append(elapsed)
            hybrid_ms.append(hybrid_elapsed)
            truth = set(best_ids[number].tolist())
            found.append(len(truth & {int(hit["id"]) for hit in hits}) / K)
    out.update({"dense_p50_ms": percentile(dense_ms, 50), "dense_p95_ms": percentile(dense_ms, 95),
                "hybrid_p50_ms": percentile(hybrid_ms, 50), "hybrid_p95_ms": percentile(hybrid_ms, 95),
                "recall_at_10": float(np.mean(found)), "memory_end": memory_mb(),
                "disk_mb": sum(f.stat().st_size for f in (directory / "scale.db").rglob("*") if f.is_file()) / 2**20})
    out["index_types"] = index_types(client, directory / "scale.db")
    return out


def wait_for_index(database: Path, collection: str, timeout: float, index_type: str = "*",
                   failures: list[str] | None = None) -> bool:
    """Whether every data segment of the collection got its dense index within `timeout` s. Milvus Lite builds
    indexes in a background thread after a flush (its describe_index always says Finished), so this looks for
    the index files beside the segments (`<segment>.dense.<type>.idx`), and gives up at a logged failure."""
    partition = database / "collections" / collection / "partitions" / "_default"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not failures:
        segments = {p.name.split(".")[0] for p in (partition / "data").glob("*.parquet")}
        indexed = {p.name.split(".")[0] for p in (partition / "indexes").glob(f"*.dense.{index_type}.idx")}
        if segments and segments <= indexed:
            return True
        time.sleep(0.5)
    return False


class _Failures(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        error = record.exc_info[1] if record.exc_info else None
        self.messages.append(" ".join(str(error or record.getMessage()).split())[:160])


def index_types(client, database: Path) -> dict[str, str]:
    """Which dense index types this Milvus Lite builds: 'yes', or what it logged when building failed."""
    from pymilvus import DataType

    failures = _Failures()
    logging.getLogger("milvus_lite").addHandler(failures)

    rng = np.random.default_rng(3)
    data = rng.standard_normal((2_000, 384)).astype(np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    params = {"IVF_FLAT": {"nlist": 16}, "IVF_SQ8": {"nlist": 16}, "IVF_PQ": {"nlist": 16, "m": 16, "nbits": 8},
              "HNSW": {"M": 16, "efConstruction": 64}, "DISKANN": {}, "SCANN": {"nlist": 16},
              "GPU_IVF_FLAT": {"nlist": 16}}
    found = {}
    for index_type in INDEX_TYPES:
        name = f"probe_{index_type.lower()}"
        try:
            schema = client.create_schema(auto_id=False)
            schema.add_field("id", DataType.INT64, is_primary=True)
            schema.add_field("dense", DataType.FLOAT_VECTOR, dim=384)
            index_params = client.prepare_index_params()
            index_params.add_index("dense", index_type=index_type, metric_type="IP",
                                   params=params.get(index_type, {}))
            client.create_collection(name, schema=schema, index_params=index_params)
            client.insert(name, [{"id": i, "dense": v.tolist()} for i, v in enumerate(data)])
            failures.messages.clear()
            client.flush(name)
            if wait_for_index(database, name, 30, "*", failures.messages):
                found[index_type] = "yes"
            else:
                found[index_type] = "no: " + (failures.messages[0] if failures.messages else "no index within 30 s")
        except Exception as error:  # what Milvus Lite says is the result
            message = str(getattr(error, "message", "") or error)
            found[index_type] = "no: " + " ".join(message.split())[:160]
        finally:
            try:
                client.drop_collection(name)
            except Exception:
                pass
    return found


def scale_in_fresh_process(n: int) -> dict:
    """synthetic_scale in a new process, so its memory figures are its own."""
    with tempfile.TemporaryDirectory(dir=CACHE, prefix="milvus-scale-") as directory:
        out = Path(directory) / "scale.json"
        done = subprocess.run([sys.executable, __file__, "--scale-only", str(n), "--json", str(out)], cwd=ROOT)
        if done.returncode != 0:
            raise RuntimeError(f"the {n:,}-chunk Milvus Lite run failed (exit status {done.returncode})")
        return json.loads(out.read_text())


def markdown(results: dict) -> str:
    lines = ["## Milvus beside the FAISS path (bench/milvus.py)", ""]
    rows = []
    for r in results["retrieval"]:
        for path in ("FAISS", "Milvus Lite"):
            p = r[path]
            rows.append([r["dataset"], path, r["queries"], p[f"ndcg@{K}"], p[f"recall@{K}"], p["p50_ms"], p["p95_ms"]])
    lines += ["Document retrieval with the answerer's defaults through `rag.retrieval.retrieve`: FAISS and BM25 fused "
              "in this process, or one `hybrid_search` fused in Milvus (WeightedRanker over raw scores, BM25's "
              "weighted by the question's idf; see bench/milvus_fusion.py). Search time includes the "
              "query's embedding and the passages' article texts read from Milvus (by primary key, a query's all at "
              f"once, 256 cached); the two paths are timed query by query in turn, on the first "
              f"{LATENCY_QUERIES} queries of each set.", "",
              markdown_table(["dataset", "index", "queries", f"nDCG@{K}", f"recall@{K}", "p50 ms", "p95 ms"], rows), ""]
    lines += [f"nDCG@{K} difference (Milvus - FAISS): " + ", ".join(
        f"{r['dataset']} {r['ndcg_difference']:+.4f} (same top document for {100 * r['same_top_document']:.0f}% of "
        f"queries)" for r in results["retrieval"]) + f"; target within {NDCG_TOLERANCE}.", ""]
    ask = results["ask"]
    lines += [f"`/ask` on the seed corpus, `rag serve --index` and `rag serve --milvus seed.db` asked the same "
              f"{ask['questions']} questions in turn, one request at a time:", "",
              markdown_table(["server", "p50 ms", "p95 ms", "mean ms", "start s", "peak RSS MB"],
                             [[path, ask[path]["p50_ms"], ask[path]["p95_ms"], ask[path]["mean_ms"],
                               ask[path]["start_s"], ask[path]["peak_rss_mb"]] for path in ("FAISS", "Milvus Lite")]),
              "", f"Same top quote from both: {100 * ask['same_top_quote']:.0f}% of the questions.", ""]
    s = results.get("scale")
    if s:
        lines += [f"### A synthetic {s['chunks']:,}-chunk index in Milvus Lite", "",
                  f"The chunks collection as rag writes it (dense `{s['index']['type']}` "
                  f"{json.dumps(s['index']['params'])}, searched with nprobe {s['index']['nprobe']}; BM25 over 50 "
                  "words a chunk); 200 queries after 20 warm-up ones, one at a time. Memory is the one process's: "
                  "Milvus Lite serves inside it.", "",
                  markdown_table(["measure", "value"], [
                      ["build s (insert, flush, load; data generation included)", s["build_s"]],
                      ["of which insert s", s["insert_s"]],
                      ["of which flush, load and index s" + ("" if s["index_built"] else " (index not built!)"),
                       s["flush_load_s"]],
                      ["first search s", s["first_search_s"]],
                      ["dense search p50 / p95 ms", f"{s['dense_p50_ms']:.1f} / {s['dense_p95_ms']:.1f}"],
                      ["hybrid search (dense + BM25, 200 each) p50 / p95 ms",
                       f"{s['hybrid_p50_ms']:.1f} / {s['hybrid_p95_ms']:.1f}"],
                      [f"dense recall@{K} vs exact", s["recall_at_10"]],
                      ["process RSS after build / at the end MB",
                       f"{s['memory_built']['rss_mb']:,.0f} / {s['memory_end']['rss_mb']:,.0f}"],
                      ["process peak RSS MB (start: %.0f)" % s["memory_start"]["rss_mb"], s["memory_end"]["peak_mb"]],
                      ["data on disk MB", s["disk_mb"]]]), "",
                  "Dense index types this Milvus Lite builds (tried on 2,000 vectors): " + "; ".join(
                      f"{t} {v}" for t, v in s["index_types"].items()) + ".", ""]
    else:
        lines += ["The synthetic scale run was skipped (`--scale-chunks 0`).", ""]
    lines += ["What Milvus Lite cannot do that a Milvus server can: one process opens a `.db` at a time (a second gets "
              "'Open local milvus failed'), so replicas cannot share it and `rag index` cannot write while `rag serve` "
              "reads; data, indexes and searches live in that one process's memory and CPU, so the size it holds is "
              "bounded by one machine; the index types it refuses above (on a server DiskANN keeps an index larger "
              "than memory on disk; GPU indexes) and a distributed, replicated deployment need a server or cluster.",
              "", load_line(results["machine"])]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help=f"first {QUICK_DOCS} documents of each set, 20 questions, {QUICK_SCALE_CHUNKS:,} chunks")
    parser.add_argument("--scale-chunks", type=int, default=None,
                        help=f"chunks of the synthetic Milvus Lite index (0 skips it)  [default: {SCALE_CHUNKS:,}, "
                             f"--quick {QUICK_SCALE_CHUNKS:,}]")
    parser.add_argument("--scale-only", type=int, help=argparse.SUPPRESS)  # the fresh process of part 3
    parser.add_argument("--json", type=Path, help="save the results here")
    args = parser.parse_args()
    if args.scale_only is not None:
        result = synthetic_scale(args.scale_only, args.json.parent)
        args.json.write_text(json.dumps(result, indent=1))
        return
    if args.scale_chunks is not None and args.scale_chunks < 0:
        parser.error(f"--scale-chunks must be >= 0, got {args.scale_chunks}")
    chunks = args.scale_chunks if args.scale_chunks is not None else \
        (QUICK_SCALE_CHUNKS if args.quick else SCALE_CHUNKS)
    results: dict = {"machine": machine_load(), "quick": args.quick}
    embedding.embed_query("warm up")
    results["retrieval"] = [retrieval_side_by_side(name, args.quick) for name in TEST_SETS]
    results["ask"] = ask_side_by_side(args.quick)
    results["scale"] = scale_in_fresh_process(chunks) if chunks else None
    print(markdown(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
