"""SQL for the ``settings`` table (migration 0001): the stored (non-default) setting values.

Writes leave committing to the caller, so a settings change and its audit row commit together
(`app.settings.update`).
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from app.store.db import now_ms


def setting_rows(conn: sqlite3.Connection) -> dict[str, Any]:
    """Stored (non-default) setting values, decoded from JSON."""
    return {
        row["key"]: json.loads(row["value_json"])
        for row in conn.execute("SELECT key, value_json FROM settings")
    }


def put_setting(conn: sqlite3.Connection, key: str, value: Any, actor: str) -> None:
    conn.execute(
        "INSERT INTO settings (key, value_json, updated_by, updated_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value_json = excluded.value_json, "
        "updated_by = excluded.updated_by, updated_at = excluded.updated_at",
        (key, json.dumps(value), actor, now_ms()),
    )


def delete_setting(conn: sqlite3.Connection, key: str) -> None:
    conn.execute("DELETE FROM settings WHERE key = ?", (key,))
