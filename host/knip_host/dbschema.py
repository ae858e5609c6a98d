"""The session database's tables and how an older file is brought up to date.

Schema 2 (this one) keys a session by (device_id, store_id, session_id):
the store id is the random id the trainer draws when its session store is
created (docs/STORE.md), so after a reflash restarts the numbers at 0 the new
sessions never meet the old ones. `stores` numbers the stores of each device
in the order they were first synced: the first is shown as the device id,
later ones as DEVICE~2, DEVICE~3 (SessionDatabase labels).

Schema 1 had no store: `migrate` copies its rows with store_id '' (unknown;
sync then matches them by size and CRC) and clears start times that are no
date (the raw bytes keep what the device said)."""
from __future__ import annotations

import json
import sqlite3

from . import checks as C

APPLICATION_ID = 0x4B4E4950         # "KNIP": PRAGMA application_id marks the file as ours
SCHEMA_VERSION = 2                  # PRAGMA user_version

SESSIONS = """
CREATE TABLE sessions (
    device_id    TEXT    NOT NULL,
    store_id     TEXT    NOT NULL DEFAULT '',   -- the device's session store ('' unknown: schema 1)
    session_id   INTEGER NOT NULL,
    start_epoch  INTEGER,               -- Unix seconds, 2020-2100; NULL when the device clock was not set
    signal       TEXT    NOT NULL,
    unit         TEXT    NOT NULL,
    rate_hz      REAL    NOT NULL,
    program      TEXT    NOT NULL DEFAULT '',
    duration_s   REAL    NOT NULL,
    n_squeezes   INTEGER NOT NULL,
    complete     INTEGER NOT NULL,      -- 0: recovered after a power cut
    size         INTEGER NOT NULL,      -- length of raw (bytes of the session file)
    crc32        INTEGER NOT NULL,      -- the CRC the device gave for the file
    raw          BLOB    NOT NULL,      -- the session file exactly as read from the device
    synced_at    INTEGER NOT NULL,      -- Unix seconds when it was stored
    summary_json TEXT    NOT NULL,      -- session_figures() + the device's own summary (+ damage, problems)
    PRIMARY KEY (device_id, store_id, session_id)
)"""

PARTIAL = """
CREATE TABLE partial (
    device_id     TEXT    NOT NULL,
    store_id      TEXT    NOT NULL DEFAULT '',
    session_id    INTEGER NOT NULL,
    expected_size INTEGER NOT NULL,
    expected_crc  INTEGER NOT NULL,
    data          BLOB    NOT NULL,     -- the first len(data) bytes of the file
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (device_id, store_id, session_id)
)"""

STORES = """
CREATE TABLE stores (
    device_id   TEXT    NOT NULL,
    store_id    TEXT    NOT NULL,
    number      INTEGER NOT NULL,       -- 1, 2, ... per device, in the order first synced
    first_seen  INTEGER NOT NULL,       -- Unix seconds
    PRIMARY KEY (device_id, store_id)
)"""

SCHEMA = (SESSIONS, PARTIAL, STORES)
TABLES = {"sessions", "partial", "stores"}

_V1_SESSION_COLUMNS = ("device_id", "session_id", "start_epoch", "signal", "unit", "rate_hz", "program",
                       "duration_s", "n_squeezes", "complete", "size", "crc32", "raw", "synced_at",
                       "summary_json")
_V1_PARTIAL_COLUMNS = ("device_id", "session_id", "expected_size", "expected_crc", "data", "updated_at")


def create(conn: sqlite3.Connection) -> None:
    """The tables of a new database (inside the caller's transaction)."""
    for stmt in SCHEMA:
        conn.execute(stmt)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def migrate(conn: sqlite3.Connection, version: int) -> None:
    """Bring a schema-`version` database to SCHEMA_VERSION (inside the caller's transaction)."""
    if version < 2:
        _v1_to_v2(conn)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _copy(conn: sqlite3.Connection, table: str, create_sql: str, columns: tuple[str, ...]) -> None:
    cols = ", ".join(columns)
    conn.execute(f"ALTER TABLE {table} RENAME TO {table}_v1")
    conn.execute(create_sql)
    conn.execute(f"INSERT INTO {table} ({cols}, store_id) SELECT {cols}, '' FROM {table}_v1 ORDER BY rowid")
    conn.execute(f"DROP TABLE {table}_v1")


def _v1_to_v2(conn: sqlite3.Connection) -> None:
    _copy(conn, "sessions", SESSIONS, _V1_SESSION_COLUMNS)
    _copy(conn, "partial", PARTIAL, _V1_PARTIAL_COLUMNS)
    conn.execute(STORES)
    conn.execute("INSERT INTO stores (device_id, store_id, number, first_seen) "
                 "SELECT device_id, '', 1, MIN(synced_at) FROM sessions GROUP BY device_id")
    # a start time that is no date broke every read: clear it, say so in the row
    for rowid, epoch, summary in conn.execute(
            "SELECT rowid, start_epoch, summary_json FROM sessions WHERE start_epoch IS NOT NULL").fetchall():
        if C.epoch_ok(epoch):
            continue
        try:
            doc = json.loads(summary or "{}")
        except ValueError:
            doc = {}
        if not isinstance(doc, dict):
            doc = {}
        doc.setdefault("problems", []).append(C.bad_time("the stored start time (Unix s)", epoch))
        conn.execute("UPDATE sessions SET start_epoch = NULL, summary_json = ? WHERE rowid = ?",
                     (json.dumps(doc, sort_keys=True), rowid))
