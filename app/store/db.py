"""SQLite in the app's store directory: connections, `get_db()` on `g`, and schema migrations.

* Location: ``qpylib.get_store_path()`` inside QRadar; outside, ``$APP_STORE_DIR`` when set, else
  ``$APP_ROOT/store`` (like qpylib), else ``<repo>/store``. ``app.config["DATABASE"]`` overrides the file.
* Concurrency: several gunicorn workers and the refresher write at once, so every connection uses WAL,
  ``busy_timeout``, and ``isolation_level="IMMEDIATE"`` — Python's implicit transactions (opened before
  INSERT/UPDATE/DELETE) take the write lock up front, which avoids deadlocks between readers upgrading to
  writers. Use ``with conn:`` (or `transaction`) to commit/rollback a unit of work.
* Migrations: ``app/store/migrations/NNNN_name.sql`` applied in number order, each in one transaction
  that also sets ``PRAGMA user_version = NNNN``. The version is re-read after taking the write lock, so
  workers starting together apply each migration exactly once. A released migration is never edited.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import Flask, current_app, g

from app.qradar.transport import load_qpylib, qpylib_available

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
DB_FILENAME = "cloud_account_watch.db"
BUSY_TIMEOUT_MS = 30_000
REPO_ROOT = Path(__file__).resolve().parents[2]


def store_dir() -> Path:
    """The persistent store directory (created if missing)."""
    if os.environ.get("APP_STORE_DIR"):
        path = Path(os.environ["APP_STORE_DIR"])
    elif qpylib_available():
        path = Path(load_qpylib().get_store_path())
    elif os.environ.get("APP_ROOT"):
        path = Path(os.environ["APP_ROOT"]) / "store"
    else:
        path = REPO_ROOT / "store"
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_db_path() -> Path:
    return store_dir() / DB_FILENAME


def connect(path: str | os.PathLike[str] | None = None, *, migrate_schema: bool = True) -> sqlite3.Connection:
    """A new connection (one per thread) with WAL, busy_timeout and migrations applied."""
    db_path = Path(path) if path is not None else default_db_path()
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
    if migrate_schema:
        migrate(conn)
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (``ROLLBACK`` on error) around a block, reads included."""
    if conn.in_transaction:
        raise RuntimeError("transaction() does not nest; commit the open transaction first")
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
        statements = split_statements(path.read_text(encoding="utf-8"))
        conn.execute("BEGIN IMMEDIATE")  # waits (busy_timeout) while another process migrates
        try:
            if schema_version(conn) >= version:  # someone else applied it meanwhile
                conn.rollback()
                continue
            for statement in statements:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version:d}")
        except BaseException:
            conn.rollback()
            raise
        conn.commit()
    return schema_version(conn)


def get_db() -> sqlite3.Connection:
    """The request's connection, opened on first use and closed at teardown (flaskr style)."""
    if "db" not in g:
        g.db = connect(current_app.config["DATABASE"], migrate_schema=False)
    return g.db


def close_db(_exc: BaseException | None = None) -> None:
    db = g.pop("db", None)
    if db is not None:
        db.close()


def init_app(app: Flask) -> None:
    """Point the app at its database, migrate once at start-up, close connections at teardown."""
    if not app.config.get("DATABASE"):
        app.config["DATABASE"] = str(default_db_path())
    connect(app.config["DATABASE"]).close()
    app.teardown_appcontext(close_db)
