"""The `rag` command: import, index, ask and serve."""
from __future__ import annotations

import datetime as dt
import json
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from rag.errors import ArticleFormatError, RagError
from rag.settings import get_settings

if TYPE_CHECKING:
    from rag.types import Reply

EXIT_SKIPPED = 3

corpus_option = click.option("--corpus", "corpus_dir", type=click.Path(file_okay=False, path_type=Path),
                             default=None, help="Directory of article files.  [default: corpus/]")
index_option = click.option("--index", "index_dir", type=click.Path(file_okay=False, path_type=Path),
                            default=None, help="Directory where the index is built.  [default: index/]")

milvus_option = click.option("--milvus", "milvus_uri", metavar="URI", default=None,
                             help="Keep the index in Milvus instead of --index: a path ending in .db (Milvus Lite) or "
                                  "http(s)://host:port (a server; token in RAG_MILVUS_TOKEN).  [default: "
                                  "RAG_MILVUS_URI, else the local index]")


def _use_milvus(milvus_uri: str | None) -> None:
    """--milvus URI overrides RAG_MILVUS_URI for this process (and the server it starts)."""
    import os

    if milvus_uri is not None:
        os.environ["RAG_MILVUS_URI"] = milvus_uri
        get_settings.cache_clear()
    try:
        get_settings()
    except ValueError as error:  # pydantic's message names the setting
        raise click.BadParameter(str(error).splitlines()[-1].strip(), param_hint="--milvus") from None


