"""Receipt time vs event time (devconsole.dsm.receipt): ``starttime`` is when QRadar received the record,
``devicetime`` the record's own time; each platform arrives late by its own, seeded delay (Office 365
minutes to hours behind Entra); ``devicetime`` is an Ariel column the AQL engine filters and sorts on."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from devconsole.aql import AqlEngine
from devconsole.dsm.receipt import REALISTIC_DELAYS, DelayRange, ReceiptDelays, load_receipt_delays
from devconsole.ingest import ingest_records
from devconsole.scenario import seed
from devconsole.store import EventStore
from tests.devconsole.test_ingest import (
    cloudtrail_create_user,
    entra_add_user,
    gcp_create_service_account,
    o365_add_user,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
MINUTE, HOUR = 60_000, 3_600_000
TYPES = {"cloudtrail": 347, "entra": 445, "o365": 397, "gcp": 449}


def iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def many_records(count: int, base_ms: int) -> list[dict]:
    """``count`` records of each platform, one second apart, each with its own id."""
    records = []
    for n in range(count):
        t = iso(base_ms + n * 1000)
        records.append(cloudtrail_create_user(eventTime=t, eventID=f"ct-{n}"))
        entra = entra_add_user(time=t)
        entra["properties"] = {**entra["properties"], "id": f"entra-{n}", "activityDateTime": t}
        records.append(entra)
        records.append(o365_add_user(CreationTime=t[:-1], Id=f"o365-{n}"))
        gcp = gcp_create_service_account()
        gcp.update(timestamp=t, insertId=f"gcp-{n}")
        records.append(gcp)
    return records


def stored(store: EventStore) -> list[dict]:
    with closing(store.connect(readonly=True)) as conn:
        conn.row_factory = lambda cur, row: {d[0]: v for d, v in zip(cur.description, row, strict=True)}
        return conn.execute("SELECT * FROM events ORDER BY id").fetchall()


def delays_by_type(rows: list[dict]) -> dict[int, list[int]]:
    found: dict[int, list[int]] = {}
    for row in rows:
        found.setdefault(row["devicetype"], []).append(row["starttime"] - row["devicetime"])
    return found


def test_without_receipt_delays_starttime_is_the_records_own_time(tmp_path) -> None:
    store = EventStore(tmp_path / "events.db")
    ingest_records(store, many_records(2, 1_796_000_000_000))
    assert all(row["starttime"] == row["devicetime"] for row in stored(store))


def test_realistic_delays_per_platform_office_365_hours_behind_entra(tmp_path) -> None:
    base = 1_796_000_000_000
    store = EventStore(tmp_path / "events.db")
    report = ingest_records(store, many_records(60, base), receipt=ReceiptDelays.realistic(seed=5))
    assert report.rejected == []
    rows = stored(store)
    for row in rows:
        # devicetime is the record's own time (eventTime / activityDateTime / CreationTime / timestamp)
        assert (row["devicetime"] - base) % 1000 == 0 and 0 <= row["devicetime"] - base < 60_000
    delays = delays_by_type(rows)
    for type_id, found in delays.items():
        span = REALISTIC_DELAYS[type_id]
        assert all(span.floor_ms <= d <= span.ceiling_ms for d in found), type_id
        assert len(set(found)) > 30, "delays vary from record to record"
    median = {t: sorted(d)[len(d) // 2] for t, d in delays.items()}
    assert median[TYPES["o365"]] >= 30 * MINUTE > 10 * MINUTE >= median[TYPES["entra"]]
    assert max(delays[TYPES["o365"]]) > HOUR
    assert median[TYPES["gcp"]] < median[TYPES["entra"]] < median[TYPES["o365"]]
    # receipt order is not event order: the platforms interleave differently
    by_receipt = sorted(rows, key=lambda r: (r["starttime"], r["id"]))
    assert [r["id"] for r in by_receipt] != [r["id"] for r in sorted(rows, key=lambda r: r["devicetime"])]


def test_delays_are_deterministic_under_a_seed(tmp_path) -> None:
    records = many_records(20, 1_796_000_000_000)
    runs = {}
    for name, seed_value in (("a", 11), ("b", 11), ("c", 12)):
        store = EventStore(tmp_path / name / "events.db")
        ingest_records(store, records, receipt=ReceiptDelays.realistic(seed=seed_value))
        runs[name] = [row["starttime"] for row in stored(store)]
    assert runs["a"] == runs["b"]
    assert runs["a"] != runs["c"]


def test_exact_delays_by_record_id_and_the_latest_receipt(tmp_path) -> None:
    base = 1_796_000_000_000
    store = EventStore(tmp_path / "events.db")
    receipt = ReceiptDelays(
        {397: DelayRange(HOUR, HOUR, HOUR)},
        by_record_id={"ct-0": 12 * MINUTE, "o365-1": 40 * MINUTE},
        not_after_ms=base + 50 * MINUTE,
    )
    ingest_records(store, many_records(2, base), receipt=receipt)
    delays = {
        (row["devicetype"], row["devicetime"] - base): row["starttime"] - row["devicetime"]
        for row in stored(store)
    }
    assert delays[(347, 0)] == 12 * MINUTE  # exact, by eventID
    assert delays[(347, 1000)] == 0  # CloudTrail has no range here: received at once
    assert delays[(397, 1000)] == 40 * MINUTE  # exact, by Id
    assert delays[(397, 0)] == 50 * MINUTE  # an hour's delay, cut at the latest receipt time
    with pytest.raises(ValueError, match="floor <= typical <= ceiling"):
        DelayRange(HOUR, MINUTE, 2 * HOUR)


def test_devicetime_is_an_ariel_column(tmp_path) -> None:
    base = 1_796_000_000_000
    store = EventStore(tmp_path / "events.db")
    ingest_records(store, many_records(30, base), receipt=ReceiptDelays.realistic(seed=3))
    engine = AqlEngine(store, tz=dt.UTC)
    now = base + 8 * HOUR
    query = engine.prepare(
        "SELECT devicetime, starttime, starttime - devicetime AS lag, LOGSOURCETYPENAME(devicetype) AS t"
        " FROM events WHERE devicetime >= 1796000010000 AND starttime - devicetime > 900000"
        " ORDER BY devicetime DESC START '2026-11-29 00:00:00' STOP '2026-12-02 00:00:00'",
        now,
    )
    rows = engine.execute(query)
    expected = [r for r in stored(store) if r["devicetime"] >= base + 10_000]
    expected = [r for r in expected if r["starttime"] - r["devicetime"] > 15 * MINUTE]
    assert rows and len(rows) == len(expected)
    assert [r["devicetime"] for r in rows] == sorted((r["devicetime"] for r in expected), reverse=True)
    assert all(r["lag"] == r["starttime"] - r["devicetime"] > 15 * MINUTE for r in rows)
    assert {r["t"] for r in rows} <= {"Microsoft Office 365", "Amazon AWS CloudTrail"}
    assert "Microsoft Office 365" in {r["t"] for r in rows}


def test_ingest_command_reads_a_delay_file(tmp_path) -> None:
    base = 1_796_000_000_000
    raw = tmp_path / "records.jsonl"
    raw.write_text("\n".join(json.dumps(r) for r in many_records(1, base)) + "\n")
    config = tmp_path / "delays.json"
    config.write_text(
        json.dumps(
            {"types": {"445": {"floor_s": 60, "typical_s": 60, "ceiling_s": 60}}, "records": {"o365-0": 2400}}
        )
    )
    data = tmp_path / "data"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "devconsole",
            "ingest",
            "--data",
            str(data),
            "--receipt-delays",
            str(config),
            str(raw),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    delays = {
        row["devicetype"]: row["starttime"] - row["devicetime"]
        for row in stored(EventStore(data / "events.db"))
    }
    assert delays == {347: 0, 445: MINUTE, 397: 40 * MINUTE, 449: 0}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"records": {"x": -1}}))
    refused = subprocess.run(
        [
            sys.executable,
            "-m",
            "devconsole",
            "ingest",
            "--data",
            str(data),
            "--receipt-delays",
            str(bad),
            str(raw),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 2 and "records.x must be a number of seconds" in refused.stderr
    assert load_receipt_delays("none") is None


def test_seeded_manifest_says_which_attacks_depend_on_receipt_delays(tmp_path) -> None:
    manifest = seed(tmp_path, 1500, 9)
    behaviour = manifest["behaviours"]["receipt_delay"]
    assert behaviour["enabled"] is True and behaviour["ranges_s"]["397"]["typical"] == 3600
    dependent = {i["key"]: i["depends_on"] for i in manifest["items"] if "receipt_delay" in i["depends_on"]}
    assert set(dependent) == {"atomic-2-azuread-new-user", "seed-test-3-aws-user-access-key"}
    for entry in manifest["items"]:
        for event in entry["events"]:
            assert event["devicetime"] <= event["starttime"] <= manifest["generated_at_ms"]
    off = seed(tmp_path / "off", 1500, 9, receipt_delays="none")
    assert off["behaviours"]["receipt_delay"]["enabled"] is False
    assert all(e["devicetime"] == e["starttime"] for i in off["items"] for e in i["events"])
