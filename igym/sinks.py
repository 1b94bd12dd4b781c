"""One way to open where a study's data goes: a SQLite file's path or a PostgreSQL URL.

    open_sink("igym-data/study.sqlite")                      → SqliteSink (the default)
    open_sink("postgresql://igym:secret@db.lab:5432/study")  → PostgresSink (many server processes)

Both sinks take the same calls and write the same tables, so whoever opens the data (the
server's ``--data``/``--database``, a script) never needs to know which one it got.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .pg_sink import is_postgres_url, redact

if TYPE_CHECKING:
    from .pg_sink import PostgresSink
    from .sqlite_sink import SqliteSink

__all__ = ["open_sink", "is_postgres_url", "describe"]


def open_sink(target: str | Path) -> SqliteSink | PostgresSink:
    """A sink for ``target``: PostgreSQL for a ``postgresql://`` URL, else the SQLite file at that path.

    Raises :class:`igym.errors.DataError` (one line) for a database that cannot be reached or
    is not igym's, and for a file that cannot be used.
    """
    if is_postgres_url(target):
        from .pg_sink import PostgresSink

        return PostgresSink(str(target))
    from .sqlite_sink import SqliteSink

    return SqliteSink(target)


def describe(target: str | Path) -> str:
    """``target`` as a banner or a log may show it: a URL without its password, a file's full path."""
    return redact(str(target)) if is_postgres_url(target) else str(Path(target).resolve())
