"""All SQL lives in this package.

``db`` — connections, ``get_db()`` on ``g``, ``connect()`` for background work, migrations.
``audit``, ``settings_rows``, ``refresh_state`` (and ``jobs``, the runner's rows in it) — the tables of
``0001_core.sql``. Every write is ``with transaction(conn):`` (`db.transaction`, the one helper).
Feature modules (``detections.py``, ``tuning.py``, …) sit beside them and take a connection argument.
"""

from .db import connect, get_db, migrate, schema_version, store_dir, transaction

__all__ = ["connect", "get_db", "migrate", "schema_version", "store_dir", "transaction"]
