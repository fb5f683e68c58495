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


class ArticleNotFoundError(RagError):
    def __init__(self, article_id: str) -> None:
        super().__init__(f"no article with id {article_id!r}")
        self.article_id = article_id
