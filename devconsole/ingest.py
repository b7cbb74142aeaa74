"""DSM-style ingestion: raw cloud audit records (JSON lines, a JSON array, CloudTrail's
``{"Records": [...]}`` or Event Hub's ``{"records": [...]}`` envelopes; any mix of sources) parsed by
``devconsole.dsm`` and stored as QRadar-normalized events.

A bad record (invalid JSON, unknown source, missing or malformed time, wrong field types, too large) is
counted and reported with its reason; it never stops the ingest and is never dropped silently. Events are
inserted in batches, one transaction per batch.

    python -m devconsole ingest --data DIR FILE...
"""

from __future__ import annotations

import gzip
import json
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Set
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .coalesce import DEFAULT_MAX_PAYLOAD_BYTES, Coalescer, Window, truncate_payload
from .dsm import RecordError, parse_record
from .dsm.mapping import DsmMapper
from .dsm.receipt import ReceiptDelays, load_receipt_delays
from .store import EventStore

# Largest record accepted. QRadar's own payload limits depend on the protocol and are configurable;
# 1 MiB comfortably holds any real CloudTrail/Entra/O365/GCP audit record.
MAX_RECORD_BYTES = 1 << 20
DEFAULT_BATCH_SIZE = 5000
# How many rejections ingest_command prints one by one before summarising.
PRINT_REJECTIONS = 50

_ENVELOPE_KEYS = ("Records", "records")


@dataclass
class IngestReport:
    """What an ingest did. ``rejected`` holds (index, reason): index is the 0-based position of the input
    item (a line, an array element, or a record handed to ``ingest_records``); envelope members share their
    envelope's index and name their position in the reason."""

    ingested: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    by_source: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)  # unreadable files (not records)
    event_ids: list[tuple[int, int]] | None = None  # (index, events.id) when collect_ids is set
    seconds: float = 0.0
    # Of ``ingested``: records counted in an earlier stored event (its eventcount), not stored themselves;
    # their event_ids entry is that event's id.
    coalesced: int = 0
    truncated: int = 0  # stored with the payload cut at the maximum payload length
    # Input indices (only those collect_ids asks for) counted in another event / stored with a cut payload.
    coalesced_indices: set[int] = field(default_factory=set)
    truncated_indices: set[int] = field(default_factory=set)

    @property
    def rate(self) -> float:
        return self.ingested / self.seconds if self.seconds > 0 else 0.0


