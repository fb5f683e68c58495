"""`rag watch`: the index follows the corpus a few seconds after files change, skipped files are said and the
watcher goes on, and stopping never leaves CURRENT naming anything but a whole build."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from rag.cli import main
from rag.index import load_index
from rag.pipeline import Pipeline
from rag.settings import Settings
from rag.watch import CorpusWatcher, parse_interval, read_feed_list
from tests.conftest import REPO

pytestmark = pytest.mark.slow

BRIDGE = """---
title: Harbour town opens a glass footbridge
source: Coastal Courier
published: 2025-06-12
---
The town of Marrowby opened a glass footbridge across its harbour on Thursday.

The footbridge is {length} metres long and took four years to build. Mayor Elin Varga said that 3,000 people
crossed it on the first day.
"""
BRIDGE_QUESTION = "How long is the glass footbridge in Marrowby?"
ORCHARD = """---
title: Cider makers count a record apple harvest
source: Valley Ledger
published: 2025-06-13
---
Cider makers in the Brenn valley picked 48,000 tonnes of apples this season, a record for the region.

The cooperative's chair, Tomas Heal, said the warm spring had helped the orchards.
"""


def wait_for(condition: Callable[[], bool], timeout: float = 120.0,
             what: Callable[[], str] = lambda: "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what()}"
        time.sleep(0.05)


def top_answer(index_dir: Path, question: str) -> tuple[str, str]:
    """The article id and the quote of the best answer the index gives now."""
    reply = Pipeline(index_dir=index_dir).ask(question)
    assert reply.answers, question
    return reply.answers[0].article.id, reply.answers[0].quote


class Watching:
    """A watcher running in a thread over a copy of the seed corpus and its index, and the lines it said."""

    def __init__(self, corpus: Path, index_dir: Path, on_line: Callable[[str], None] | None = None) -> None:
        self.lines: list[str] = []
        self.on_line = on_line
        self.watcher = CorpusWatcher(corpus, index_dir, Settings(), delay_s=0.5, echo=self._echo)
        self.thread = threading.Thread(target=self.watcher.run, daemon=True)

    def _echo(self, line: str) -> None:
        self.lines.append(line)
        if self.on_line:
            self.on_line(line)

    def updates_after(self, count: int) -> None:
        wait_for(lambda: self.watcher.updates > count, what=lambda: f"update {count + 1}; said {self.lines}")

    def said(self, text: str) -> list[str]:
        return [line for line in self.lines if text in line]


@pytest.fixture
def seed_copy(tmp_path: Path, seed_corpus: Path, seed_index_dir: Path) -> tuple[Path, Path]:
    """The seed corpus and a copy of its session-wide index, so a watcher starts up to date without embedding."""
    index_dir = tmp_path / "index"
    shutil.copytree(seed_index_dir, index_dir)
    return seed_corpus, index_dir


@pytest.fixture
def watching(seed_copy: tuple[Path, Path]) -> Iterator[Watching]:
    running = Watching(*seed_copy)
    running.thread.start()
    running.updates_after(0)
    yield running
    running.watcher.stop.set()
    running.thread.join(timeout=120)
    assert not running.thread.is_alive()


def test_the_first_update_finds_the_index_up_to_date(watching: Watching) -> None:
    assert watching.said("index is up to date (5 articles)")


def test_a_new_file_and_then_a_changed_one_are_answered_from(watching: Watching) -> None:
    corpus, index_dir = watching.watcher.corpus_dir, watching.watcher.index_dir
    (corpus / "glass-footbridge.md").write_text(BRIDGE.format(length=212), encoding="utf-8")
    watching.updates_after(1)
    assert watching.said("1 added, 0 changed, 0 removed, 5 unchanged")
    article, quote = top_answer(index_dir, BRIDGE_QUESTION)
    assert article == "glass-footbridge" and "212 metres" in quote

    (corpus / "glass-footbridge.md").write_text(BRIDGE.format(length=340), encoding="utf-8")
    watching.updates_after(2)
    assert watching.said("0 added, 1 changed, 0 removed, 5 unchanged")
    article, quote = top_answer(index_dir, BRIDGE_QUESTION)
    assert article == "glass-footbridge" and "340 metres" in quote

    (corpus / "glass-footbridge.md").unlink()
    watching.updates_after(3)
    assert watching.said("0 added, 0 changed, 1 removed, 5 unchanged")
    assert "glass-footbridge" not in load_index(index_dir).article_index


def test_a_burst_of_changes_is_one_update(watching: Watching) -> None:
    corpus = watching.watcher.corpus_dir
    (corpus / "glass-footbridge.md").write_text(BRIDGE.format(length=212), encoding="utf-8")
    time.sleep(0.2)
    (corpus / "apple-harvest.md").write_text(ORCHARD, encoding="utf-8")
    watching.updates_after(1)
    time.sleep(1.5)
    assert watching.watcher.updates == 2
    assert watching.said("2 added, 0 changed, 0 removed, 5 unchanged")


def test_a_malformed_file_is_reported_once_and_the_watcher_keeps_going(watching: Watching) -> None:
    corpus, index_dir = watching.watcher.corpus_dir, watching.watcher.index_dir
    (corpus / "broken.md").write_text("A title without front matter\n\nSome text.\n", encoding="utf-8")
    watching.updates_after(1)
    assert len(watching.said("skipped broken.md: no YAML front matter")) == 1
    (corpus / "editor-temp.md").write_bytes(b"\x00\x01binary")  # binary: skipped with its reason too
    (corpus / "apple-harvest.md").write_text(ORCHARD, encoding="utf-8")
    watching.updates_after(2)
    assert len(watching.said("skipped broken.md")) == 1  # said when it first showed up, not at every update
    assert watching.said("skipped editor-temp.md: binary file")
    assert watching.said("1 added, 0 changed, 0 removed, 5 unchanged")
    article, quote = top_answer(index_dir, "How many tonnes of apples were picked in the Brenn valley?")
    assert article == "apple-harvest" and "48,000 tonnes" in quote
    assert watching.thread.is_alive()


def test_hidden_and_readme_files_do_not_start_an_update(watching: Watching) -> None:
    corpus = watching.watcher.corpus_dir
    (corpus / ".draft.md.swp").write_text("x", encoding="utf-8")
    (corpus / "README.md").write_text("About this corpus.\n", encoding="utf-8")
    time.sleep(2.0)
    assert watching.watcher.updates == 1


def test_a_failed_build_does_not_stop_the_watcher(watching: Watching, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk on fire")

    corpus = watching.watcher.corpus_dir
    monkeypatch.setattr("rag.watch.build_index", broken)
    (corpus / "apple-harvest.md").write_text(ORCHARD, encoding="utf-8")
    watching.updates_after(1)
    assert watching.said("update failed: disk on fire; the index served is unchanged")
    monkeypatch.undo()
    (corpus / "glass-footbridge.md").write_text(BRIDGE.format(length=212), encoding="utf-8")
    watching.updates_after(2)
    assert watching.said("2 added, 0 changed, 0 removed, 5 unchanged")


def test_a_stop_during_an_update_finishes_it_and_switches_to_a_whole_build(seed_copy: tuple[Path, Path]) -> None:
    corpus, index_dir = seed_copy
    stop_requested = threading.Event()

    def stop_when_updating(line: str) -> None:
        if "updating:" in line:
            running.watcher.stop.set()  # as Ctrl-C does, in the middle of the update
            stop_requested.set()

    running = Watching(corpus, index_dir, on_line=stop_when_updating)
    running.thread.start()
    running.updates_after(0)
    (corpus / "apple-harvest.md").write_text(ORCHARD, encoding="utf-8")
    running.thread.join(timeout=180)
    assert stop_requested.is_set() and not running.thread.is_alive()
    assert running.said("1 added, 0 changed, 0 removed, 5 unchanged")
    assert "apple-harvest" in load_index(index_dir).article_index


FIRST_UPDATE = "index is up to date|switched to build"  # the latter if this code's index differs from the session's


def start_rag_watch(corpus: Path, index_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "rag.cli", "watch", "--corpus", str(corpus), "--index",
                             str(index_dir), "--delay", "0.5", "--quiet"], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def read_until(process: subprocess.Popen, text: str, said: list[str], timeout: float = 180.0) -> None:
    """Read the process's lines into `said` until one holds `text` (one of them, `|`-separated)."""
    timer = threading.Timer(timeout, process.kill)
    timer.start()
    try:
        for line in process.stdout:
            said.append(line)
            if any(part in line for part in text.split("|")):
                return
    finally:
        timer.cancel()
    raise AssertionError(f"{text!r} never said; said: {''.join(said)}")


