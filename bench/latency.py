"""Latency of answering a question: `/ask` over HTTP on the seed corpus, and `Pipeline.ask` in process.

The seed articles (the repository's corpus/) are indexed into bench/.cache/latency/index (incremental, so
reruns embed nothing). `rag serve --index ... --port ...` is started as a subprocess on a free port;
once /healthz says ok and a few warm-up requests have been answered:

- sequential: one request at a time over ~100 questions (the dev questions of shared/eval, cycled,
  with lower-cased, unpunctuated and reworded variants), p50/p95/mean of the client-side time;
- concurrent: 8 client threads, each sending its next request as soon as the last is answered, for
  ~15 s: completed requests per second and p50/p95 of each request;
- the server's peak resident memory (VmHWM of its process, which serves in-process: no workers).

Then the same questions through `Pipeline.ask` in this process, with its models warmed up.

`--index DIR` serves another built index instead (the questions stay the same), to see how latency
grows with the corpus.

Usage: .venv/bin/python bench/latency.py [--quick] [--index DIR] [--json PATH]
"""
from __future__ import annotations

import argparse
import itertools
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

import httpx

from corpora import CACHE, EVAL, ROOT, load_line, machine_load, markdown_table, percentile

from rag.index import build_index, load_index  # noqa: E402
from rag.pipeline import Pipeline  # noqa: E402
from rag.settings import Settings  # noqa: E402

WARM_UP = 5
CLIENTS = 8


def questions(n: int) -> list[str]:
    """n questions: the dev questions and variants of them, cycled."""
    base = [json.loads(line)["question"] for line in (EVAL / "dev_questions.jsonl").read_text().splitlines()
            if line.strip()]
    variants = base + [q.lower() for q in base] + [q.rstrip("?") for q in base] + [f"Tell me: {q}" for q in base]
    return list(itertools.islice(itertools.cycle(variants), n))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def memory_kb(pid: int, field: str) -> int:
    """A memory figure of /proc/<pid>/status in kB (VmHWM: peak resident set, VmRSS: current)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def summary(latencies_ms: list[float]) -> dict[str, float]:
    return {"n": len(latencies_ms), "p50_ms": percentile(latencies_ms, 50), "p95_ms": percentile(latencies_ms, 95),
            "mean_ms": sum(latencies_ms) / len(latencies_ms)}


def ask(client: httpx.Client, question: str) -> float:
    """One /ask request; its wall time in ms (a non-200 reply is an error)."""
    started = time.perf_counter()
    response = client.post("/ask", json={"question": question})
    elapsed = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    return elapsed


def start_server(index_dir: Path, port: int, log: TextIO, options: Sequence[str] = ()) -> subprocess.Popen:
    """`rag serve` (with more `options`) in a subprocess; returns once /healthz reports a loaded index."""
    rag = Path(sys.executable).parent / "rag"
    server = subprocess.Popen([str(rag), "serve", "--index", str(index_dir), "--port", str(port), *options],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"rag serve exited with {server.returncode}; its output: {log.name}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json().get("status") == "ok":
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    server.terminate()
    raise RuntimeError("rag serve did not become healthy within 300 s")


def concurrent_load(base_url: str, texts: list[str], seconds: float, clients: int) -> dict[str, float]:
    """`clients` threads asking back to back until the time is up."""
    latencies: list[float] = []
    errors: list[str] = []
    deadline = time.perf_counter() + seconds
    lock = threading.Lock()

    def client_loop(offset: int) -> None:
        with httpx.Client(base_url=base_url, timeout=120) as client:
            for q in itertools.islice(itertools.cycle(texts), offset, None):
                if time.perf_counter() >= deadline:
                    return
                try:
                    ms = ask(client, q)
                except httpx.HTTPError as error:
                    with lock:
                        errors.append(str(error))
                    continue
                with lock:
                    latencies.append(ms)

    started = time.perf_counter()
    threads = [threading.Thread(target=client_loop, args=(i * 7,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    return {"clients": clients, "seconds": elapsed, "requests": len(latencies), "errors": len(errors),
            "requests_per_s": len(latencies) / elapsed, **summary(latencies)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="20 questions, 3 s of concurrent load")
    parser.add_argument("--index", type=Path, help="serve this built index instead of the seed corpus' "
                        "(e.g. bench/.cache/scale1000/index from bench/indexing.py)")
    parser.add_argument("--json", type=Path, help="save the results here")
    args = parser.parse_args()
    n_questions, load_seconds = (20, 3.0) if args.quick else (100, 15.0)
    texts = questions(n_questions)

    index_dir = (args.index or CACHE / "latency" / "index").resolve()
    if args.index is None:
        build_index(ROOT / "corpus", index_dir, Settings(), progress=False)
    counts = load_index(index_dir).manifest["counts"]
    port = free_port()
    results: dict = {"machine": machine_load(), "index": str(index_dir), "articles": counts["articles"], "chunks": counts["chunks"]}
    with open(index_dir.parent / "server.log", "w") as log:
        started = time.perf_counter()
        server = start_server(index_dir, port, log)
        results["server_start_s"] = time.perf_counter() - started
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
                for q in texts[:WARM_UP]:
                    ask(client, q)
                results["rss_after_warm_up_mb"] = memory_kb(server.pid, "VmRSS") / 1024
                results["sequential"] = summary([ask(client, q) for q in texts])
            results["concurrent"] = concurrent_load(f"http://127.0.0.1:{port}", texts, load_seconds, CLIENTS)
            results["peak_rss_mb"] = memory_kb(server.pid, "VmHWM") / 1024
        finally:
            server.terminate()
            server.wait(timeout=30)

    pipeline = Pipeline(index_dir=index_dir)
    pipeline.warm_up()
    for q in texts[:WARM_UP]:
        pipeline.ask(q)
    in_process = []
    for q in texts:
        started = time.perf_counter()
        pipeline.ask(q)
        in_process.append((time.perf_counter() - started) * 1000)
    results["in_process"] = summary(in_process)

    seq, conc, local = results["sequential"], results["concurrent"], results["in_process"]
    shown = index_dir.relative_to(ROOT) if index_dir.is_relative_to(ROOT) else index_dir
    print(f"## /ask latency on {shown} ({results['articles']} articles, {results['chunks']} chunks)\n")
    print(markdown_table(
        ["measure", "requests", "req/s", "p50 ms", "p95 ms", "mean ms"],
        [["HTTP, one at a time", seq["n"], "", seq["p50_ms"], seq["p95_ms"], seq["mean_ms"]],
         [f"HTTP, {CLIENTS} concurrent clients ({conc['seconds']:.0f} s)", conc["requests"],
          conc["requests_per_s"], conc["p50_ms"], conc["p95_ms"], conc["mean_ms"]],
         ["Pipeline.ask in process", local["n"], "", local["p50_ms"], local["p95_ms"], local["mean_ms"]]]) + "\n")
    print(markdown_table(["server", "value"], [
        ["start until /healthz ok (s)", results["server_start_s"]],
        ["RSS after warm-up (MB)", results["rss_after_warm_up_mb"]],
        ["peak RSS, VmHWM (MB)", results["peak_rss_mb"]],
        ["errors under load", conc["errors"]]]) + "\n")
    print(load_line(results["machine"]))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
