"""Domain errors, mapped to HTTP statuses in `web/` and to one-line messages in the CLI."""
from __future__ import annotations


class RagError(Exception):
    """Base class for errors a user can act on."""


class ArticleFormatError(RagError):
    """A corpus file that cannot be read as an article."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class IndexNotBuiltError(RagError):
    """No index exists yet in the index directory."""

    def __init__(self, index_dir: str) -> None:
        super().__init__(f"no index in {index_dir}: run `rag index` first")


class IndexBusyError(RagError):
    """Another process is building the index."""


class IndexOutdatedError(RagError):
    """The index was written by an older version of this program, or with another model: rebuild it."""


class ModelMismatchError(IndexOutdatedError):
    """The index was built with another embedding model than the one installed."""


class IndexDamagedError(IndexOutdatedError):
    """CURRENT names no build, or the build's files are cut short or unreadable: like an outdated index, it is not
    served, and `rag index` rebuilds it from the corpus."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"the index {where} is damaged ({reason}): run `rag index` to rebuild it")
        self.where = where
        self.reason = reason


class IndexNotWritableError(RagError):
    """The index directory cannot be written, so no build can be made there."""


class ArticleNotFoundError(RagError):
    def __init__(self, article_id: str) -> None:
        super().__init__(f"no article with id {article_id!r}")
        self.article_id = article_id


class StoreUnavailableError(IndexNotBuiltError):
    """The store holding the index (a Milvus server) cannot be reached, or refuses the credentials: as with no index,
    nothing can be answered (HTTP 503), and the message says what to fix."""

    def __init__(self, message: str) -> None:
        RagError.__init__(self, message)
