"""`rag watch`: keep an index up to date with its corpus directory, and optionally with a list of news feeds.

The corpus is watched with watchfiles; once files have stopped changing for a few seconds, the index is brought
up to date by an incremental build (`rag.index.build_index`, as `rag index` does), and a running server picks the
new build up by itself. Feeds listed in a file are polled every so often into the corpus (`rag.news`), and the
files written are indexed like any other change. A file that cannot be read is reported and skipped, a build that
fails is reported and tried again on the next change: nothing stops the watcher but a stop request.

Stopping: `stop_on_signals` turns the first Ctrl-C (SIGINT or SIGTERM) into a stop request, which the watcher
honours between updates, so a running build finishes and is switched to; a second one abandons the build. Either
way CURRENT names a whole build: a build is written beside the served one and switched to by one atomic rename.
"""
from __future__ import annotations

import datetime as dt
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import watchfiles

from rag.errors import IndexBusyError
from rag.index import BuildReport, build_index
from rag.ingest import ignored_name_reason
from rag.rebuilds import index_location, index_store
from rag.settings import Settings

BUSY_RETRY_SECONDS = 5.0  # another build holds the index: try again after this long
MAX_WAIT_SECONDS = 30.0  # files that never stop changing still get the index updated this often
WAKE_SECONDS = 0.25  # how often the loop wakes without changes, to keep its timers
_INTERVAL = re.compile(r"(?:([0-9]+(?:\.[0-9]+)?)([hms]))+")
_INTERVAL_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)([hms])")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0}

Echo = Callable[[str], None]


def parse_interval(text: str) -> float:
    """Seconds in an interval written like `15m`, `30s`, `2h` or `1h30m`; ValueError naming the text otherwise."""
    compact = text.strip().lower().replace(" ", "")
    if not _INTERVAL.fullmatch(compact):
        raise ValueError(f"an interval is a number with a unit, like 15m, 30s, 2h or 1h30m; got {text!r}")
    seconds = sum(float(number) * _UNIT_SECONDS[unit] for number, unit in _INTERVAL_PART.findall(compact))
    if seconds < 1:
        raise ValueError(f"an interval must be at least 1s, got {text!r}")
    return seconds


def read_feed_list(path: Path) -> list[str]:
    """The feed URLs a file lists, one a line; blank lines and `#` comments are skipped. ValueError names the
    line of anything that is not an http(s) URL."""
    urls = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        parts = urlsplit(line)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{path}:{number}: not an http(s) URL: {line[:100]!r}")
        urls.append(line)
    return urls


def update_line(report: BuildReport) -> str:
    """One line on what an update did: the counts, what was embedded, the build switched to."""
    if not report.build:
        return f"index is up to date ({len(report.unchanged)} articles)"
    return (f"{report.summary()} ({report.embedded_chunks} chunks embedded, {report.seconds:.1f}s); "
            f"switched to build {report.build}")


def skipped_lines(report: BuildReport) -> list[str]:
    """One line per corpus file the build skipped, with the reason."""
    return [f"skipped {line}" for line in report.skipped()]


