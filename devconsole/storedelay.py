"""Store delay per log source: events become searchable later than their ``starttime``, as in QRadar.

``starttime`` is when QRadar received an event; a pipeline backlog, store-and-forward or a collector
catching up makes it searchable (visible to Ariel searches) only later. Each event row has a
``searchable_at`` (epoch ms, NULL = at once) and the AQL engine reads only events whose ``searchable_at``
is not after the search's ``now``.

A log source's `StoreDelay` decides ``searchable_at`` at ingestion:

* ``lag_ms`` plus up to ``jitter_ms`` (per event, from a hash of the seed, the log source, the starttime
  and the payload);
* backlog bursts: time is cut into windows of ``burst_window_ms``; a window is a burst with probability
  ``burst_probability`` (a hash of the seed, the log source and the window), and every event of that
  window becomes searchable together, ``burst_ms`` after the window ends (the backlog is flushed at once).

The same seed gives the same times whatever the ingestion order. A row that names its own
``searchable_at`` keeps it. Tests need not wait: `release_pending` makes held events searchable now
(the backlog drains), `pending_events` lists what is held. Set from Python (`EventStore` methods below)
or over HTTP with the admin token (``/devconsole/store_delay``, wrapped by `StoreDelayClient`).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import requests

MAX_DELAY_MS = 30 * 86_400_000


@dataclass(frozen=True)
class StoreDelay:
    lag_ms: int = 0
    jitter_ms: int = 0
    burst_probability: float = 0.0
    burst_window_ms: int = 3_600_000
    burst_ms: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("lag_ms", "jitter_ms", "burst_ms"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 0 <= value <= MAX_DELAY_MS:
                raise ValueError(f"{name} must be an integer from 0 to {MAX_DELAY_MS}")
        if not 60_000 <= self.burst_window_ms <= MAX_DELAY_MS:
            raise ValueError(f"burst_window_ms must be from 60000 to {MAX_DELAY_MS}")
        if not 0.0 <= float(self.burst_probability) <= 1.0:
            raise ValueError("burst_probability must be from 0 to 1")

    def is_burst(self, logsourceid: int, starttime: int) -> bool:
        window = starttime // self.burst_window_ms
        return self.burst_probability > 0 and _unit(self.seed, logsourceid, "burst", window) < float(
            self.burst_probability
        )

    def searchable_at(self, logsourceid: int, starttime: int, payload: bytes | None) -> int:
        at = starttime + self.lag_ms
        if self.jitter_ms:
            at += int(_unit(self.seed, logsourceid, "jitter", starttime, payload or b"") * self.jitter_ms)
        if self.is_burst(logsourceid, starttime):
            window_end = (starttime // self.burst_window_ms + 1) * self.burst_window_ms
            at = max(at, window_end + self.burst_ms)
        return at


def _unit(*parts: Any) -> float:
    """A number in [0, 1) fixed by `parts`."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else str(part).encode())
        digest.update(b"\x00")
    return int.from_bytes(digest.digest()[:8], "big") / 2**64


def delay_from_json(body: Mapping[str, Any]) -> StoreDelay:
    """A `StoreDelay` from the dev API's seconds-based fields; ValueError names a bad one."""
    fields = {
        "lag_seconds": "lag_ms",
        "jitter_seconds": "jitter_ms",
        "burst_window_seconds": "burst_window_ms",
        "burst_seconds": "burst_ms",
    }
    values: dict[str, Any] = {}
    for name, target in fields.items():
        if name in body:
            try:
                values[target] = round(float(body[name]) * 1000)
            except (TypeError, ValueError, OverflowError):
                raise ValueError(f"{name} must be a number of seconds") from None
    if "burst_probability" in body:
        try:
            values["burst_probability"] = float(body["burst_probability"])
        except (TypeError, ValueError):
            raise ValueError("burst_probability must be a number from 0 to 1") from None
    if "seed" in body:
        try:
            values["seed"] = int(body["seed"])
        except (TypeError, ValueError):
            raise ValueError("seed must be an integer") from None
    return StoreDelay(**values)


# -- the table (schema.sql: store_delays) ------------------------------------------------------------


def load_delays(conn: sqlite3.Connection) -> dict[int, StoreDelay]:
    rows = conn.execute(
        "SELECT logsourceid, lag_ms, jitter_ms, burst_probability, burst_window_ms, burst_ms, seed"
        " FROM store_delays"
    ).fetchall()
    return {
        int(r[0]): StoreDelay(int(r[1]), int(r[2]), float(r[3]), int(r[4]), int(r[5]), int(r[6]))
        for r in rows
    }


def save_delay(conn: sqlite3.Connection, logsourceid: int, delay: StoreDelay) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO store_delays"
        " (logsourceid, lag_ms, jitter_ms, burst_probability, burst_window_ms, burst_ms, seed)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            logsourceid,
            delay.lag_ms,
            delay.jitter_ms,
            float(delay.burst_probability),
            delay.burst_window_ms,
            delay.burst_ms,
            delay.seed,
        ),
    )


def delays_json(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    return [{"log_source_id": lsid, **asdict(delay)} for lsid, delay in sorted(load_delays(conn).items())]


def pending_json(conn: sqlite3.Connection, now_ms: int) -> list[dict[str, Any]]:
    """Events held back per log source: how many, and when the next and the last become searchable."""
    rows = conn.execute(
        "SELECT logsourceid, COUNT(*), MIN(searchable_at), MAX(searchable_at) FROM events"
        " WHERE searchable_at > ? GROUP BY logsourceid ORDER BY logsourceid",
        (now_ms,),
    ).fetchall()
    return [
        {"log_source_id": r[0], "events": r[1], "next_searchable_at": r[2], "last_searchable_at": r[3]}
        for r in rows
    ]


class StoreDelayClient:
    """Switch a running dev console's store delays from another process (tests, bench)."""

    def __init__(self, base_url: str, admin_token: str, ca_path: str, timeout: float = 10.0) -> None:
        self.url = base_url.rstrip("/") + "/devconsole/store_delay"
        self.headers = {"SEC": admin_token}
        self.verify = ca_path
        self.timeout = timeout

    def _post(self, body: dict) -> dict:
        response = requests.post(
            self.url, json=body, headers=self.headers, verify=self.verify, timeout=self.timeout
        )
        response.raise_for_status()
        return response.json()

    def set(self, log_source_id: int, **fields: Any) -> dict:
        """Fields as the API takes them: lag_seconds, jitter_seconds, burst_probability,
        burst_window_seconds, burst_seconds, seed."""
        return self._post({"action": "set", "log_source_id": log_source_id, **fields})

    def release(self, log_source_id: int | None = None) -> dict:
        body: dict[str, Any] = {"action": "release"}
        if log_source_id is not None:
            body["log_source_id"] = log_source_id
        return self._post(body)

    def clear(self) -> dict:
        return self._post({"action": "clear"})

    def state(self) -> dict:
        response = requests.get(self.url, headers=self.headers, verify=self.verify, timeout=self.timeout)
        response.raise_for_status()
        return response.json()
