"""Faults injected into the index under a running server, and what the server and `rag index` do about each.

The seed articles (the repository's corpus/) are copied to bench/.cache/faults/ and indexed; `rag serve` serves
them on a free port while one client asks /ask and /healthz back to back for the whole run, counting every reply
that is not 200 (and every connection error). Each fault is then injected in turn:

- garbage bytes in CURRENT;
- a new build (a copy of the served one, switched to through CURRENT as `rag index` would) whose manifest.json is
  truncated, whose chunks.npy is cut short, whose chunks.faiss holds random bytes, whose texts.bin is truncated, or
  whose chunk_vectors.npy is truncated;
- an index directory that cannot be written (`chattr +i`, or `chmod a-w` when not root) while an article waits to
  be indexed;
- `kill -9` of a `rag index` while it embeds a new article, and while it writes the new build.

For each: what the server did (read from /healthz and /readyz a moment later, and how often its log names the
fault), what `rag index` did next (exit status and its one line), whether the server then served the new build,
and how many requests failed while the fault lasted (the target: 0). Last, a server started with only a damaged
build must answer 503 with the reason.

Usage: .venv/bin/python bench/faults.py [--quick] [--json PATH]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx

from corpora import CACHE, ROOT, markdown_table
from latency import free_port, start_server

RAG = Path(sys.executable).parent / "rag"
WORK = CACHE / "faults"
QUESTIONS = ["How many minutes did the phone talks last?", "Where will Ishiba and Lee meet?",
             "Who is the president of South Korea?"]
SETTLE_S = 2.5  # the server looks for a new build every second; this leaves it time to try one
NEW_ARTICLE = ("---\ntitle: Lee visits Tokyo\nsource: Kyodo News\npublished: 2025-06-20\n---\n"
               "South Korean President Lee Jae-myung arrived in Tokyo on a rainy Friday for a two-day visit {n}.\n")


class Asker:
    """Asks /ask and /healthz back to back in a thread; tallies replies that are not 200 under the current fault."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.fault = "start"
        self.requests: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()
        self.failure_examples: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "Asker":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=120) as client:
            n = 0
            while not self._stop.is_set():
                fault = self.fault
                for method, path, body in (("POST", "/ask", {"question": QUESTIONS[n % len(QUESTIONS)]}),
                                           ("GET", "/healthz", None)):
                    try:
                        response = client.request(method, path, json=body)
                        failed = response.status_code != 200
                        what = f"{path} {response.status_code}: {response.text[:200]}"
                    except httpx.HTTPError as error:
                        failed, what = True, f"{path}: {type(error).__name__} {error}"
                    self.requests[fault] += 1
                    if failed:
                        self.failures[fault] += 1
                        self.failure_examples.setdefault(fault, what)
                n += 1


def served_build(index_dir: Path) -> Path:
    return index_dir / "builds" / (index_dir / "CURRENT").read_text().strip()


def truncate(path: Path, keep: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])


def damaged_copy(index_dir: Path, file_name: str, damage: Callable[[Path], None]) -> Callable[[], None]:
    """A fault: a copy of the served build with one file damaged, switched to as a new build would be."""
    def inject() -> None:
        name = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ") + "-fault"
        shutil.copytree(served_build(index_dir), index_dir / "builds" / name)
        damage(index_dir / "builds" / name / file_name)
        pointer = index_dir / ".CURRENT.fault"
        pointer.write_text(name + "\n")
        os.replace(pointer, index_dir / "CURRENT")
    return inject


def rag_index(corpus: Path, index_dir: Path) -> dict:
    """`rag index` as a user runs it: its exit status and what it said."""
    started = time.perf_counter()
    done = subprocess.run([str(RAG), "index", "--corpus", str(corpus), "--index", str(index_dir), "--quiet"],
                          capture_output=True, text=True, timeout=1800, cwd=ROOT)
    lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
    return {"exit": done.returncode, "lines": lines, "traceback": "Traceback" in done.stderr,
            "seconds": time.perf_counter() - started}


