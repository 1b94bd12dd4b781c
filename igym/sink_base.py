"""What every study sink does, whatever database is behind it (``StudySink``).

:class:`igym.sqlite_sink.SqliteSink` (one file, the default) and
:class:`igym.pg_sink.PostgresSink` (one database for many server processes) are this class
plus their connection: how a statement runs, how the schema is opened. So batching,
quarantine, atomic upload batches, resume points and the dashboard's overview behave the
same in both, and a fix in one is a fix in both.

A subclass provides ``_exec(sql, params)`` (returns a DB-API cursor), ``_exec_many(sql,
rows)``, ``_close_db()`` and ``ERRORS`` (what a record that cannot be stored raises). The
SQL is written once with ``?`` placeholders (see :mod:`igym.sink_rows`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any
from collections.abc import Iterable

from .records import EpisodeRecord, EventRecord, ParticipantRecord, Record, StepRecord, VisitRecord, ends_something
from .sink_rows import (Row, ANSWER_SQL, EPISODE_SQL, EVENT_SQL, NEW_PARTICIPANT_SQL, PARTICIPANT_SQL, QUARANTINE_SQL,
                        QUESTION_SQL, RESUME_SQL, STEP_SQL, UPLOAD_SQL, VISIT_SQL, answer_rows, episode_row, event_row,
                        json_text, participant_row, question_rows, step_rows, visit_row)

COMMIT_EVERY_S = 1.0


class StudySink:
    """Takes records and keeps them, committing at least once a second and at every end.

    It is synchronous: the desktop calls it between frames; the server hands it to
    :class:`igym.server.storage.Storage`, whose thread makes every call.
    """

    ERRORS: tuple[type[BaseException], ...] = (ValueError, TypeError, OverflowError)

    def _setup(self, commit_every_s: float) -> None:
        """State every sink keeps (called by the subclass once its database is open)."""
        self.commit_every_s = commit_every_s
        self._last_commit = time.monotonic()
        self._open = False
        self._pending: list[Record] = []
        self._db_lock = threading.RLock()  # the connection: one user at a time
        self._pending_lock = threading.Lock()  # the queue: held only to append or swap
        self._closed = False
        self.quarantined = 0

    # --- what a subclass provides ---------------------------------------------------------------

    def _exec(self, sql: str, params: Row | list[Any] = ()) -> Any:
        raise NotImplementedError

    def _exec_many(self, sql: str, rows: list[Row]) -> None:
        raise NotImplementedError

    def _close_db(self) -> None:
        raise NotImplementedError

    def _inserting(self, records: list[Record]) -> None:
        """Hook: ``records`` go into the open transaction now (PostgreSQL keeps them until COMMIT)."""

    def _committed(self) -> None:
        """Hook: the open transaction is committed."""

    # --- transactions -----------------------------------------------------------------------------

    def _begin(self) -> None:
        if not self._open:
            self._exec("BEGIN")
            self._open = True

    def commit(self) -> None:
        """Write what is pending and make it durable against a process crash."""
        with self._db_lock:
            self.flush()
            if self._open:
                self._exec("COMMIT")
                self._open = False
                self._committed()
            self._last_commit = time.monotonic()

    def close(self) -> None:
        """Commit what is pending and close the database (a second call does nothing)."""
        with self._db_lock:
            if self._closed:
                return
            self.commit()
            self._close_db()
            self._closed = True

    def __enter__(self) -> StudySink:
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.close()

    # --- records ------------------------------------------------------------------------------------

    def write(self, records: Iterable[Record]) -> None:
        """Take records; they are written and committed once a second, and at every episode end.

        Holding them for up to a second costs nothing in safety (uncommitted rows are lost
        in a crash either way) and lets a server with hundreds of rooms write once a second.
        """
        urgent = False
        with self._pending_lock:
            pending = self._pending
            for record in records:
                pending.append(record)
                if type(record) is not StepRecord and ends_something(record):
                    urgent = True  # committed at once (see ends_something)
        if urgent or time.monotonic() - self._last_commit >= self.commit_every_s:
            self.commit()

    def flush(self) -> None:
        """Write pending records into the open transaction now (committed by the next commit)."""
        with self._pending_lock:
            records, self._pending = self._pending, []
        if records:
            with self._db_lock:
                self._inserting(records)
                self._insert(records)

    def _insert(self, records: list[Record]) -> None:
        """Insert records into the open transaction; a record that cannot be stored is kept in the
        ``quarantine`` table with its source and the reason, and the others are stored."""
        self._begin()
        self._exec("SAVEPOINT igym_records")
        try:
            self._insert_all(records)
        except self.ERRORS:
            self._exec("ROLLBACK TO igym_records")
            for record in records:  # one by one: only the unstorable ones stay out
                self._exec("SAVEPOINT igym_record")
                try:
                    self._insert_all([record])
                except self.ERRORS as error:
                    self._exec("ROLLBACK TO igym_record")
                    self._quarantine(record, error)
                self._exec("RELEASE igym_record")
        self._exec("RELEASE igym_records")

    def _quarantine(self, record: Any, error: BaseException, source: str | None = None) -> None:
        source = source or getattr(record, "participant_id", None) or getattr(record, "episode_id", None)
        logging.getLogger("igym.data").error("quarantined a %s from %s: %s", type(record).__name__, source, error)
        self.quarantined += 1
        self._exec(QUARANTINE_SQL, (time.time(), None if source is None else str(source)[:200], type(record).__name__,
                                    repr(record)[:100_000], f"{type(error).__name__}: {error}"[:1000]))

    def _insert_all(self, records: list[Record]) -> None:
        steps: list[Row] = []
        for record in records:
            if type(record) is StepRecord:
                steps.extend(step_rows(record))
                continue
            if steps:
                self._exec_many(STEP_SQL, steps)
                steps = []
            if type(record) is EpisodeRecord:
                self._exec(EPISODE_SQL, episode_row(record))
            elif type(record) is EventRecord:
                self._exec(EVENT_SQL, event_row(record))
            elif type(record) is VisitRecord:
                self._exec(VISIT_SQL, visit_row(record))
                answers = answer_rows(record)
                if answers:
                    self._exec_many(ANSWER_SQL, answers)
                questions = question_rows(record)
                if questions:
                    self._exec_many(QUESTION_SQL, questions)
            elif type(record) is ParticipantRecord:
                self._exec(PARTICIPANT_SQL, participant_row(record))
            else:
                raise TypeError(f"not a record: {record!r}")
        if steps:
            self._exec_many(STEP_SQL, steps)

    def store_batch(self, batch_id: str, participant_id: str, records: list[Record]) -> bool:
        """Store an uploaded batch once, all or nothing, and commit before returning (so the ack
        means "stored").

        Returns False for a batch id this participant already stored: a page that resends after
        a reload gets its acknowledgement again, and nothing is written twice. A batch that
        cannot be stored whole goes to the ``quarantine`` table as one row (nothing of it in
        the study's tables), so it is kept for the researcher and not resent forever.
        """
        with self._db_lock:
            self.flush()
            self._begin()
            self._exec("SAVEPOINT igym_batch")
            try:
                cursor = self._exec(UPLOAD_SQL, (participant_id, batch_id, time.time(), len(records)))
                new = bool(cursor.rowcount == 1)
                if new:
                    self._insert_all(list(records))
            except self.ERRORS as error:
                self._exec("ROLLBACK TO igym_batch")
                self._quarantine(records, error, source=f"upload {participant_id} {batch_id}")
                new = False
            self._exec("RELEASE igym_batch")
            self.commit()
        return new

    # --- participants -------------------------------------------------------------------------------

    def add_participant(self, participant_id: str, experiment: str | None = None,
                        meta: dict[str, Any] | None = None) -> None:
        """Register a participant (kept if already there) and commit at once."""
        with self._db_lock:
            self._begin()
            self._exec(NEW_PARTICIPANT_SQL, (participant_id, experiment, time.time(), json_text(meta), "started"))
            self.commit()

    def participant_status(self, participant_id: str) -> str | None:
        """``started``/``completed``/``declined``/``aborted`` for a known participant, else None."""
        with self._db_lock:
            self.flush()
            row = self._exec("SELECT status FROM participants WHERE participant_id=?", (participant_id,)).fetchone()
        return None if row is None else (row[0] or "started")

    def condition_counts(self, experiment: str) -> dict[str, int]:
        """How many participants of ``experiment`` each condition has (declined ones do not count:
        they never saw the condition, so balancing should not count them)."""
        with self._db_lock:
            self.flush()
            rows = self._exec("SELECT condition, count(*) FROM participants WHERE experiment=? AND condition "
                              "IS NOT NULL AND coalesce(status, '') != 'declined' GROUP BY condition",
                              (experiment,)).fetchall()
        return {condition: int(count) for condition, count in rows}

    # --- where a participant is, between connections (the server) ------------------------------

    def checkpoint(self, participant_id: str, token_sha256: str, snapshot: dict[str, Any] | None,
                   parked: bool = False) -> None:
        """Keep what a participant needs to resume (their study run's snapshot and the hash of their
        reconnect token) — after every scene change, so a restarted server loses nobody's place;
        ``parked``: they are away and no longer held in the server's memory."""
        with self._db_lock:
            self.flush()
            self._begin()
            now = time.time()
            self._exec(RESUME_SQL, (participant_id, token_sha256, json_text(snapshot), now, now if parked else None))
            self.commit()

    def resume_point(self, participant_id: str) -> tuple[str | None, tuple[str, dict[str, Any] | None] | None]:
        """The participant's status and, if they can resume, (token hash, snapshot)."""
        with self._db_lock:
            self.flush()
            row = self._exec("SELECT status FROM participants WHERE participant_id=?", (participant_id,)).fetchone()
            point = self._exec("SELECT token_sha256, snapshot FROM resume WHERE participant_id=?",
                               (participant_id,)).fetchone()
        status = None if row is None else (row[0] or "started")
        return status, (None if point is None else (point[0], None if point[1] is None else json.loads(point[1])))

    def forget_resume_point(self, participant_id: str) -> None:
        with self._db_lock:
            self._begin()
            self._exec("DELETE FROM resume WHERE participant_id=?", (participant_id,))
            self.commit()

    def park_everyone(self) -> int:
        """A server starting holds nobody in memory: whoever could resume counts as away from now."""
        with self._db_lock:
            self._begin()
            count: int = self._exec("UPDATE resume SET parked_at=? WHERE parked_at IS NULL", (time.time(),)).rowcount
            self.commit()
        return count

    def abandon_parked(self, before: float) -> list[str]:
        """Participants away since before ``before`` have left the study: their open visit and their
        status end as ``aborted`` (event ``page_abandoned``), and they can no longer resume."""
        with self._db_lock:
            self.flush()
            self._begin()
            now = time.time()
            rows = self._exec("SELECT participant_id, snapshot FROM resume WHERE parked_at < ?", (before,)).fetchall()
            for participant_id, snapshot in rows:
                visit = (json.loads(snapshot).get("open_visit") if snapshot else None) or {}
                if visit.get("visit_id"):
                    opened = self._exec("SELECT started_at FROM visits WHERE visit_id=? AND ended_at IS NULL",
                                        (visit["visit_id"],)).fetchone()
                    if opened is not None:
                        self._exec("UPDATE visits SET ended_at=?, duration_s=?, outcome='aborted' WHERE visit_id=? "
                                   "AND ended_at IS NULL", (now, round(now - opened[0], 6), visit["visit_id"]))
                if snapshot:
                    self._exec("UPDATE participants SET status='aborted', ended_at=? WHERE participant_id=? "
                               "AND coalesce(status, 'started')='started'", (now, participant_id))
                    self._exec(EVENT_SQL, (participant_id, None, time.monotonic_ns(), "page_abandoned",
                                           json_text({"visit": visit.get("visit_id"), "parked": True})))
                self._exec("DELETE FROM resume WHERE participant_id=?", (participant_id,))
            self.commit()
        return [row[0] for row in rows]

    def end_open_episodes(self, visit_id: str, outcome: str) -> int:
        """Episodes of a visit left open (their server went away) end with ``outcome`` and with
        what their stored steps say: the step count, each agent's return, and the time of the
        last stored step as the end (the end the participant saw, not the moment someone
        noticed). An episode without stored steps ends where it started."""
        with self._db_lock:
            self.flush()
            self._begin()
            opened = self._exec("SELECT episode_id, started_at, started_ns FROM episodes WHERE visit_id=? AND "
                                "outcome IS NULL", (visit_id,)).fetchall()
            for episode_id, started_at, started_ns in opened:
                steps, last_ns = self._exec("SELECT count(DISTINCT step), max(t_ns) FROM steps WHERE episode_id=?",
                                            (episode_id,)).fetchone()
                returns = {agent: float(total) for agent, total in self._exec(
                    "SELECT agent, sum(reward) FROM steps WHERE episode_id=? GROUP BY agent", (episode_id,)).fetchall()}
                ended_ns = int(last_ns) if last_ns is not None else int(started_ns)
                ended_at = float(started_at) + (ended_ns - int(started_ns)) / 1e9
                self._exec("UPDATE episodes SET outcome=?, ended_at=?, ended_ns=?, steps=?, returns=? WHERE "
                           "episode_id=? AND outcome IS NULL",
                           (outcome, ended_at, ended_ns, int(steps or 0), json_text(returns), episode_id))
            self.commit()
        return len(opened)

    def study_overview(self, experiment: str, recent: int = 300) -> dict[str, Any]:
        """The whole study as the data has it (every participant, also from before a restart):
        statuses, conditions, completion codes issued, how many reached each scene, and the most
        recently active participants — what the experimenter's dashboard counts from."""
        with self._db_lock:
            self.flush()
            statuses = {k: int(n) for k, n in self._exec(
                "SELECT coalesce(status, 'started'), count(*) FROM participants WHERE experiment=? GROUP BY 1",
                (experiment,)).fetchall()}
            conditions = {k: int(n) for k, n in self._exec(
                "SELECT condition, count(*) FROM participants WHERE experiment=? AND condition IS NOT NULL "
                "GROUP BY condition", (experiment,)).fetchall()}
            codes = int(self._exec("SELECT count(*) FROM participants WHERE experiment=? AND completion_code IS NOT "
                                   "NULL", (experiment,)).fetchone()[0])
            reached = {k: int(n) for k, n in self._exec(
                "SELECT v.scene, count(DISTINCT v.participant_id) FROM visits v JOIN participants p USING "
                "(participant_id) WHERE p.experiment=? GROUP BY v.scene", (experiment,)).fetchall()}
            rows = self._exec(
                "SELECT p.participant_id, coalesce(p.status, 'started'), p.condition, p.completion_code, "
                "coalesce(p.ended_at, p.created_at), r.parked_at, "
                "(SELECT scene FROM visits v WHERE v.participant_id = p.participant_id ORDER BY position DESC "
                "LIMIT 1) FROM participants p LEFT JOIN resume r USING (participant_id) WHERE p.experiment=? "
                "ORDER BY coalesce(p.ended_at, p.created_at) DESC LIMIT ?", (experiment, recent)).fetchall()
        return {"statuses": statuses, "conditions": conditions, "codes_issued": codes, "reached": reached,
                "recent": [{"participant": pid, "status": status, "condition": condition, "code": code,
                            "since": since, "parked_at": parked_at, "scene": scene}
                           for pid, status, condition, code, since, parked_at, scene in rows]}

    def episode_owner(self, episode_id: str) -> str | None:
        """The participant an episode belongs to, if it is stored."""
        with self._db_lock:
            self.flush()
            row = self._exec("SELECT participant_id FROM episodes WHERE episode_id=?", (episode_id,)).fetchone()
        return row[0] if row else None

    def visit_owner(self, visit_id: str) -> str | None:
        """The participant a visit belongs to, if it is stored."""
        with self._db_lock:
            self.flush()
            row = self._exec("SELECT participant_id FROM visits WHERE visit_id=?", (visit_id,)).fetchone()
        return row[0] if row else None