def test_ctrl_c_during_an_update_finishes_it_then_stops(seed_copy: tuple[Path, Path]) -> None:
    corpus, index_dir = seed_copy
    said: list[str] = []
    process = start_rag_watch(corpus, index_dir)
    try:
        read_until(process, FIRST_UPDATE, said)
        (corpus / "apple-harvest.md").write_text(ORCHARD, encoding="utf-8")
        read_until(process, "updating:", said)
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=180)
    finally:
        process.kill()
    said.append(output)
    assert process.returncode == 0, "".join(said)
    assert "stopping after the update in progress" in output
    assert "1 added, 0 changed, 0 removed, 5 unchanged" in output and output.rstrip().endswith("stopped")
    assert "apple-harvest" in load_index(index_dir).article_index


def test_a_second_ctrl_c_abandons_the_update_and_the_served_build_stays_whole(seed_copy: tuple[Path, Path]) -> None:
    corpus, index_dir = seed_copy
    served = (index_dir / "CURRENT").read_text()
    said: list[str] = []
    process = start_rag_watch(corpus, index_dir)
    try:
        read_until(process, FIRST_UPDATE, said)
        (corpus / "apple-harvest.md").write_text(ORCHARD, encoding="utf-8")
        read_until(process, "updating:", said)
        process.send_signal(signal.SIGINT)
        read_until(process, "stopping after the update in progress", said)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=180)
    finally:
        process.kill()
    said.append(output)
    assert process.returncode == 130, "".join(said)
    assert "update in progress was abandoned" in output
    index = load_index(index_dir)  # whichever build CURRENT names loads whole
    assert (index_dir / "CURRENT").read_text() == served or "apple-harvest" in index.article_index
    assert not list((index_dir / "builds").glob(".tmp-*"))