def kill_build(corpus: Path, index_dir: Path, when: str) -> dict:
    """Start `rag index` on a corpus with a new article and kill -9 it while it embeds ("embedding") or writes the
    build ("writing", as soon as its temporary directory appears)."""
    build = subprocess.Popen([str(RAG), "index", "--corpus", str(corpus), "--index", str(index_dir)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    deadline = time.monotonic() + 600
    killed = False
    while time.monotonic() < deadline and build.poll() is None:
        if when == "embedding":
            line = build.stderr.readline()
            ready = line.startswith("embedding ")
        else:
            ready = any((index_dir / "builds").glob(".tmp-*"))
        if ready:
            build.send_signal(signal.SIGKILL)
            killed = True
            break
        if when != "embedding":
            time.sleep(0.002)
    build.wait()
    build.stdout.close()
    build.stderr.close()
    return {"killed": killed, "exit": build.returncode,
            "left": sorted(p.name for p in (index_dir / "builds").glob(".tmp-*"))}


def make_unwritable(directory: Path) -> Callable[[], None] | None:
    """Make `directory` unwritable (root ignores permissions, so `chattr +i` then); returns how to undo it."""
    if os.geteuid() == 0:
        if shutil.which("chattr") and subprocess.run(["chattr", "+i", str(directory)]).returncode == 0:
            return lambda: subprocess.run(["chattr", "-i", str(directory)], check=True)
        return None
    mode = directory.stat().st_mode
    directory.chmod(0o555)
    return lambda: directory.chmod(mode)


def observe(base_url: str) -> dict:
    with httpx.Client(base_url=base_url, timeout=60) as client:
        ask = client.post("/ask", json={"question": QUESTIONS[0]})
        health = client.get("/healthz")
        ready = client.get("/readyz")
    detail = None
    if ask.status_code != 200:
        try:
            detail = ask.json().get("detail")
        except ValueError:
            detail = ask.text[:300]
    return {"ask": ask.status_code, "ask_detail": detail,
            "healthz": health.status_code, "health": health.json(), "readyz": ready.status_code,
            "ready": ready.json()}


def log_mentions(log_path: Path, start: int, needle: str) -> int:
    """How many lines the server logged since byte `start` that name `needle`."""
    with open(log_path, encoding="utf-8", errors="replace") as log:
        log.seek(start)
        return sum(needle in line for line in log)


def clip(text: str | None, width: int = 110) -> str:
    text = (text or "").replace(str(ROOT) + "/", "").replace("|", "/").replace("\n", " ")
    return text if len(text) <= width else text[:width - 1] + "…"


def why(message: str) -> str:
    """The reason in a damaged-index message ("the index build X is damaged (REASON): run ..."), else all of it."""
    found = re.search(r" is damaged \((.*)\)(: run|; rebuilt)", message)
    return found[1] if found else message


def run(quick: bool) -> dict:
    shutil.rmtree(WORK, ignore_errors=True)
    corpus, index_dir = WORK / "corpus", WORK / "index"
    shutil.copytree(ROOT / "corpus", corpus, ignore=shutil.ignore_patterns("README*", ".*"))
    first = rag_index(corpus, index_dir)
    if first["exit"] != 0:
        raise RuntimeError(f"rag index failed: {first['lines']}")
    faults: list[tuple[str, str, Callable[[], object]]] = [  # (fault, what the server log names, inject)
        ("garbage bytes in CURRENT", "CURRENT", lambda: (index_dir / "CURRENT").write_bytes(os.urandom(48))),
        ("new build: manifest.json truncated", "manifest.json",
         damaged_copy(index_dir, "manifest.json", lambda p: truncate(p, 0.5))),
        ("new build: chunks.npy cut short", "chunks.npy",
         damaged_copy(index_dir, "chunks.npy", lambda p: truncate(p, 0.9))),
        ("new build: chunks.faiss random bytes", "chunks.faiss",
         damaged_copy(index_dir, "chunks.faiss", lambda p: p.write_bytes(os.urandom(p.stat().st_size)))),
        ("new build: texts.bin truncated", "texts.bin",
         damaged_copy(index_dir, "texts.bin", lambda p: truncate(p, 0.9))),
        ("new build: chunk_vectors.npy truncated", "chunk_vectors.npy",
         damaged_copy(index_dir, "chunk_vectors.npy", lambda p: truncate(p, 0.5))),
        ("index directory not writable", "", lambda: None),
        ("kill -9 of rag index while embedding", "", lambda: None),
        ("kill -9 of rag index while writing the build", "", lambda: None),
    ]
    if quick:
        faults = [faults[0], faults[5], faults[7]]
    rows: list[dict] = []
    port = free_port()
    log_path = WORK / "server.log"
    with open(log_path, "w") as log:
        server = start_server(index_dir, port, log)
        base_url = f"http://127.0.0.1:{port}"
        try:
            with Asker(base_url) as asker:
                for n, (fault, needle, inject) in enumerate(faults):
                    asker.fault = fault
                    log.flush()
                    log_start = log_path.stat().st_size
                    good = observe(base_url)["health"]["build"]
                    row: dict = {"fault": fault, "good_build": good}
                    (corpus / f"added-{n}.md").write_text(NEW_ARTICLE.format(n=n))  # something for rag index to do
                    undo = None
                    if fault == "index directory not writable":
                        undo = make_unwritable(index_dir)
                        if undo is None:
                            row["skipped"] = "chattr +i is not available"
                            rows.append(row)
                            continue
                    elif fault.startswith("kill -9"):
                        row["kill"] = kill_build(corpus, index_dir, "embedding" if "embedding" in fault else "writing")
                    else:
                        inject()
                    time.sleep(SETTLE_S)
                    row["during"] = observe(base_url)
                    row["logged"] = log_mentions(log_path, log_start, needle) if needle else None
                    row["rag_index"] = rag_index(corpus, index_dir)
                    if undo is not None:
                        undo()
                        row["rag_index_after_undo"] = rag_index(corpus, index_dir)
                    time.sleep(SETTLE_S)
                    row["after"] = observe(base_url)
                    row["after_current"] = served_build(index_dir).name
                    row["builds_left"] = sorted(p.name for p in (index_dir / "builds").iterdir())
                    rows.append(row)
                asker.fault = "end"
            for row in rows:
                row["requests"] = asker.requests[row["fault"]]
                row["failed"] = asker.failures[row["fault"]]
                row["failure_example"] = asker.failure_examples.get(row["fault"])
            server_alive = server.poll() is None
        finally:
            server.terminate()
            server.wait(timeout=30)
    return {"rows": rows, "server_alive": server_alive, "no_good_build": no_good_build(index_dir)}


def no_good_build(index_dir: Path) -> dict:
    """A server started on an index whose only build is damaged: 503 with the reason, and /healthz 200."""
    lone = WORK / "damaged-only"
    shutil.rmtree(lone, ignore_errors=True)
    (lone / "builds").mkdir(parents=True)
    build = served_build(index_dir)
    shutil.copytree(build, lone / "builds" / build.name)
    truncate(lone / "builds" / build.name / "chunk_vectors.npy", 0.5)
    (lone / "CURRENT").write_text(build.name + "\n")
    port = free_port()
    rag_serve = subprocess.Popen([str(RAG), "serve", "--index", str(lone), "--port", str(port)], cwd=ROOT,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.25)
        return observe(f"http://127.0.0.1:{port}")
    finally:
        rag_serve.terminate()
        rag_serve.wait(timeout=30)


def server_did(row: dict) -> str:
    if "skipped" in row:
        return f"not run: {row['skipped']}"
    during, after = row["during"], row["after"]
    health = during["health"]
    kept = "kept serving its build" if health["build"] == row["good_build"] else f"serves {health['build']}"
    said = f"/healthz {during['healthz']} {health['status']}"
    if health.get("reason"):
        said += f": \"{clip(why(health['reason']), 100)}\""
    logged = "" if row["logged"] is None else f"; logged {row['logged']}×"
    switched = "then served the new build" if after["health"]["build"] == row["after_current"] else \
        f"then served {after['health']['build']}, not {row['after_current']}"
    return (f"{kept}, /ask {during['ask']}; {said}; /readyz {during['readyz']}{logged}; {switched} "
            f"(/healthz {after['health']['status']})")


def index_did(row: dict) -> str:
    if "skipped" in row:
        return ""
    parts = []
    if "kill" in row:
        kill = row["kill"]
        parts.append(("killed" if kill["killed"] else f"finished before the kill (exit {kill['exit']})")
                     + (f", leaving {', '.join(kill['left'])}" if kill["left"] else ""))
    runs = [row["rag_index"]] + ([row["rag_index_after_undo"]] if "rag_index_after_undo" in row else [])
    for i, result in enumerate(runs):
        said = [f"rebuilt from the corpus (previous build unreadable: {why(line)})"
                if line.startswith("rebuilt everything") else line
                for line in result["lines"] if line.startswith(("rebuilt everything", "Error", "skipped"))]
        said = said or result["lines"][-1:]
        text = "; ".join(clip(line, 150) for line in said)
        prefix = "then, writable again: " if i else ("next `rag index`: " if "kill" in row else "")
        parts.append(f"{prefix}exit {result['exit']}{', TRACEBACK' if result['traceback'] else ''}: {text}")
    if "kill" in row:
        parts.append("temporary builds left: " + (", ".join(n for n in row["builds_left"] if n.startswith("."))
                                                  or "none"))
    return "; ".join(parts)


def markdown(results: dict) -> str:
    rows = results["rows"]
    table = markdown_table(
        ["fault", "what the server did", "what `rag index` did", "requests failed"],
        [[row["fault"], server_did(row), index_did(row),
          "" if "skipped" in row else f"{row['failed']} of {row['requests']}"] for row in rows])
    lone = results["no_good_build"]
    failed = sum(row.get("failed", 0) for row in rows)
    lines = [
        "## Faults: a damaged index under a running server (bench/faults.py)", "",
        "`rag serve` on the seed corpus while one client asks /ask and /healthz back to back; each fault is injected "
        "into its index directory, the server is read a moment later, then `rag index` runs. \"Requests failed\" "
        "counts every reply that was not 200 while the fault lasted (and connection errors).", "",
        table, "",
        f"Requests failed in all: {failed}; the server was {'still' if results['server_alive'] else 'NOT'} running "
        "at the end.",
        "",
        f"A server started with only a damaged build (chunk_vectors.npy truncated): /ask {lone['ask']} "
        f"(\"{clip(lone['ask_detail'], 250)}\"), /readyz {lone['readyz']}, "
        f"/healthz {lone['healthz']} {lone['health']['status']}.",
    ]
    examples = [f"- {row['fault']}: {row['failure_example']}" for row in rows if row.get("failure_example")]
    if examples:
        lines += ["", "First failure under each fault:", *examples]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="three of the faults only")
    parser.add_argument("--json", type=Path, help="save the results here")
    args = parser.parse_args()
    results = run(args.quick)
    results["requests_failed"] = sum(row.get("failed", 0) for row in results["rows"])
    print(markdown(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
