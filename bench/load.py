"""Serving under load: what 8, 32 and 100 concurrent clients get from `rag serve` on the seed corpus.

The repository's corpus/ is indexed into a temporary directory and served by `rag serve --index ... --port
...` on a free port with its default limits (web/admission.py: the CPU count answered at once, a line of
what they answer in 2 s, 503 with Retry-After past it). For each number of clients, that many threads,
each on its own keep-alive connection, ask /ask back to back for `--seconds` (15 s; the dev questions and
variants of them, as bench/latency.py asks). A client told 503 waits its Retry-After, as a well-behaved
client does. Meanwhile one more client, in a process of its own, asks /healthz every 50 ms.

Per level: answered requests per second, p50/p95/p99 of the answered requests' time, the 503s and the
p99 of their time (they should come at once), errors (any other status, timeouts, connection errors), the
server's resident memory after the level (VmRSS), and /healthz p50/p99 under that load. A first level with
no clients times /healthz alone: on a shared machine, the baseline the others compare with.

Then the same levels with the bound lifted (`--max-active 10000`), i.e. every request admitted as before
issue 18 item 13 (skipped with --quick or --bounded-only).

Usage: .venv/bin/python bench/load.py [--quick] [--seconds S] [--bounded-only] [--json PATH]
"""
from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event as EventType
from pathlib import Path

import httpx

from corpora import ROOT, load_line, machine_load, percentile
from latency import WARM_UP, free_port, memory_kb, questions, start_server

from rag.index import build_index  # noqa: E402
from rag.settings import Settings  # noqa: E402
from web.admission import AdmissionLimits  # noqa: E402

LEVELS = (0, 8, 32, 100)  # 0: /healthz alone, the machine's own baseline
SECONDS, QUICK_SECONDS = 15.0, 2.0
HEALTH_INTERVAL_S = 0.05
CLIENT_TIMEOUT_S = 120.0
UNBOUNDED = ["--max-active", "10000"]  # every request admitted: the server as it was without admission control


@dataclass
class Tally:
    """What the clients of one level saw."""

    answered_ms: list[float] = field(default_factory=list)
    busy_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def ask_loop(base_url: str, texts: list[str], offset: int, deadline: float, tally: Tally) -> None:
    """One client asking back to back until the deadline; after a 503 it waits the Retry-After."""
    with httpx.Client(base_url=base_url, timeout=CLIENT_TIMEOUT_S) as client:
        for question in itertools.islice(itertools.cycle(texts), offset, None):
            if time.perf_counter() >= deadline:
                return
            started = time.perf_counter()
            try:
                response = client.post("/ask", json={"question": question})
            except httpx.HTTPError as error:
                with tally.lock:
                    tally.errors.append(type(error).__name__)
                continue
            elapsed_ms = (time.perf_counter() - started) * 1000
            with tally.lock:
                if response.status_code == 200:
                    tally.answered_ms.append(elapsed_ms)
                elif response.status_code == 503:
                    tally.busy_ms.append(elapsed_ms)
                else:
                    tally.errors.append(f"HTTP {response.status_code}")
            if response.status_code == 503:
                retry_after = float(response.headers.get("retry-after", "1"))
                time.sleep(max(0.0, min(retry_after, deadline - time.perf_counter())))


def health_probe(base_url: str, stop: EventType, results: Queue) -> None:
    """/healthz every HEALTH_INTERVAL_S until stopped; in its own process, so the load clients' threads do not
    slow its own timing. Puts (latencies in ms, failures) on `results`."""
    latencies: list[float] = []
    failures = 0
    with httpx.Client(base_url=base_url, timeout=CLIENT_TIMEOUT_S) as client:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                ok = client.get("/healthz").status_code == 200
            except httpx.HTTPError:
                ok = False
            if ok:
                latencies.append((time.perf_counter() - started) * 1000)
            else:
                failures += 1
            stop.wait(HEALTH_INTERVAL_S)
    results.put((latencies, failures))


