"""SQLite in the app's store directory: connections, `get_db()` on `g`, and schema migrations.

* Location: ``$APP_STORE_DIR`` when set, else the directory the composition root passes in (qpylib's
  ``get_store_path()`` inside QRadar), else ``$APP_ROOT/store`` (like qpylib), else ``<repo>/store``.
  ``app.config["DATABASE"]`` overrides the file.
* Concurrency: several gunicorn workers and the refresher write at once, so every connection uses WAL,
  ``busy_timeout``, and ``isolation_level="IMMEDIATE"`` — Python's implicit transactions (opened before
  INSERT/UPDATE/DELETE) take the write lock up front, which avoids deadlocks between readers upgrading to
  writers. Every unit of work is ``with transaction(conn):`` — the one transaction helper of the store
  (it joins a transaction its caller already opened, so store functions compose).
* Migrations: ``app/store/migrations/NNNN_name.sql`` applied in number order, each in one transaction
  that also sets ``PRAGMA user_version = NNNN``. The version is re-read after taking the write lock, so
  workers starting together apply each migration exactly once. A released migration is never edited.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask, current_app, g

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# Parts of migrations that need FTS5's trigram tokenizer (SQLite 3.34+ built with FTS5), named like the
# migration they belong to and applied in its transaction when the SQLite has it; without it the store
# works from the rest (the readers check for the tables).
FTS5_TRIGRAM_DIR = MIGRATIONS_DIR / "fts5_trigram"
MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
DB_FILENAME = "cloud_account_watch.db"
BUSY_TIMEOUT_MS = 30_000
REPO_ROOT = Path(__file__).resolve().parents[2]


def store_dir(platform_store: str | os.PathLike[str] | None = None) -> Path:
    """The persistent store directory (created if missing); ``platform_store`` is the one QRadar gives
    the app (qpylib's store path), when the caller runs inside QRadar."""
    if os.environ.get("APP_STORE_DIR"):
        path = Path(os.environ["APP_STORE_DIR"])
    elif platform_store is not None:
        path = Path(platform_store)
    elif os.environ.get("APP_ROOT"):
        path = Path(os.environ["APP_ROOT"]) / "store"
    else:
        path = REPO_ROOT / "store"
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_db_path(directory: Path) -> Path:
    """The store's database file in the store directory ``directory``."""
    return directory / DB_FILENAME


def connect(
    path: str | os.PathLike[str], *, migrate_schema: bool = True, cache_kib: int | None = None
) -> sqlite3.Connection:
    """A new connection (one per thread) with WAL, busy_timeout and migrations applied; `cache_kib`: its
    page cache, when it should hold more than SQLite's default 2,000 KiB."""
    db_path = Path(path)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db_path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level="IMMEDIATE")
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    # The rows INSERT OR REPLACE deletes fire DELETE triggers only with this on; the counts of migration
    # 0005 are kept by triggers (they write other tables only, so nothing actually recurses).
    conn.execute("PRAGMA recursive_triggers = ON")
    # A statement that fires triggers keeps a statement journal (to undo just that statement); on disk it is
    # a temp file written per INSERT, which halved insert throughput. SQLite's sorter (ORDER BY, GROUP BY)
    # still spills to temp files whatever this says; only temp tables/indexes and that journal are in memory.
    conn.execute("PRAGMA temp_store = MEMORY")
    if cache_kib is not None:
        conn.execute(f"PRAGMA cache_size = -{int(cache_kib):d}")
    if migrate_schema:
        migrate(conn)
    return conn


def now_ms() -> int:
    """The store's clock: epoch milliseconds, as every ``*_ms`` column holds."""
    return int(time.time() * 1000)


