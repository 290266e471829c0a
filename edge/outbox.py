"""Store and forward: every occupancy message is on disk before it is published, until the broker has it.

The outbox, not paho's memory, is the source of truth: a broker outage or an
edge restart loses nothing, and a single sender per camera publishes the oldest
rows in order so the retained value ends on the latest count. It also keeps
each camera's ``seq`` so that numbering survives restarts, and the sequence's
``epoch`` (the millisecond time this outbox was created): a replaced box or a
lost outbox starts again at seq 1 under a newer epoch, which the hub accepts
(see ``edge.contract``). It is bounded: when
full, the oldest rows are dropped and counted (reported in status), because a
week-old count is worth less than the disk it fills.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    camera TEXT NOT NULL,
    topic TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_camera ON messages (camera, id);
CREATE TABLE IF NOT EXISTS seqs (camera TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class OutboxRow:
    id: int
    camera: str
    topic: str
    payload: str


class Outbox:
    """A bounded, thread-safe SQLite queue of messages waiting for the broker's acknowledgement.

    The row counts (in all and per camera) and the dropped count are read at
    open and then kept in memory, so that ``depth`` and ``dropped`` (status,
    metrics, several times a second) and the bound check on every ``add`` cost
    nothing however long the backlog grows.
    """

    def __init__(self, path: str | Path, max_rows: int = 100_000, clock=time.time):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.max_rows = max_rows
        self._lock = threading.Lock()  # the database
        self._counts_lock = threading.Lock()  # the in-memory counts, never held across database work
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._depth: dict[str, int] = dict(
            self._db.execute("SELECT camera, COUNT(*) FROM messages GROUP BY camera").fetchall())
        self._total = sum(self._depth.values())
        row = self._db.execute("SELECT value FROM counters WHERE name = 'dropped'").fetchone()
        self._dropped = row[0] if row else 0
        self._db.execute("INSERT OR IGNORE INTO counters (name, value) VALUES ('epoch', ?)", (int(clock() * 1000),))
        self.epoch: int = self._db.execute("SELECT value FROM counters WHERE name = 'epoch'").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add(self, camera: str, build) -> OutboxRow:
        """Take the camera's next seq, build the message with it and store it, in one transaction.

        ``build(seq) -> (topic, payload)``. Taking the seq and storing the
        message together is what keeps seq gap-free and strictly increasing
        across crashes.
        """
        return self.add_many(camera, [build])[0]

    def add_many(self, camera: str, builds) -> list[OutboxRow]:
        """``add`` for several messages of one camera (e.g. all zones of one frame), in one transaction."""
        if not builds:
            return []
        with self._lock:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                row = self._db.execute("SELECT seq FROM seqs WHERE camera = ?", (camera,)).fetchone()
                seq = row[0] if row else 0
                rows = []
                for build in builds:
                    seq += 1
                    topic, payload = build(seq)
                    cur = self._db.execute("INSERT INTO messages (camera, topic, payload) VALUES (?, ?, ?)",
                                           (camera, topic, payload))
                    rows.append(OutboxRow(cur.lastrowid, camera, topic, payload))
                self._db.execute("INSERT INTO seqs (camera, seq) VALUES (?, ?) "
                                 "ON CONFLICT(camera) DO UPDATE SET seq = excluded.seq", (camera, seq))
                excess = self._total + len(rows) - self.max_rows
                trimmed: list[tuple[str, int]] = []
                if excess > 0:
                    trimmed = self._db.execute(
                        "SELECT camera, COUNT(*) FROM (SELECT camera FROM messages ORDER BY id LIMIT ?) "
                        "GROUP BY camera", (excess,)).fetchall()
                    self._db.execute("DELETE FROM messages WHERE id IN "
                                     "(SELECT id FROM messages ORDER BY id LIMIT ?)", (excess,))
                    self._db.execute("INSERT INTO counters (name, value) VALUES ('dropped', ?) "
                                     "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value", (excess,))
            with self._counts_lock:  # committed: the counts follow
                self._depth[camera] = self._depth.get(camera, 0) + len(rows)
                self._total += len(rows)
                for cam, n in trimmed:
                    self._depth[cam] -= n
                    self._total -= n
                    self._dropped += n
        return rows

    def oldest(self, camera: str, limit: int, exclude: set[int] = frozenset()) -> list[OutboxRow]:
        """The camera's oldest unacknowledged rows, skipping those already handed to the MQTT client."""
        with self._lock:
            rows = self._db.execute("SELECT id, camera, topic, payload FROM messages WHERE camera = ? "
                                    "ORDER BY id LIMIT ?", (camera, limit + len(exclude))).fetchall()
        return [OutboxRow(*r) for r in rows if r[0] not in exclude][:limit]

    def ack(self, row_id: int) -> None:
        with self._lock:
            row = self._db.execute("SELECT camera FROM messages WHERE id = ?", (row_id,)).fetchone()
            if row is None:  # already dropped by the bound
                return
            self._db.execute("DELETE FROM messages WHERE id = ?", (row_id,))
            with self._counts_lock:
                self._depth[row[0]] -= 1
                self._total -= 1

    def depth(self, camera: str | None = None) -> int:
        with self._counts_lock:
            return self._total if camera is None else self._depth.get(camera, 0)

    def dropped(self) -> int:
        with self._counts_lock:
            return self._dropped
