"""SQL for ``user_visibility`` (migration 0010): what QRadar lets each user see, shared by every worker.

`put` commits its own small transaction (it is called from read requests); `fresh` and `last_known` only
read. Rows older than the fallback window are dropped by `put`.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from app.store.db import transaction


def fresh(conn: sqlite3.Connection, user_key: str, question: str, now_ms: int) -> tuple[bool, Any]:
    row = conn.execute(
        "SELECT answer_json FROM user_visibility WHERE user_key = ? AND question = ? AND fresh_until > ?",
        (user_key, question, now_ms),
    ).fetchone()
    return (True, json.loads(row[0])) if row else (False, None)


def last_known(
    conn: sqlite3.Connection, user_key: str, question: str, not_before_ms: int
) -> tuple[bool, Any]:
    """The last answer learnt at or after ``not_before_ms``, fresh or not."""
    row = conn.execute(
        "SELECT answer_json FROM user_visibility WHERE user_key = ? AND question = ? AND fresh_until >= ?",
        (user_key, question, not_before_ms),
    ).fetchone()
    return (True, json.loads(row[0])) if row else (False, None)


def put(
    conn: sqlite3.Connection,
    user_key: str,
    question: str,
    answer: Any,
    now_ms: int,
    ttl_ms: int,
    keep_ms: int,
) -> None:
    with transaction(conn):
        conn.execute(
            "INSERT INTO user_visibility (user_key, question, answer_json, fresh_until, learnt_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_key, question) DO UPDATE SET "
            "answer_json = excluded.answer_json, fresh_until = excluded.fresh_until, "
            "learnt_at = excluded.learnt_at",
            (user_key, question, json.dumps(answer), now_ms + ttl_ms, now_ms),
        )
        conn.execute("DELETE FROM user_visibility WHERE fresh_until < ?", (now_ms - keep_ms,))
