"""``python -m devconsole seed``: write the scenario's raw records, ingest them through the DSMs, add the
offenses and write the manifest."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..coalesce import DEFAULT_MAX_PAYLOAD_BYTES
from ..dsm import parse_record
from ..dsm.receipt import ReceiptDelays, load_receipt_delays, receipt_config
from ..ingest import ingest_files, payload_limit
from ..store import EventStore
from .facts import DEFAULT_EVENTS, DEFAULT_SEED
from .generate import generate
from .manifest import build_manifest
from .model import Scenario, StoredEvents
from .offenses import store_offenses


def write_records(records: Iterable[dict], path: Path) -> int:
    """Write records as JSON lines; returns how many."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
            handle.write("\n")
            count += 1
    return count


def reset_store(data_dir: Path) -> None:
    for name in ("events.db", "events.db-wal", "events.db-shm"):
        (data_dir / name).unlink(missing_ok=True)
    shutil.rmtree(data_dir / "scenario", ignore_errors=True)


def stored_columns(store: EventStore, event_ids: Iterable[int]) -> dict[int, tuple[int, int, int, str]]:
    """event id -> (qid, devicetype, starttime, QID name, devicetime) as stored."""
    with store.connect(readonly=True) as conn:
        return {
            row[0]: row[1:]
            for row in conn.execute(
                "SELECT e.id, e.qid, e.devicetype, e.starttime, q.name, e.devicetime"
                " FROM events e JOIN qid_records q ON q.qid = e.qid"
                f" WHERE e.id IN ({','.join(str(int(event_id)) for event_id in event_ids)})"
            )
        }


def scenario_receipt(scenario: Scenario, spec: str, seed_value: int) -> ReceiptDelays | None:
    """The receipt delays of a seeded console: ``spec``'s, plus the exact delays the scenario's items
    asked for, and nothing received after the scenario's "now"."""
    receipt = load_receipt_delays(spec, seed=seed_value)
    if receipt is None:
        return None
    exact = dict(receipt.by_record_id)
    for record in scenario.records:
        delay = scenario.delays.get(id(record))
        if delay is not None:
            record_id = parse_record(record).record_id
            if record_id is not None:
                exact[record_id] = delay
    return replace(receipt, by_record_id=exact, not_after_ms=scenario.now_ms)


def seed(
    data_dir: str | Path,
    events: int = DEFAULT_EVENTS,
    seed_value: int = DEFAULT_SEED,
    now_ms: int | None = None,
    receipt_delays: str = "realistic",
    max_payload_bytes: int | None = DEFAULT_MAX_PAYLOAD_BYTES,
) -> dict:
    """Generate the scenario into ``data_dir`` (replacing any previous one) and return the manifest.
    ``receipt_delays``: ``realistic`` (each platform's delay from the record's own time to QRadar's
    receipt, ``starttime``; the records ``Builder.arrives_after`` names get theirs exactly), ``none``, or a
    JSON file (``devconsole.dsm.receipt.load_receipt_delays``). Payloads longer than ``max_payload_bytes``
    are stored cut (None: whole)."""
    data = Path(data_dir)
    data.mkdir(parents=True, exist_ok=True)
    reset_store(data)
    scenario, stream = generate(seed_value, events, now_ms)
    records_path = data / "scenario" / "records.jsonl"
    wanted = {id(record) for record in scenario.records}
    position: dict[int, int] = {}

    def remember_positions() -> Iterator[dict]:
        for index, record in enumerate(stream):
            if id(record) in wanted:
                position[id(record)] = index
            yield record

    record_count = write_records(remember_positions(), records_path)

    receipt = scenario_receipt(scenario, receipt_delays, seed_value)
    if receipt is not None:
        # What re-ingesting records.jsonl needs to store the same events: ingest --receipt-delays FILE
        (data / "scenario" / "receipt_delays.json").write_text(
            json.dumps(receipt_config(receipt), indent=2) + "\n", encoding="utf-8"
        )
    store = EventStore.in_dir(data)
    report = ingest_files(
        store,
        [records_path],
        collect_ids=set(position.values()),
        receipt=receipt,
        max_payload_bytes=max_payload_bytes,
    )
    if report.rejected or report.errors:
        raise RuntimeError(f"scenario records were rejected: {report.rejected[:5]} {report.errors}")
    event_id_of_index = dict(report.event_ids or [])
    stored = StoredEvents({record: event_id_of_index[index] for record, index in position.items()})
    stored.coalesced = {record for record, index in position.items() if index in report.coalesced_indices}
    stored.truncated = {record for record, index in position.items() if index in report.truncated_indices}
    stored.columns = stored_columns(store, (stored.event_id(r) for i in scenario.items for r in i.events))
    offense_entries, offense_of_item = store_offenses(store, scenario.offenses, stored)
    manifest = build_manifest(
        scenario, records_path, record_count, report, stored, offense_entries, offense_of_item, receipt
    )
    manifest_path = data / "scenario" / "manifest.json"
    manifest_path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest


def seed_command(args: Any) -> int:
    """``python -m devconsole seed --data DIR [--events N] [--seed S]``."""
    events = args.events if getattr(args, "events", None) is not None else DEFAULT_EVENTS
    seed_value = args.seed if getattr(args, "seed", None) is not None else DEFAULT_SEED
    started = time.perf_counter()
    manifest = seed(
        args.data,
        events,
        seed_value,
        receipt_delays=getattr(args, "receipt_delays", "realistic"),
        max_payload_bytes=payload_limit(args),
    )
    totals = manifest["totals"]
    kinds: dict[str, int] = {}
    for item in manifest["items"]:
        kinds[item["kind"]] = kinds.get(item["kind"], 0) + 1
    print(
        f"seeded {totals['ingested']} events ({totals['rejected']} rejected)"
        f" from {totals['records']} records in {time.perf_counter() - started:.1f} s; seed {seed_value}"
    )
    print("scenario items: " + ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items())))
    print(
        f"offenses: {len(manifest['offenses'])}; manifest: {Path(args.data) / 'scenario' / 'manifest.json'}"
    )
    return 0