class CorpusWatcher:
    """Keeps the index in `index_dir` up to date with `corpus_dir` until `stop` is set.

    An update runs `delay_s` after the last change of a burst (at most MAX_WAIT_SECONDS after its first), and once
    at the start for what changed while nobody watched. `feeds` are polled at the start and then every `every_s`.
    Each update says one line through `echo`; a skipped file is said when it first shows up.
    """

    def __init__(self, corpus_dir: Path, index_dir: Path, settings: Settings, *, delay_s: float = 2.0,
                 feeds: Sequence[str] = (), every_s: float | None = None, echo: Echo = print,
                 progress: bool = False, stop: threading.Event | None = None) -> None:
        if delay_s <= 0:
            raise ValueError(f"delay_s must be > 0, got {delay_s}")
        if feeds and (every_s is None or every_s < 1):
            raise ValueError(f"polling feeds needs every_s >= 1, got {every_s}")
        self.corpus_dir = corpus_dir
        self.index_dir = index_dir
        self.settings = settings
        self.delay_s = delay_s
        self.feeds = list(feeds)
        self.every_s = every_s
        self.echo = echo
        self.progress = progress
        self.stop = stop or threading.Event()
        self.updates = 0  # updates finished, whatever their outcome (tests wait on it)
        self._reported: set[str] = set()  # skipped-file lines said already, while they stay true
        self._reported_feeds: dict[str, set[str]] = {}  # the same for each feed's entries

    def say(self, message: str) -> None:
        self.echo(f"{dt.datetime.now():%H:%M:%S} {message}")

    def run(self) -> None:
        """Watch until `stop` is set; an update in progress is finished first."""
        if not self.corpus_dir.is_dir():
            raise FileNotFoundError(f"corpus directory {self.corpus_dir} does not exist")
        due: float | None = time.monotonic()  # when the next update runs; None: nothing changed
        first_change: float | None = None
        next_poll = time.monotonic() if self.feeds else None
        self.say(f"watching {self.corpus_dir} (index: {index_location(self.settings, self.index_dir)})"
                 + (f", polling {len(self.feeds)} feeds every {self.every_s:g}s" if self.feeds else ""))
        # The first wake-up comes at once (a timeout), after the watch has started: nothing is missed meanwhile.
        for changes in watchfiles.watch(self.corpus_dir, watch_filter=self._is_article_change, stop_event=self.stop,
                                        rust_timeout=int(WAKE_SECONDS * 1000), yield_on_timeout=True,
                                        raise_interrupt=False):
            now = time.monotonic()
            if self.stop.is_set():
                break
            if changes:
                first_change = first_change or now
                due = min(now + self.delay_s, first_change + MAX_WAIT_SECONDS)
            if due is not None and now >= due:
                due = first_change = None
                if not self.update():
                    due = time.monotonic() + BUSY_RETRY_SECONDS
            if next_poll is not None and now >= next_poll and not self.stop.is_set():
                self.poll_feeds()  # the files it writes come back as changes
                next_poll = time.monotonic() + self.every_s

    def _is_article_change(self, change: watchfiles.Change, path: str) -> bool:
        """Changes to what the index reads: not hidden files (editors' and writers' temporary files), not README."""
        try:
            relative = Path(path).relative_to(self.corpus_dir.resolve())
        except ValueError:
            try:
                relative = Path(path).relative_to(self.corpus_dir.absolute())
            except ValueError:
                return True
        return ignored_name_reason(relative) is None and watchfiles.DefaultFilter()(change, path)

    def update(self) -> bool:
        """Bring the index up to date and say how it went; False when another build holds the index (try later).
        Any other failure is said and waits for the next change."""
        def announce(report: BuildReport) -> None:
            self.say(f"updating: {len(report.added) + len(report.changed)} new or changed, "
                     f"{len(report.removed)} removed...")

        try:
            report = build_index(self.corpus_dir, self.index_dir, self.settings, progress=self.progress,
                                 on_scanned=announce, store=index_store(self.settings))
        except IndexBusyError as error:
            self.say(f"{error}; trying again in {BUSY_RETRY_SECONDS:g}s")
            return False
        except Exception as error:  # noqa: BLE001 - the watcher outlives any failed build
            self.say(f"update failed: {error if str(error) else type(error).__name__}; the index served is "
                     "unchanged, the next change tries again")
            self.updates += 1
            return True
        skipped = skipped_lines(report)
        for line in skipped:
            if line not in self._reported:
                self.say(line)
        self._reported = set(skipped)
        if report.rebuilt_all:
            self.say(f"rebuilt everything: {report.rebuilt_all}")
        self.say(update_line(report))
        self.updates += 1
        return True

    def poll_feeds(self) -> None:
        """Fetch every listed feed into the corpus (rag.news, rag.corpus_writer): one line per feed, and each entry
        skipped with the reason when it first shows up. A feed that fails is said and the others still polled."""
        from rag.corpus_writer import summary_line
        from rag.news import convert_url, save_articles

        for url in self.feeds:
            if self.stop.is_set():
                return
            try:
                converted = convert_url(url, settings=self.settings)
                saved = save_articles(converted.articles, self.corpus_dir, settings=self.settings)
            except Exception as error:  # noqa: BLE001 - one feed's failure never stops the others or the watcher
                self.say(f"feed {url}: {error if str(error) else type(error).__name__}")
                continue
            skipped = converted.skipped + saved.skipped
            self.say(f"feed {url}: {summary_line(len(saved.added), len(saved.updated), len(saved.unchanged), skipped)}")
            lines = {f"  skipped {label}: {reason}" for label, reason in skipped}
            for line in sorted(lines - self._reported_feeds.get(url, set())):
                self.say(line)
            self._reported_feeds[url] = lines


@contextmanager
def stop_on_signals(stop: threading.Event, echo: Echo) -> Iterator[None]:
    """Within the block, the first SIGINT or SIGTERM sets `stop` (said through `echo`) and a second raises
    KeyboardInterrupt, to abandon what is running. Call from the main thread."""
    def handle(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        echo("stopping after the update in progress, if any (press Ctrl-C again to abandon it)")

    previous = {number: signal.signal(number, handle) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
