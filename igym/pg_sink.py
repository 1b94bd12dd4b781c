"""One PostgreSQL database for every server process of a study (``PostgresSink``).

A study served by many worker processes, on many machines, needs one place for all their
records: each worker opens its own ``PostgresSink`` on the same database. The tables, the
columns, the values and the behaviour are the SQLite file's (both are a
:class:`igym.sink_base.StudySink` over :mod:`igym.sink_rows`), so ``python -m igym.data
pull`` turns the database into the very file a single server would have written.

What is PostgreSQL's own here:

- **Many writers.** Creating the schema takes an advisory lock, so workers starting
  together create it once; counters (``event_id``, ``quarantine_id``) are identity columns
  (one sequence, no two workers get the same id); every other id is a UUID or the
  participant's own. An uploaded batch is claimed by its ``uploads`` row: a second worker
  storing the same batch waits for the first and then stores nothing.
- **A network between the server and its data.** Records written into the open transaction
  are kept in memory until COMMIT succeeds. When the connection breaks (the database
  restarted, a network blip) the sink reconnects, writes them again and retries the call,
  so nothing committed by the caller's say is lost; a statement that fails for its own
  reasons rolls the transaction back and the kept records are written again.
- **SQLite's values.** NaN becomes NULL and booleans integers, as SQLite stores them, so a
  row reads the same from both databases.

psycopg (3) is imported only when a sink or a pull opens a database: ``pip install
'igym[postgres]'``.
"""

from __future__ import annotations

import logging
from typing import Any
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

from .errors import DataError
from .records import Record
from .sink_base import COMMIT_EVERY_S, StudySink
from .sink_rows import ADDED_COLUMNS, COLUMNS, Row, SCHEMA_VERSION, STEP_SQL, postgres_schema, pyformat, statements

log = logging.getLogger("igym.data")

SCHEMES = ("postgresql://", "postgres://")
SCHEMA_LOCK = 0x6967796D  # "igym": the advisory lock held while a worker opens the schema
CONNECT_TIMEOUT_S = 10
FIRST_MIGRATED = 3  # the oldest schema version a database is migrated from (the first PostgreSQL one)
COPY_FROM_ROWS = 64  # a batch of at least this many step rows travels by COPY, a smaller one by executemany


def is_postgres_url(target: Any) -> bool:
    """Whether ``target`` names a PostgreSQL database (a ``postgresql://`` URL) rather than a file."""
    return isinstance(target, str) and target.lower().startswith(SCHEMES)