def _dirs(corpus_dir: Path | None, index_dir: Path | None) -> tuple[Path, Path]:
    settings = get_settings()
    return corpus_dir or settings.corpus_dir, index_dir or settings.index_dir


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Answer questions about a collection of news articles with the articles' own words.

    Put articles in corpus/ (Markdown with YAML front matter, JSON, JSONL or plain text), run
    `rag index`, then `rag ask "..."` or `rag serve` for the web chat.
    """


def _run_index(corpus_dir: Path, index_dir: Path, quiet: bool) -> None:
    from rag.index import build_index
    from rag.rebuilds import index_location, index_store

    settings = get_settings()
    store, where = index_store(settings), index_location(settings, index_dir)

    def announce(report) -> None:
        if not quiet and (report.added or report.changed):
            click.echo(f"embedding {len(report.added) + len(report.changed)} new or changed articles...", err=True)

    try:
        report = build_index(corpus_dir, index_dir, settings, progress=not quiet, on_scanned=announce, store=store)
    except (RagError, FileNotFoundError) as error:
        raise click.ClickException(str(error)) from None
    for line in report.skipped():
        click.echo(f"skipped {line}", err=True)
    if report.rebuilt_all:
        click.echo(f"rebuilt everything: {report.rebuilt_all}", err=True)
    if report.resplit:
        click.echo(f"embedded {report.resplit} unchanged articles again: the sentence splitter now splits them "
                   "differently", err=True)
    if report.reannotated:
        click.echo(f"found entities and phrases again in {report.reannotated} unchanged articles "
                   "(the annotator changed; their vectors were reused)", err=True)
    state = "index is up to date" if not report.build else f"built {report.build}"
    click.echo(f"{report.summary()} ({report.chunks} chunks, {report.embedded_chunks} embedded; "
               f"{report.seconds:.1f}s); {state} in {where}")
    if report.problems or report.duplicates or report.replaced:
        sys.exit(EXIT_SKIPPED)


@main.command("index")
@corpus_option
@index_option
@milvus_option
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def index_command(corpus_dir: Path | None, index_dir: Path | None, milvus_uri: str | None, quiet: bool) -> None:
    """Build or update the index from the corpus.

    Only new and changed articles are embedded again; deleted ones leave the index. The new index is
    written beside the old one and switched to atomically, so a crash leaves the old one serving.
    Files that cannot be read are reported and skipped.

    Exit status: 0 when every file was indexed, 3 when some were skipped, 1 on error.
    """
    _use_milvus(milvus_uri)
    _run_index(*_dirs(corpus_dir, index_dir), quiet)


@main.command("add")
@click.argument("sources", nargs=-1, required=True, metavar="FILE_OR_URL...")
@corpus_option
@index_option
@click.option("--published", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Date (YYYY-MM-DD) for pages and feed entries that carry none; without it they are skipped.")
@click.option("--source", "source", default=None,
              help="Outlet name for every article added.  [default: the site name or the feed's title]")
@click.option("--follow-links", is_flag=True,
              help="For feeds: fetch each entry's page and take its full text instead of the feed's.")
@click.option("--force", is_flag=True, help="Replace a corpus file of the same name (article files).")
@milvus_option
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def add_command(sources: tuple[str, ...], corpus_dir: Path | None, index_dir: Path | None,
                published: dt.datetime | None, source: str | None, follow_links: bool, force: bool,
                milvus_uri: str | None, quiet: bool) -> None:
    """Add news to the corpus and update the index.

    Each FILE_OR_URL is one of:

    \b
    - an article file (.md, .json, .jsonl, .txt): checked, copied as it is;
    - a web page (.html, .htm): its article without navigation, ads or
      comments, with title, author, date, site name and canonical URL;
    - an RSS or Atom feed (.xml, .rss, .atom; told by content): one
      article per entry;
    - a web archive (.warc, .warc.gz): one article per HTML page in it;
    - an http(s) URL of a page, feed or archive: fetched within 10 s,
      5 MB and 5 redirects (a PDF or an image is refused).

    Pages, feeds and archives become Markdown files in the corpus.

    A page that is not an article (a home page, a list of links) is skipped with the reason, and so is one without
    a date unless --published gives it. An article whose URL is already in the corpus replaces the older version,
    keeping its id. Prints one summary line: added, updated, unchanged, skipped by reason.

    Exit status: 0 when everything was added and the whole corpus indexed, 3 when something was skipped, 1 on error.
    """
    from tqdm.auto import tqdm

    from rag.corpus_writer import save_articles, summary_line
    from rag.news import Converted, convert_path, convert_url

    if source is not None and not source.strip():
        raise click.BadParameter("must not be empty", param_hint="--source")
    _use_milvus(milvus_uri)
    corpus_dir, index_dir = _dirs(corpus_dir, index_dir)
    corpus_dir.mkdir(parents=True, exist_ok=True)
    options = {"published": published.date().isoformat() if published else None, "source": source,
               "follow_links": follow_links, "progress": not quiet}
    found = Converted()
    copied = {"added": 0, "updated": 0, "unchanged": 0}
    for item in tqdm(sources, desc="reading", unit="item", leave=False, disable=quiet or len(sources) <= 3):
        if "://" in item[:10]:
            found.extend(convert_url(item, **options) if item[:8].lower().startswith(("http://", "https://"))
                         else Converted(skipped=[(item, "only http(s) URLs are fetched")]))
        elif not Path(item).is_file():
            found.skipped.append((item, "a directory, not a file" if Path(item).is_dir() else "no such file"))
        elif _is_article_file(Path(item)):
            state, problem = _copy_article_file(Path(item), corpus_dir, force)
            if problem:
                found.skipped.append((item, problem))
            else:
                copied[state] += 1
        else:
            found.extend(convert_path(Path(item), **options))
    report = save_articles(found.articles, corpus_dir)
    skipped = found.skipped + report.skipped
    for label, reason in skipped:
        click.echo(f"not added {label}: {reason}", err=True)
    click.echo(summary_line(len(report.added) + copied["added"], len(report.updated) + copied["updated"],
                            len(report.unchanged) + copied["unchanged"], skipped) + f" into {corpus_dir}")
    if found.passed_over:
        kinds = ", ".join(f"{count} {kind}" for kind, count in found.passed_over.most_common())
        click.echo(f"passed over {sum(found.passed_over.values())} WARC records that are not HTML pages ({kinds})")
    _run_index(corpus_dir, index_dir, quiet)
    if skipped:
        sys.exit(EXIT_SKIPPED)


def _is_article_file(path: Path) -> bool:
    """An article file in one of the corpus formats, copied as it is (a .txt or .json page or feed is converted)."""
    from rag.ingest import SUPPORTED_SUFFIXES
    from rag.news import detect_kind

    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        return False
    with open(path, "rb") as handle:
        return detect_kind(handle.read(4096), "") is None


def _copy_article_file(path: Path, corpus_dir: Path, force: bool) -> tuple[str, str | None]:
    """Copy one article file into the corpus after reading it as the index will: (added/updated/unchanged, None)
    or ("", why it was not copied)."""
    from rag.ingest import ignored_name_reason, read_article_file

    target = corpus_dir / path.name
    ignored = ignored_name_reason(Path(path.name))
    if ignored:
        return "", ignored
    try:
        read_article_file(path, max_bytes=get_settings().max_article_bytes)
    except ArticleFormatError as error:
        return "", error.reason
    if not target.exists():
        shutil.copyfile(path, target)
        return "added", None
    if target.read_bytes() == path.read_bytes():
        return "unchanged", None
    if not force:
        return "", f"{target} exists with other content (use --force to replace it)"
    shutil.copyfile(path, target)
    return "updated", None


@main.command("import-digest")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@corpus_option
@index_option
@click.option("--page-time", type=click.DateTime(["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d"]), default=None,
              help="When the page was captured (JST), to resolve '14 hours ago'. [default: inferred from an item "
                   "that also prints its absolute time]")
@click.option("--no-index", is_flag=True, help="Only write the article files.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def import_digest_command(file: Path, corpus_dir: Path | None, index_dir: Path | None, page_time: dt.datetime | None,
                          no_index: bool, quiet: bool) -> None:
    """Split a news digest page into one Markdown article per item in the corpus, then update the index.

    A digest lists items as: outlet, relative time ("14 hours ago"), "- Section", "- Outlet", title, text,
    separated by blank lines. Dates are resolved against the time the page was made.
    """
    from rag.digest import digest_articles
    from rag.ingest import article_to_markdown

    corpus_dir, index_dir = _dirs(corpus_dir, index_dir)
    now = page_time.replace(tzinfo=dt.timezone(dt.timedelta(hours=9))) if page_time else None
    try:
        articles = digest_articles(file.read_text(encoding="utf-8"), str(file), now)
    except (ArticleFormatError, ValueError, UnicodeDecodeError) as error:
        raise click.ClickException(f"{file}: {error}") from None
    corpus_dir.mkdir(parents=True, exist_ok=True)
    for article in articles:
        target = corpus_dir / f"{article.id}.md"
        content = article_to_markdown(article)
        state = "unchanged" if target.exists() and target.read_text(encoding="utf-8") == content else "written"
        target.write_text(content, encoding="utf-8")
        click.echo(f"{state} {target}  ({article.source}, {article.published})")
    click.echo(f"{len(articles)} articles from {file}")
    if not no_index:
        _run_index(corpus_dir, index_dir, quiet)


def _print_reply(reply: Reply) -> None:
    """A reply as numbered answers, each with its quote (or the article field it quotes) and citation."""
    if reply.no_answer:
        click.echo("The articles do not seem to answer this question.")
        if reply.answers:
            click.echo("The closest quotes, as possible answers only:")
    for number, answer in enumerate(reply.answers, start=1):
        low = ", low confidence: possible answer" if answer.confidence == "low" else ""
        value = click.style(answer.text, bold=True)
        head = value if answer.field == "text" else f"{answer.field.capitalize()}: {value}"  # "Byline: ..."
        click.echo(f"{number}. {head}  (score {answer.score:.2f}{low})")
        if answer.field == "text":
            quote = answer.quote
            a, b = answer.answer_start - answer.quote_start, answer.answer_end - answer.quote_start
            marked = quote[:a] + click.style(quote[a:b], bold=True, underline=True) + quote[b:]
            click.echo(f"   \u201c{marked}\u201d")
        art = answer.article
        click.echo(f"   \u2014 {art.source}, {art.published or 'undated'}: {art.title}")
        for other in answer.also_reported_by:
            click.echo(f"     also reported by {other.article.source}, {other.article.published or 'undated'}: "
                       f"{other.article.title}")
        for other in answer.carried_by:
            click.echo(f"     carried by {other.article.source}, {other.article.published or 'undated'}: "
                       f"{other.article.title} (the same report)")


@main.command("ask")
@click.argument("question")
@index_option
@click.option("--json", "as_json", is_flag=True, help="Print the /ask API's JSON reply.")
@click.option("--top-k", type=click.IntRange(1, 10), default=3, show_default=True, help="At most this many answers.")
@click.option("--source", "sources", multiple=True, help="Only articles from this outlet (repeatable).")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="Only articles published on or after YYYY-MM-DD.")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), help="Only articles published on or before YYYY-MM-DD.")
@milvus_option
def ask_command(question: str, index_dir: Path | None, as_json: bool, top_k: int, sources: tuple[str, ...],
                since: dt.datetime | None, until: dt.datetime | None, milvus_uri: str | None) -> None:
    """Answer QUESTION with quotes from the articles, each with its citation."""
    from rag.pipeline import Pipeline
    from rag.types import Filters

    question = question.strip()
    if not 1 <= len(question) <= 500:
        raise click.BadParameter("must be 1-500 characters", param_hint="QUESTION")
    _use_milvus(milvus_uri)
    filters = Filters(tuple(sources), since.date().isoformat() if since else None,
                      until.date().isoformat() if until else None)
    try:
        reply = Pipeline(index_dir=index_dir).ask(question, top_k=top_k, filters=filters)
    except RagError as error:
        raise click.ClickException(str(error)) from None
    if as_json:
        from rag.serialize import reply_to_dict

        click.echo(json.dumps(reply_to_dict(reply), indent=2, ensure_ascii=False))
    else:
        _print_reply(reply)


@main.command("serve")
@index_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--max-active", type=click.IntRange(min=1), default=None,
              help="Requests worked on at once (RAG_MAX_ACTIVE_REQUESTS).  [default: the CPU count]")
@click.option("--max-waiting", type=click.IntRange(min=0), default=None,
              help="Requests that may wait for them; past these, 503 at once (RAG_MAX_WAITING_REQUESTS).  "
                   "[default: what the CPUs answer in RAG_TARGET_WAIT_S, 2 s]")
@click.option("--read-timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Seconds a request may take to arrive whole, else 408 (RAG_READ_TIMEOUT_S).  [default: 10]")
@click.option("--keep-alive", type=click.IntRange(min=1), default=None,
              help="Seconds an idle connection stays open (RAG_KEEP_ALIVE_S).  [default: 5]")
@milvus_option
def serve_command(index_dir: Path | None, host: str, port: int, max_active: int | None, max_waiting: int | None,
                  read_timeout: float | None, keep_alive: int | None, milvus_uri: str | None) -> None:
    """Serve the web chat and the /ask API (docs at /docs). A rebuilt index is picked up without a restart.

    Under load a bounded number of requests is admitted; past it a request gets 503 with Retry-After at
    once, while /healthz and /readyz keep answering.
    """
    import os

    import uvicorn

    from rag.rebuilds import index_location
    from web.admission import server_options

    if index_dir:
        os.environ["RAG_INDEX_DIR"] = str(index_dir)
        get_settings.cache_clear()
    for name, value in (("RAG_MAX_ACTIVE_REQUESTS", max_active), ("RAG_MAX_WAITING_REQUESTS", max_waiting),
                        ("RAG_READ_TIMEOUT_S", read_timeout), ("RAG_KEEP_ALIVE_S", keep_alive)):
        if value is not None:  # the app reads its settings from the environment (uvicorn builds it)
            os.environ[name] = str(value)
            get_settings.cache_clear()
    _use_milvus(milvus_uri)
    click.echo(f"serving on http://{host}:{port}/  (index: {index_location(get_settings())})", err=True)
    uvicorn.run("web.app:create_app", factory=True, host=host, port=port, log_level="warning",
                **server_options(get_settings()))


@main.command("watch")
@corpus_option
@index_option
@click.option("--feeds", "feeds_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A file listing news feeds to poll into the corpus, one URL a line (# starts a comment).")
@click.option("--every", default="15m", show_default=True,
              help="How often to poll the feeds: 30s, 15m, 2h, 1h30m.")
@click.option("--delay", type=click.FloatRange(min=0.1), default=None,
              help="Seconds without changes before the index is updated (RAG_WATCH_DELAY_S).  [default: 2]")
@milvus_option
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def watch_command(corpus_dir: Path | None, index_dir: Path | None, feeds_file: Path | None, every: str,
                  delay: float | None, milvus_uri: str | None, quiet: bool) -> None:
    """Keep the index up to date with the corpus until Ctrl-C.

    Watches the corpus directory and, a few seconds after files stop changing, updates the index as `rag index`
    does (only new and changed articles are embedded); a running `rag serve` picks up each new build by itself.
    It updates once at the start too. With --feeds, the feeds listed in the file are fetched at the start and
    then --every so often; their new articles are written into the corpus and indexed.

    Prints one line per update, and each file skipped with the reason (the watcher goes on). Ctrl-C stops after
    the update in progress; a second Ctrl-C abandons it. Either way the index served is a whole build.
    """
    import threading

    from rag.watch import CorpusWatcher, parse_interval, read_feed_list, stop_on_signals

    _use_milvus(milvus_uri)
    corpus_dir, index_dir = _dirs(corpus_dir, index_dir)
    if not corpus_dir.is_dir():
        raise click.ClickException(f"corpus directory {corpus_dir} does not exist")
    try:
        every_s = parse_interval(every)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--every") from None
    try:
        feeds = read_feed_list(feeds_file) if feeds_file else []
    except (ValueError, UnicodeDecodeError) as error:
        raise click.BadParameter(str(error), param_hint="--feeds") from None
    settings = get_settings()
    stop = threading.Event()
    watcher = CorpusWatcher(corpus_dir, index_dir, settings, delay_s=delay or settings.watch_delay_s, feeds=feeds,
                            every_s=every_s, echo=click.echo, progress=not quiet, stop=stop)
    with stop_on_signals(stop, lambda message: click.echo(message, err=True)):
        try:
            watcher.run()
        except KeyboardInterrupt:
            click.echo("stopped: the update in progress was abandoned; the index serves the last whole build")
            sys.exit(130)
    click.echo("stopped")


if __name__ == "__main__":
    main()