def run_level(base_url: str, texts: list[str], clients: int, seconds: float, server_pid: int) -> dict:
    """`clients` threads asking for `seconds` while /healthz is probed; the level's row."""
    tally = Tally()
    processes = multiprocessing.get_context("fork")  # started before the client threads
    stop, health_results = processes.Event(), processes.Queue()
    prober = processes.Process(target=health_probe, args=(base_url, stop, health_results))
    prober.start()
    started = time.perf_counter()
    deadline = started + seconds
    threads = [threading.Thread(target=ask_loop, args=(base_url, texts, i * 7, deadline, tally))
               for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    time.sleep(max(0.0, deadline - time.perf_counter()))  # with no clients, the probe alone for the time
    elapsed = time.perf_counter() - started
    stop.set()
    health, health_failures = health_results.get(timeout=60)
    prober.join()
    answered, busy = tally.answered_ms, tally.busy_ms
    return {"clients": clients, "seconds": elapsed, "answered": len(answered),
            "requests_per_s": len(answered) / elapsed,
            "p50_ms": percentile(answered, 50), "p95_ms": percentile(answered, 95),
            "p99_ms": percentile(answered, 99), "max_ms": max(answered, default=float("nan")),
            "busy_503": len(busy), "busy_p99_ms": percentile(busy, 99),
            "errors": len(tally.errors), "error_kinds": sorted(set(tally.errors)),
            "rss_mb": memory_kb(server_pid, "VmRSS") / 1024,
            "healthz_n": len(health), "healthz_p50_ms": percentile(health, 50),
            "healthz_p99_ms": percentile(health, 99), "healthz_max_ms": max(health, default=float("nan")),
            "healthz_errors": health_failures}


def serve_levels(index_dir: Path, texts: list[str], seconds: float, options: list[str], log_path: Path) -> dict:
    """Start `rag serve` with these options, warm it up, run every level; the rows and the server's peak RSS."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with open(log_path, "w") as log:
        server = start_server(index_dir, port, log, options)
        try:
            with httpx.Client(base_url=base_url, timeout=CLIENT_TIMEOUT_S) as client:
                for question in texts[:WARM_UP]:
                    client.post("/ask", json={"question": question}).raise_for_status()
            rows = []
            for clients in LEVELS:
                rows.append(run_level(base_url, texts, clients, seconds, server.pid))
                time.sleep(1.0)
            peak_mb = memory_kb(server.pid, "VmHWM") / 1024
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
    return {"options": options, "levels": rows, "peak_rss_mb": peak_mb}


def table(rows: list[dict]) -> str:
    header = ["clients", "answered/s", "/ask p50 ms", "p95 ms", "p99 ms", "503s", "503 p99 ms", "errors",
              "RSS MB", "/healthz p50 ms", "/healthz p99 ms"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" for _ in header) + "|"]
    for r in rows:
        if not r["clients"]:
            lines.append(f"| 0 (/healthz alone) | | | | | | | | {r['rss_mb']:.0f} | {r['healthz_p50_ms']:.1f} | "
                         f"{r['healthz_p99_ms']:.1f} |")
            continue
        lines.append(f"| {r['clients']} | {r['requests_per_s']:.1f} | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} | "
                     f"{r['p99_ms']:.0f} | {r['busy_503']} | {r['busy_p99_ms']:.1f} | {r['errors']} | "
                     f"{r['rss_mb']:.0f} | {r['healthz_p50_ms']:.1f} | {r['healthz_p99_ms']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SECONDS:g} s per level, bounded only")
    parser.add_argument("--seconds", type=float, help=f"seconds of load per level (default {SECONDS:g})")
    parser.add_argument("--bounded-only", action="store_true", help="skip the run without the bound")
    parser.add_argument("--json", type=Path, help="save the results here")
    args = parser.parse_args()
    seconds = args.seconds or (QUICK_SECONDS if args.quick else SECONDS)
    texts = questions(100)
    limits = AdmissionLimits.from_settings(Settings())
    results: dict = {"machine": machine_load(), "seconds_per_level": seconds,
                     "limits": {"active": limits.active, "waiting": limits.waiting,
                                "retry_after_s": limits.retry_after_s}}
    with tempfile.TemporaryDirectory(prefix="rag-load-") as work:
        index_dir = Path(work) / "index"
        build_index(ROOT / "corpus", index_dir, Settings(), progress=False)
        results["bounded"] = serve_levels(index_dir, texts, seconds, [], Path(work) / "bounded.log")
        if not (args.quick or args.bounded_only):
            results["unbounded"] = serve_levels(index_dir, texts, seconds, UNBOUNDED, Path(work) / "unbounded.log")

    print("## Serving under load (bench/load.py)\n")
    print(f"`rag serve` on the seed corpus with its default limits on this machine: {limits.active} requests "
          f"answered at once, {limits.waiting} waiting, `Retry-After: {limits.retry_after_s}` past them. Each "
          f"level: that many clients asking /ask back to back for {seconds:g} s (a client told 503 waits its "
          "Retry-After), one more asking /healthz every 50 ms (0 clients: it alone). Times are the clients'; RSS is "
          "the server's after the level.\n")
    print(table(results["bounded"]["levels"]) + "\n")
    print(f"Peak RSS (VmHWM): {results['bounded']['peak_rss_mb']:.0f} MB.\n")
    if "unbounded" in results:
        print("The same without the bound (`rag serve --max-active 10000`: every request admitted, as before "
              "admission control):\n")
        print(table(results["unbounded"]["levels"]) + "\n")
    kinds = sorted({kind for run in ("bounded", "unbounded") for r in results.get(run, {}).get("levels", [])
                    for kind in r["error_kinds"]})
    if kinds:
        print(f"Errors seen: {', '.join(kinds)}.\n")
    print(load_line(results["machine"]))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