class _Ingester:
    def __init__(
        self,
        store: EventStore,
        batch_size: int,
        collect_ids: bool | Set[int],
        max_record_bytes: int,
        receipt: ReceiptDelays | None = None,
        max_payload_bytes: int | None = DEFAULT_MAX_PAYLOAD_BYTES,
        coalescing: bool = True,
    ) -> None:
        self.store = store
        self.mapper = DsmMapper(store, receipt)
        self.batch_size = max(1, batch_size)
        self.max_record_bytes = max_record_bytes
        self.max_payload_bytes = max_payload_bytes
        self.coalescer = Coalescer(store.log_source_coalescing()) if coalescing else None
        self._absorbed: list[tuple[int, Window]] = []  # (index, window) of coalesced records
        self.report = IngestReport(event_ids=[] if collect_ids is not False else None)
        # True: every index; a set: only those indices (the scenario needs a few ids out of a million).
        self._wanted = None if isinstance(collect_ids, bool) else collect_ids
        self._rows: list[dict[str, Any]] = []
        self._indices: list[int] = []
        self._conn = store.connect()
        self._started = time.perf_counter()

    # -- input items -------------------------------------------------------------------------------

    def feed(self, index: int, item: Any, where: str = "") -> None:
        """One input item: a record object, or its JSON text (str/bytes) whose text becomes the payload."""
        raw: bytes | None = None
        if isinstance(item, str | bytes | bytearray):
            raw = item.encode("utf-8") if isinstance(item, str) else bytes(item)
            raw = raw.strip()
            if not raw:
                return
            if len(raw) > self.max_record_bytes:
                self.reject(index, f"{where}{self.too_large(len(raw))}")
                return
            try:
                # Decoding first skips json's per-call encoding sniffing on bytes (a measurable cost).
                item = json.loads(raw.decode("utf-8"))
            except (ValueError, RecursionError) as exc:
                self.reject(index, f"{where}invalid JSON: {_json_error(exc)}")
                return
        members = _envelope_members(item)
        if members is not None:
            for position, member in enumerate(members):
                self.record(index, member, None, f"{where}{members_key(item)}[{position}]: ")
            return
        self.record(index, item, raw, where)

    def record(self, index: int, record: Any, raw: bytes | None, where: str) -> None:
        try:
            event = parse_record(record)
        except RecordError as exc:
            self.reject(index, f"{where}{exc}")
            return
        if raw is None:
            try:
                raw = _payload_of(record)
            except (TypeError, ValueError) as exc:
                self.reject(index, f"{where}record is not JSON-serializable ({exc})")
                return
            if len(raw) > self.max_record_bytes:
                self.reject(index, f"{where}{self.too_large(len(raw))}")
                return
        row = self.mapper.row(event, raw)
        if self.max_payload_bytes is not None and len(row["payload"]) > self.max_payload_bytes:
            row["payload"] = truncate_payload(row["payload"], self.max_payload_bytes)
            self.report.truncated += 1
            if self._collects(index):
                self.report.truncated_indices.add(index)
        self.report.by_source[event.source] += 1
        window = self.coalesce(row)
        if window is not None:
            self.report.coalesced += 1
            self._absorbed.append((index, window))
            if self._collects(index):
                self.report.coalesced_indices.add(index)
            return
        self._rows.append(row)
        self._indices.append(index)
        if len(self._rows) >= self.batch_size:
            self.flush()

    def _collects(self, index: int) -> bool:
        return self.report.event_ids is not None and (self._wanted is None or index in self._wanted)

    def coalesce(self, row: dict[str, Any]) -> Window | None:
        """The window whose stored event counts ``row``, or None when ``row`` is stored itself."""
        if self.coalescer is None:
            return None
        if not self.coalescer.knows(row["logsourceid"]):
            # A log source created by this run: read its setting (on unless someone switched it off).
            _read_settings(self.coalescer, self.store)
        return self.coalescer.offer(row)

    def too_large(self, size: int) -> str:
        return f"record too large: {size} bytes (limit {self.max_record_bytes})"

    def reject(self, index: int, reason: str) -> None:
        self.report.rejected.append((index, reason))

    # -- storage -----------------------------------------------------------------------------------

    def flush(self) -> None:
        ids = self.store.insert_events(self._rows, conn=self._conn) if self._rows else []
        if self.coalescer is not None:
            for row, event_id in zip(self._rows, ids, strict=True):
                self.coalescer.stored(row, event_id)
            self.store.add_event_counts(self.coalescer.take_pending(), conn=self._conn)
        self.report.ingested += len(ids) + len(self._absorbed)
        if self.report.event_ids is not None:
            pairs = [
                *zip(self._indices, ids, strict=True),
                *((index, window.event_id) for index, window in self._absorbed),
            ]
            if self._wanted is not None:
                pairs = [(index, eid) for index, eid in pairs if index in self._wanted]
            self.report.event_ids.extend(pairs)
        self._rows = []
        self._indices = []
        self._absorbed = []

    def finish(self) -> IngestReport:
        try:
            self.flush()
        finally:
            self._conn.close()
        self.report.seconds = time.perf_counter() - self._started
        return self.report


def _read_settings(coalescer: Coalescer, store: EventStore) -> None:
    for log_source_id, enabled in store.log_source_coalescing().items():
        if not coalescer.knows(log_source_id):
            coalescer.set_enabled(log_source_id, enabled)


def members_key(item: dict) -> str:
    return next(key for key in _ENVELOPE_KEYS if isinstance(item.get(key), list))


def _envelope_members(item: Any) -> list | None:
    """The records of a ``{"Records": [...]}`` / ``{"records": [...]}`` envelope, else None."""
    if not isinstance(item, dict) or "eventName" in item or "operationName" in item:
        return None
    for key in _ENVELOPE_KEYS:
        value = item.get(key)
        if isinstance(value, list):
            return value
    return None


def _payload_of(record: dict) -> bytes:
    """The record as compact JSON bytes (the stored payload when no raw text was given)."""
    try:
        return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a "\\ud800" escape: keep it escaped
        return json.dumps(record, separators=(",", ":")).encode("ascii")