def redact(url: str) -> str:
    """The URL without its password: what logs, errors and the server's banner show."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.rsplit("@", 1)[1]
        user = parts.username or ""
        return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))
    except ValueError:
        return url.split("://", 1)[0] + "://…"


def psycopg_module() -> Any:
    """psycopg, imported now (never when igym is imported: the browser build has no psycopg)."""
    try:
        import psycopg
    except ImportError:
        raise DataError("a postgresql:// database needs psycopg — pip install 'igym[postgres]'") from None
    return psycopg


def first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0].strip()


def connect(url: str, *, autocommit: bool = True) -> Any:
    """A psycopg connection to ``url``; any failure is one :class:`DataError` line."""
    psycopg = psycopg_module()
    if not is_postgres_url(url):
        raise DataError(f"{redact(url)}: not a PostgreSQL URL — write postgresql://USER:PASSWORD@HOST:PORT/DATABASE")
    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=CONNECT_TIMEOUT_S,
                               application_name="igym")
    except psycopg.Error as error:
        raise DataError(f"{redact(url)}: cannot connect ({first_line(error)}) — check the URL, that the "
                        f"server runs and that the database exists") from None


def schema_version(db: Any, where: str) -> int | None:
    """The database's igym schema version (None: it has no tables yet); one line if it is not igym's.

    Reads the tables of the connection's current schema (``search_path``): a database shared
    with other software can give igym a schema of its own (``?options=-csearch_path%3Digym``).
    """
    row = db.execute("SELECT current_schema()").fetchone()
    if row is None or row[0] is None:
        raise DataError(f"{where}: no schema to use (search_path names none that exists) — create one, or "
                        f"connect with ?options=-csearch_path%3Dpublic")
    tables = {name for (name,) in db.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}
    if not tables:
        return None
    if "schema_version" not in tables:
        raise DataError(f"{where}: this database holds something else (tables: {', '.join(sorted(tables)[:5])}) — "
                        f"igym will not add its tables to it; give an empty database, or a schema of its own "
                        f"(?options=-csearch_path%3Digym)")
    version = db.execute("SELECT max(version) FROM schema_version").fetchone()[0]
    return None if version is None else int(version)


def _sqlite_values(params: Row | list[Any]) -> Row:
    """Parameters as SQLite would store them: NaN is NULL, a bool is 0 or 1."""
    return tuple(None if (type(v) is float and v != v) else int(v) if type(v) is bool else v for v in params)


class PostgresSink(StudySink):
    """The study's records in a PostgreSQL database, from one of possibly many server processes.

    The interface is :class:`igym.sqlite_sink.SqliteSink`'s, call for call; the server runs it
    on its storage thread, so a round trip to the database never stalls a room.
    """

    def __init__(self, url: str, *, commit_every_s: float = COMMIT_EVERY_S) -> None:
        self.url = url
        self.where = redact(url)
        self._psycopg = psycopg_module()
        self.ERRORS = (self._psycopg.Error, ValueError, TypeError, OverflowError)
        self._journal: list[Record] = []  # in the open transaction, not yet committed
        self._depth = 0
        self.reconnects = 0
        self.db = connect(url)
        try:
            self._open_schema()
        except BaseException:
            self.db.close()
            raise
        self._setup(commit_every_s)

    def _open_schema(self) -> None:
        """Create the schema once, however many workers open the database at the same moment; a
        database of an older version (3 on) is migrated in place, as SQLite files are."""
        try:
            with self.db.transaction():
                self.db.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                version = schema_version(self.db, self.where)
                if version is not None and not FIRST_MIGRATED <= version <= SCHEMA_VERSION:
                    newer = version > SCHEMA_VERSION
                    raise DataError(f"{self.where} has schema version {version}, "
                                    f"{'newer' if newer else 'older'} than this igym's {SCHEMA_VERSION} — use the "
                                    f"igym version that wrote it, or a new database")
                for statement in statements(postgres_schema()):
                    self.db.execute(statement)  # creates the tables a version added
                if version is None:
                    self.db.execute("INSERT INTO schema_version (version) VALUES (%s)", (SCHEMA_VERSION,))
                elif version < SCHEMA_VERSION:
                    self._migrate(version)
        except self._psycopg.Error as error:
            raise DataError(f"{self.where}: cannot set up igym's tables ({first_line(error)}) — the user needs "
                            f"CREATE rights on the database's schema") from None

    def _migrate(self, version: int) -> None:
        """Add the columns the versions after ``version`` added (a version 3 database also gets
        version 3's own: those of answers' times came while the number stayed 3)."""
        for added in range(max(version, FIRST_MIGRATED), SCHEMA_VERSION + 1):
            for table, columns in ADDED_COLUMNS.get(added, {}).items():
                for column in columns:
                    self.db.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {postgres_schema(column)}")
        self.db.execute("UPDATE schema_version SET version = %s", (SCHEMA_VERSION,))

    # --- statements -----------------------------------------------------------------------------

    def _exec(self, sql: str, params: Row | list[Any] = ()) -> Any:
        return self.db.execute(pyformat(sql), _sqlite_values(params) if params else None)

    def _exec_many(self, sql: str, rows: list[Row]) -> None:
        if sql is STEP_SQL and len(rows) >= COPY_FROM_ROWS:
            self._copy_steps(rows)
            return
        with self.db.cursor() as cursor:
            cursor.executemany(pyformat(sql), [_sqlite_values(row) for row in rows])

    def _copy_steps(self, rows: list[Row]) -> None:
        """Many steps at once: COPY them into a temporary table, then insert what is new (the steps
        table keeps the first copy of a step, as ``INSERT … ON CONFLICT DO NOTHING`` does one by one).
        About 2× the rows per second of ``executemany`` (docs/postgres.md)."""
        columns = ", ".join(COLUMNS["steps"])
        with self.db.cursor() as cursor:
            cursor.execute("CREATE TEMP TABLE IF NOT EXISTS igym_steps_in (LIKE steps) ON COMMIT DELETE ROWS")
            with cursor.copy(f"COPY igym_steps_in ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(_sqlite_values(row))
            cursor.execute(f"INSERT INTO steps ({columns}) SELECT {columns} FROM igym_steps_in "
                           f"ON CONFLICT DO NOTHING")
            cursor.execute("TRUNCATE igym_steps_in")

    def _close_db(self) -> None:
        self.db.close()

    def _inserting(self, records: list[Record]) -> None:
        self._journal.extend(records)

    def _committed(self) -> None:
        self._journal = []

    # --- a broken connection, a failed statement --------------------------------------------------

    def _call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a sink method; if the connection broke, reconnect, write the uncommitted records again
        and run it once more. Only the outermost call recovers (methods call one another)."""
        with self._db_lock:
            if self._depth:
                return method(self, *args, **kwargs)
            self._depth += 1
            try:
                try:
                    return method(self, *args, **kwargs)
                except self._psycopg.Error as error:
                    if not self.db.closed and not self.db.broken:
                        self._restart(reconnect=False)  # undo the failed transaction, keep the records
                        raise
                    log.warning("%s: connection lost (%s); reconnecting", self.where, first_line(error))
                    self._restart(reconnect=True)
                try:
                    return method(self, *args, **kwargs)
                except self._psycopg.Error as error:
                    raise DataError(f"{self.where}: {first_line(error)}") from None
            finally:
                self._depth -= 1

    def _restart(self, *, reconnect: bool) -> None:
        """A new transaction (on a new connection when ``reconnect``) with every uncommitted record."""
        if reconnect:
            try:
                self.db.close()
            except self._psycopg.Error:
                pass
            self.db = connect(self.url)
            self.reconnects += 1
        else:
            self.db.execute("ROLLBACK")
        self._open = False
        if self._journal:
            log.info("%s: writing %d uncommitted records again", self.where, len(self._journal))
            self._insert(list(self._journal))

    @staticmethod
    def _recovering(method: Callable[..., Any]) -> Callable[..., Any]:
        def call(self: PostgresSink, *args: Any, **kwargs: Any) -> Any:
            return self._call(method, *args, **kwargs)

        call.__name__, call.__doc__ = method.__name__, method.__doc__
        return call

    commit = _recovering(StudySink.commit)
    flush = _recovering(StudySink.flush)
    store_batch = _recovering(StudySink.store_batch)
    add_participant = _recovering(StudySink.add_participant)
    participant_status = _recovering(StudySink.participant_status)
    condition_counts = _recovering(StudySink.condition_counts)
    checkpoint = _recovering(StudySink.checkpoint)
    resume_point = _recovering(StudySink.resume_point)
    forget_resume_point = _recovering(StudySink.forget_resume_point)
    park_everyone = _recovering(StudySink.park_everyone)
    abandon_parked = _recovering(StudySink.abandon_parked)
    end_open_episodes = _recovering(StudySink.end_open_episodes)
    study_overview = _recovering(StudySink.study_overview)
    episode_owner = _recovering(StudySink.episode_owner)
    visit_owner = _recovering(StudySink.visit_owner)
    del _recovering

    def close(self) -> None:
        """Commit what is pending and close the connection (a second call does nothing)."""
        with self._db_lock:
            if self._closed:
                return
            try:
                self.commit()
            finally:
                self._closed = True
                try:
                    self.db.close()
                except self._psycopg.Error:
                    pass

    def __repr__(self) -> str:
        return f"PostgresSink({self.where!r})"