FEED = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel><title>Upland Post</title><link>https://upland.example/</link>
<description>News from the uplands</description>
<item><title>Ferry service to Skell island resumes</title><link>https://upland.example/news/skell-ferry</link>
<pubDate>Fri, 13 Jun 2025 09:00:00 +0000</pubDate><description>The Skell ferry is back.</description>
<content:encoded><![CDATA[<p>The ferry to Skell island resumed service on Friday after a six-week repair of its hull.</p>
<p>The operator said the crossing takes 55 minutes and runs four times a day.</p>]]></content:encoded></item>
<item><title>Undated notice</title><link>https://upland.example/news/notice</link>
<description>A notice that carries no date at all, so it cannot be placed in time.</description></item>
</channel></rss>
"""


@pytest.fixture
def feed_server() -> Iterator[str]:
    """A local HTTP server with one RSS feed at /feed.xml; anything else is a 404."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = FEED.encode() if self.path == "/feed.xml" else b"not here"
            self.send_response(200 if self.path == "/feed.xml" else 404)
            self.send_header("Content-Type", "application/rss+xml" if self.path == "/feed.xml" else "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_polled_feeds_are_written_into_the_corpus_and_answered_from(seed_copy: tuple[Path, Path],
                                                                   feed_server: str) -> None:
    corpus, index_dir = seed_copy
    lines: list[str] = []
    feeds = [f"{feed_server}/feed.xml", f"{feed_server}/gone.xml"]
    watcher = CorpusWatcher(corpus, index_dir, Settings(), delay_s=0.5, feeds=feeds, every_s=2, echo=lines.append)
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: watcher.updates >= 2, what=lambda: f"the feed's article indexed; said {lines}")
        wait_for(lambda: sum("feed.xml: " in line for line in lines) >= 2,
                 what=lambda: f"a second poll; said {lines}")
    finally:
        watcher.stop.set()
        thread.join(timeout=120)
    said = "\n".join(lines)
    assert "feed.xml: 1 added, 0 updated, 0 unchanged, 1 skipped" in said
    assert "feed.xml: 0 added, 0 updated, 1 unchanged, 1 skipped" in said  # polled again: nothing new
    assert said.count("Undated notice") == 1 and "the entry has no date" in said  # said once, not every poll
    assert "gone.xml: 0 added, 0 updated, 0 unchanged, 1 skipped" in said and "HTTP 404" in said
    assert "1 added, 0 changed, 0 removed, 5 unchanged" in said
    article, quote = top_answer(index_dir, "How long does the ferry crossing to Skell island take?")
    assert "skell" in article and "55 minutes" in quote
    assert (corpus / f"{article}.md").read_text(encoding="utf-8").startswith("---\ntitle: Ferry service")


def test_intervals_are_read_with_their_units() -> None:
    assert parse_interval("15m") == 900
    assert parse_interval("30s") == 30
    assert parse_interval("1h30m") == 5400
    assert parse_interval(" 2H ") == 7200
    for bad in ("15", "m", "0s", "-5m", "15 minutes", ""):
        with pytest.raises(ValueError, match="interval"):
            parse_interval(bad)


def test_a_feed_list_skips_comments_and_names_the_line_of_a_bad_url(tmp_path: Path) -> None:
    feeds = tmp_path / "feeds.txt"
    feeds.write_text("# world news\nhttps://example.org/rss.xml\n\n  http://example.com/atom  # sport\n",
                     encoding="utf-8")
    assert read_feed_list(feeds) == ["https://example.org/rss.xml", "http://example.com/atom"]
    feeds.write_text("https://example.org/rss.xml\nftp://example.org/feed\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"feeds.txt:2: not an http\(s\) URL"):
        read_feed_list(feeds)


def test_rag_watch_help_explains_it() -> None:
    result = CliRunner().invoke(main, ["watch", "--help"])
    assert result.exit_code == 0
    for words in ("a few seconds after files stop changing", "--feeds", "--every", "Ctrl-C", "whole build"):
        assert words in " ".join(result.output.split())


def test_rag_watch_refuses_a_bad_interval_or_a_missing_corpus(tmp_path: Path) -> None:
    (tmp_path / "corpus").mkdir()
    result = CliRunner().invoke(main, ["watch", "--corpus", str(tmp_path / "corpus"), "--every", "soon"])
    assert result.exit_code == 2 and "--every" in result.output
    result = CliRunner().invoke(main, ["watch", "--corpus", str(tmp_path / "missing")])
    assert result.exit_code == 1 and "does not exist" in result.output