def to_json(value: Any) -> str | None:
    """A JSON column's text (keys sorted, so equal values store equal text); None stays NULL."""
    return None if value is None else json.dumps(value, sort_keys=True, default=str)


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One unit of work: ``BEGIN IMMEDIATE`` (the write lock up front, reads included) … ``COMMIT``, or
    ``ROLLBACK`` when the block raises.

    Inside a transaction the caller already opened (an outer ``transaction`` block), the block joins it:
    the outer block commits or rolls back the whole, so a store function that writes in its own
    transaction can also be called as one step of a larger one."""
    if conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.rollback()
        raise
    conn.commit()


def migrations(directory: Path = MIGRATIONS_DIR) -> list[tuple[int, Path]]:
    """(version, path) for every migration file, in order; rejects duplicates and bad names."""
    found: dict[int, Path] = {}
    for path in directory.glob("*.sql"):
        match = MIGRATION_NAME.match(path.name)
        if not match:
            raise RuntimeError(f"migration file name {path.name!r} is not NNNN_name.sql")
        version = int(match.group(1))
        if version in found:
            raise RuntimeError(f"two migrations numbered {version:04d}: {found[version].name}, {path.name}")
        found[version] = path
    return sorted(found.items())


def split_statements(script: str) -> list[str]:
    """Split SQL text into complete statements (triggers and quoted ';' handled by SQLite itself)."""
    statements, buffer = [], ""
    for piece in script.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \t\r\n;"):
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip(" \t\r\n;"):
        raise ValueError(f"incomplete SQL statement at end of migration: {buffer.strip()[:80]!r}")
    return statements


class SchemaTooNewError(RuntimeError):
    """The store was written by a newer app (unknown migrations): refuse rather than risk corrupting it."""


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def has_fts5_trigram(conn: sqlite3.Connection) -> bool:
    """Whether this SQLite can create an FTS5 table with the trigram tokenizer."""
    try:
        conn.execute("CREATE VIRTUAL TABLE temp.fts5_trigram_probe USING fts5(x, tokenize = 'trigram')")
    except sqlite3.OperationalError:
        return False
    conn.execute("DROP TABLE temp.fts5_trigram_probe")
    return True


# The text index the first FTS5 trigram part creates; later parts change it, so they apply only to a store
# that has it (one migrated while SQLite lacked the tokenizer has none, whatever SQLite it runs on now).
FTS5_TRIGRAM_TABLE = "detections_search"


def _statements(conn: sqlite3.Connection, path: Path, optional_dir: Path) -> list[str]:
    """The migration's statements, then its FTS5 trigram part when there is one and SQLite has it (and,
    for a part after the first, the store has the index the first created)."""
    statements = split_statements(path.read_text(encoding="utf-8"))
    optional = optional_dir / path.name
    if optional.is_file() and has_fts5_trigram(conn):
        first = min(p.name for p in optional_dir.glob("*.sql"))
        has_index = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (FTS5_TRIGRAM_TABLE,)
        ).fetchone()
        if optional.name == first or has_index is not None:
            statements += split_statements(optional.read_text(encoding="utf-8"))
    return statements


def migrate(conn: sqlite3.Connection, directory: Path = MIGRATIONS_DIR) -> int:
    """Apply pending migrations, one transaction each; returns the resulting schema version."""
    if conn.in_transaction:
        conn.commit()
    known = migrations(directory)
    latest = known[-1][0] if known else 0
    found = schema_version(conn)
    if found > latest:
        raise SchemaTooNewError(
            f"the store's schema version is {found}, newer than this app's latest migration {latest:04d}: "
            "it was written by a newer version of the app; refusing to open it (upgrade the app, or restore "
            "a backup made by this version)"
        )
    for version, path in known:
        if schema_version(conn) >= version:
            continue
        statements = _statements(conn, path, directory / FTS5_TRIGRAM_DIR.name)
        with transaction(conn):  # BEGIN IMMEDIATE waits (busy_timeout) while another process migrates
            if schema_version(conn) >= version:  # someone else applied it meanwhile
                continue
            for statement in statements:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version:d}")
    return schema_version(conn)


_THREAD_CONNECTIONS = "store_thread_connections"
# A kept connection is replaced after this long: SQLite reads the planner statistics (ANALYZE, which the
# refresher re-runs) when a connection loads the schema, so a connection never replaced would not see them.
MAX_CONNECTION_AGE_S = 600.0


def _file_id(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def get_db() -> sqlite3.Connection:
    """The request's connection: this thread's connection to the app's database, kept open from request
    to request. Opening one (connect, its PRAGMAs, and a close that may checkpoint the WAL) cost more than
    most of the app's reads; a database file replaced on disk, or a connection older than
    `MAX_CONNECTION_AGE_S`, gets a new connection."""
    if "db" not in g:
        path = current_app.config["DATABASE"]
        local = current_app.extensions[_THREAD_CONNECTIONS]
        conn = getattr(local, "conn", None)
        if (
            conn is None
            or local.key != (str(path), _file_id(path))
            or time.monotonic() - local.opened > MAX_CONNECTION_AGE_S
        ):
            if conn is not None:
                conn.close()
            conn = connect(path, migrate_schema=False)
            local.conn, local.key, local.opened = conn, (str(path), _file_id(path)), time.monotonic()
        g.db = conn
    return g.db


def close_db(_exc: BaseException | None = None) -> None:
    """End of a request: anything it left uncommitted is rolled back; the connection stays this thread's."""
    db = g.pop("db", None)
    if db is not None and db.in_transaction:
        db.rollback()


def init_app(app: Flask) -> None:
    """Migrate the app's database (``DATABASE``) once at start-up; one kept connection per thread."""
    connect(app.config["DATABASE"]).close()
    app.extensions[_THREAD_CONNECTIONS] = threading.local()
    app.teardown_appcontext(close_db)
