"""What QRadar's event pipeline does to events before storing them: coalescing and payload truncation.

**Coalescing** (IBM support page "QRadar: How does coalescing work in QRadar?"): with coalescing on for a
log source, events with the same QID, source IP, destination IP, destination port and username are
counted together once three such events were seen within a 10 second window; the further events of that
window become one stored record that keeps the payload of the first of them and counts them all in
``eventcount``. Coalescing is a per-log-source setting, on for a new log source
(``log_sources.coalesce_events``).

The window is measured on ``starttime`` (when QRadar received the event); it starts with the first event
of a key and lasts 10 s. This console coalesces within one ingest run: records of separate runs are never
merged (QRadar's coalescing state likewise lives in its pipeline, not in storage).

**Truncation**: a payload longer than the console's maximum payload length is cut at that many bytes (at a
UTF-8 character boundary), wherever that falls — in the middle of a JSON string as often as not. The DSM
has parsed the whole record first, so the normalized fields (username, QID, custom properties) stay
whole. QRadar's system setting "Max TCP Syslog Payload Length" defaults to 4096 bytes; whether the same
limit and the parse-before-cut order hold for the cloud protocols (REST API, Event Hubs) is UNCONFIRMED.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

COALESCE_WINDOW_MS = 10_000
# Events of one key stored one by one in a window before the rest of the window is coalesced.
COALESCE_AFTER = 3
DEFAULT_MAX_PAYLOAD_BYTES = 4096  # UNCONFIRMED for the cloud protocols (see the module doc)


def truncate_payload(payload: bytes, limit: int | None) -> bytes:
    """``payload`` cut to at most ``limit`` bytes, never inside a UTF-8 sequence; whole when no limit."""
    if limit is None or len(payload) <= limit:
        return payload
    cut = max(0, limit)
    # Step back over continuation bytes (10xxxxxx) so the cut never splits a character.
    while cut > 0 and (payload[cut] & 0xC0) == 0x80:
        cut -= 1
    return payload[:cut]


def coalesce_key(row: dict[str, Any]) -> tuple[Any, ...]:
    """QRadar's five coalescing properties, within one log source."""
    return (
        row.get("logsourceid"),
        row.get("qid"),
        row.get("sourceip"),
        row.get("destinationip"),
        row.get("destinationport", 0),
        row.get("username"),
    )


@dataclass
class Window:
    """One key's current 10 s window."""

    start_ms: int
    seen: int = 1
    record: dict[str, Any] | None = None  # the coalesced record of this window (a row offered earlier)
    event_id: int | None = None  # its events.id once stored


class Coalescer:
    """Decides, event by event, whether a row is stored or counted in an earlier row of its window.

    ``offer`` returns None when the row is to be stored (it may become the coalesced record of its
    window), or the window whose record counted it. A count added after that record was stored waits in
    ``pending`` (event id -> events to add) until the caller writes it.
    """

    def __init__(self, coalescing_of: dict[int, bool], window_ms: int = COALESCE_WINDOW_MS) -> None:
        self._coalescing_of = coalescing_of
        self._window_ms = window_ms
        self._windows: dict[tuple[Any, ...], Window] = {}
        self._unstored: dict[int, Window] = {}  # id(record row) -> its window, until stored
        self.pending: dict[int, int] = {}
        self.absorbed = 0

    def knows(self, log_source_id: int) -> bool:
        return log_source_id in self._coalescing_of

    def set_enabled(self, log_source_id: int, enabled: bool) -> None:
        self._coalescing_of[log_source_id] = enabled

    def offer(self, row: dict[str, Any]) -> Window | None:
        if not self._coalescing_of.get(row["logsourceid"], True):
            return None
        key = coalesce_key(row)
        at = int(row["starttime"])
        window = self._windows.get(key)
        if window is None or not 0 <= at - window.start_ms < self._window_ms:
            if len(self._windows) > 100_000:
                self._drop_closed(at)
            self._windows[key] = Window(at)
            return None
        window.seen += 1
        if window.seen <= COALESCE_AFTER:
            return None
        if window.record is None:
            window.record = row  # stored, keeping its payload; later events of the window count in it
            row["eventcount"] = int(row.get("eventcount") or 1)
            self._unstored[id(row)] = window
            return None
        if window.event_id is None:
            window.record["eventcount"] += 1
        else:
            self.pending[window.event_id] = self.pending.get(window.event_id, 0) + 1
        self.absorbed += 1
        return window

    def stored(self, row: dict[str, Any], event_id: int) -> None:
        """``row`` was written as ``event_id``."""
        window = self._unstored.pop(id(row), None)
        if window is not None:
            window.event_id = event_id

    def take_pending(self) -> dict[int, int]:
        pending, self.pending = self.pending, {}
        return pending

    def _drop_closed(self, now_ms: int) -> None:
        self._windows = {
            key: window for key, window in self._windows.items() if now_ms - window.start_ms < self._window_ms
        }