def _json_error(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at column {exc.colno}"
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 (byte {exc.start})"
    return str(exc)


def ingest_records(
    store: EventStore,
    records: Iterable[Any],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    collect_ids: bool | Set[int] = False,
    max_record_bytes: int = MAX_RECORD_BYTES,
    receipt: ReceiptDelays | None = None,
    max_payload_bytes: int | None = DEFAULT_MAX_PAYLOAD_BYTES,
    coalescing: bool = True,
) -> IngestReport:
    """Ingest records (dicts, or JSON text as str/bytes — then that text is stored as the payload, cut at
    ``max_payload_bytes``; None keeps payloads whole). ``receipt``: when QRadar received each record
    (``starttime``); None: at the record's own time. Coalescing follows each log source's setting;
    ``coalescing=False`` stores every record as its own event whatever the settings."""
    ingester = _Ingester(
        store, batch_size, collect_ids, max_record_bytes, receipt, max_payload_bytes, coalescing
    )
    for index, item in enumerate(records):
        ingester.feed(index, item)
    return ingester.finish()


def _open(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")


def _items_of_file(path: Path) -> Iterator[tuple[Any, str, str | None]]:
    """(item, where, error) of one file: array elements, one pretty-printed object, or lines. ``error`` is
    set (and ``item`` None) when the whole file cannot be read as JSON."""
    with _open(path) as handle:
        first = handle.read(4096).lstrip()[:1]
        handle.seek(0)
        if first == b"[":
            try:
                data = json.load(handle)
            except (ValueError, RecursionError) as exc:
                yield None, f"{path}: ", f"invalid JSON array: {_json_error(exc)}"
                return
            for position, element in enumerate(data):
                yield element, f"{path}[{position}]: ", None
            return
        if first == b"{":
            # A pretty-printed single object (a CloudTrail file opened in an editor) is not JSON lines.
            first_line = handle.readline()
            handle.seek(0)
            if _not_json(first_line):
                whole = handle.read()
                if not _not_json(whole):
                    yield whole, f"{path}: ", None
                    return
                handle.seek(0)
        for line_number, line in enumerate(handle, 1):
            if line.strip():
                yield line, f"{path}:{line_number}: ", None


def _not_json(text: bytes) -> bool:
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return True
    return False


def ingest_files(
    store: EventStore,
    paths: Iterable[str | Path],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    collect_ids: bool | Set[int] = False,
    max_record_bytes: int = MAX_RECORD_BYTES,
    receipt: ReceiptDelays | None = None,
    max_payload_bytes: int | None = DEFAULT_MAX_PAYLOAD_BYTES,
    coalescing: bool = True,
) -> IngestReport:
    """Ingest JSON-lines / JSON-array / envelope files (``.gz`` too); index counts items across files.
    ``receipt``, ``max_payload_bytes`` and ``coalescing`` as for ``ingest_records``."""
    ingester = _Ingester(
        store, batch_size, collect_ids, max_record_bytes, receipt, max_payload_bytes, coalescing
    )
    index = 0
    for path in map(Path, paths):
        try:
            for item, where, error in _items_of_file(path):
                if error is not None:
                    ingester.reject(index, f"{where}{error}")
                else:
                    ingester.feed(index, item, where)
                index += 1
        except OSError as exc:
            ingester.report.errors.append(f"cannot read {path}: {exc.strerror or exc}")
    return ingester.finish()


def payload_limit(args: Any) -> int | None:
    """``--max-payload-bytes`` (0 = no limit; absent = QRadar's default)."""
    value = getattr(args, "max_payload_bytes", None)
    if value is None:
        return DEFAULT_MAX_PAYLOAD_BYTES
    return None if value <= 0 else value


def ingest_command(args: Any) -> int:
    """``python -m devconsole ingest --data DIR [--receipt-delays none|realistic|FILE] FILE...``: prints
    counts and the rejection reasons."""
    try:
        receipt = load_receipt_delays(getattr(args, "receipt_delays", None) or "none")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    store = EventStore.in_dir(args.data)
    report = ingest_files(store, args.files, receipt=receipt, max_payload_bytes=payload_limit(args))
    sources = ", ".join(f"{name} {count}" for name, count in sorted(report.by_source.items()))
    print(f"ingested {report.ingested} records ({sources or 'none'}) in {report.seconds:.1f} s")
    print(f"coalesced {report.coalesced} records into earlier events; truncated {report.truncated} payloads")
    print(f"rejected {len(report.rejected)} records")
    for index, reason in report.rejected[:PRINT_REJECTIONS]:
        print(f"  #{index}: {reason}")
    if len(report.rejected) > PRINT_REJECTIONS:
        print(f"  ... and {len(report.rejected) - PRINT_REJECTIONS} more")
    for error in report.errors:
        print(f"error: {error}", file=sys.stderr)
    return 1 if report.errors else 0
