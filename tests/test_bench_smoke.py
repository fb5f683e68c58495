"""`make bench` works: every benchmark runs on a tiny setting and the report is written (BENCH_QUICK=1)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EVAL = REPO.parent / "shared" / "eval"

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not EVAL.is_dir(), reason=f"the public evaluation data is not at {EVAL}; the benchmarks need it")]


def test_make_bench_runs_every_benchmark_on_a_tiny_setting() -> None:
    done = subprocess.run([sys.executable, "bench/run_all.py"], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "BENCH_QUICK": "1"}, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    report = (REPO / "bench" / ".cache" / "REPORT-quick.md").read_text()
    assert "## Targets" in report
    for section in ("## /ask latency", "## Serving under load", "## Answer quality", "## Dev questions",
                    "## Document retrieval", "## Peers", "## Fresh index", "## Incremental update",
                    "## Vector search at scale", "## Faults", "## Milvus"):
        assert section.lower() in report.lower(), section
    assert ".py failed**" not in report  # how run_all marks a benchmark that failed
