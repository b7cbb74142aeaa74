"""Late-data reconciliation cost per day of events, against the refresh of the same day.

    python -m bench.reconcile [--events N] [--late-percent P] [--late-shape burst|scattered]

Builds a dev console data directory holding N matching CloudTrail ``CreateUser`` events over the last
23 hours (`bench.refresh`'s data) plus P % more on a second log source that QRadar has received but not
stored yet (``searchable_at`` in the future: the dev console's store delay) — received within one hour
4-5 hours ago (``burst``: a collector's backlog) or spread over the day (``scattered``) — serves it with
``python -m devconsole serve`` and runs, in this process, against it:

1. **baseline**: the detection refresh of the day (the backfill, cycles until caught up);
2. **fault-free reconciliation**, twice: the same day's per-hour counts compared with what the refresh
   read (the first also re-reads the minutes the backfill's cut searches read in two parts);
3. the held events are released (stored now, hours after their starttime); one incremental refresh (which
   cannot see them: they are behind its overlap), then the **reconciliation** that finds them;
4. for comparison, the reconciliation with no per-minute counts stored (it must re-read every minute that
   has events: what a plain 24-hour re-query costs).

Rows fetched are every row of every Ariel search the step ran (per-minute count rows included); CPU is
this process's (the app side: the dev console's AQL work runs in its own process). Speed lives here,
never in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.refresh import HOUR, build_console_data, insert_span, now_ms
from devconsole.launcher import start_serve, stop_serve

ROOT = Path(__file__).resolve().parents[1]


def measured(step):
    """(result, wall seconds, CPU seconds of this process) of ``step()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = step()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reconcile", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="matching events in the day")
    parser.add_argument("--late-percent", type=float, default=1.0, help="events stored hours late, in %%")
    parser.add_argument("--late-shape", choices=("burst", "scattered"), default="burst")
    parser.add_argument("--payload-bytes", type=int, default=700, help="approximate size of each payload")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))

    with tempfile.TemporaryDirectory(prefix="bench-reconcile-") as tmp:
        tmp_path = Path(tmp)
        data_dir = tmp_path / "console"
        now = now_ms()
        start = now - 23 * HOUR
        late_span = (
            (start, now - 3 * HOUR // 2)
            if args.late_shape == "scattered"
            else (now - 5 * HOUR, now - 4 * HOUR)
        )
        total = int(args.events / 0.99)
        store, ids = build_console_data(data_dir, total, start, now - 60_000, args.payload_bytes)
        late_count = max(1, int(total * args.late_percent / 100))
        late_ids = {**ids, "ls": store.ensure_log_source("bench-cloudtrail-late", 347)}
        insert_span(store, late_ids, total, late_count, *late_span, args.payload_bytes)
        with store.connect() as conn:  # received, not yet stored: the backlog is released in step 3
            conn.execute(
                "UPDATE events SET searchable_at = ? WHERE logsourceid = ?",
                (now + 86_400_000, late_ids["ls"]),
            )
        print(
            f"events: {total:,} searchable over 23 h ({args.events:,} matching, ~{args.payload_bytes} bytes), "
            f"{late_count:,} more held back ({args.late_percent:g} %, {args.late_shape}: received "
            f"{(now - late_span[1]) / HOUR:g}-{(now - late_span[0]) / HOUR:g} h ago)"
        )
        served = start_serve(data_dir, "--manifest", str(ROOT / "manifest.json"), "--search-reuse", "0")
        try:
            tokens = json.loads((data_dir / "tokens.json").read_text())
            env = {
                "QRADAR_CONSOLE_FQDN": served.base_url.split("//", 1)[1],
                "SEC_ADMIN_TOKEN": tokens["service"],
                "REQUESTS_CA_BUNDLE": str(data_dir / "ca.pem"),
            }
            os.environ["APP_QRADAR_TRANSPORT"] = "http"
            from app import settings
            from app.detection import reconcile, refresher
            from app.features import register_settings
            from app.qradar import Gateway
            from app.store.db import connect

            register_settings()
            gw = Gateway.from_env(env, poll_wait_s=1)
            conn = connect(tmp_path / "app.db")
            settings.update(conn, {"search_page_size": 10_000}, actor="bench")

            def backfill() -> tuple[int, int]:
                rows = cycles = 0
                while True:
                    result = refresher.refresh_once(conn, gw)
                    assert result.status == "ok", result.error
                    cycles += 1
                    rows += (
                        result.rows_fetched
                        + result.follow_on_rows
                        + int(result.details.get("count_rows") or 0)
                    )
                    if result.details.get("resume_ms") is None:
                        return rows, cycles

            (rows, cycles), wall, cpu = measured(backfill)
            stored = conn.execute("SELECT COUNT(*) FROM detections").fetchone()[0]
            print(
                f"baseline, refresh of the day: {rows:,} rows fetched in {cycles} cycle(s), {stored:,} detections, "
                f"{wall:.1f} s wall, {cpu:.1f} s CPU (app side)"
            )
            base_rows, base_wall, base_cpu = rows, wall, cpu

            def report(label: str, result, wall: float, cpu: float) -> None:
                assert result.status == "ok", result.error
                fetched = result.count_rows + result.rows_fetched
                print(
                    f"{label}: {fetched:,} rows fetched ({result.count_rows:,} per-minute count rows + "
                    f"{result.rows_fetched:,} event rows of {sum(result.changed_minutes.values()):,} changed "
                    f"minutes), {result.inserted:,} new; {wall:.2f} s wall, {cpu:.2f} s CPU; "
                    f"vs the day's refresh: rows {fetched / base_rows:.4f}x, wall {wall / base_wall:.3f}x, "
                    f"CPU {cpu / max(base_cpu, 1e-9):.3f}x"
                )

            report("fault-free reconciliation", *measured(lambda: reconcile.reconcile_once(conn, gw)))
            # The first one re-read the minutes the backfill's cut searches read in two parts; from now on
            # each hourly run asks only the per-hour counts: per day, 24 of these.
            report(
                "fault-free reconciliation, next run", *measured(lambda: reconcile.reconcile_once(conn, gw))
            )

            released = store.release_pending()
            incremental = refresher.refresh_once(conn, gw)
            assert incremental.status == "ok", incremental.error
            print(
                f"released {released:,} held events; the incremental refresh after it stored {incremental.inserted:,}"
            )
            report("reconciliation after the release", *measured(lambda: reconcile.reconcile_once(conn, gw)))
            found = conn.execute(
                "SELECT COUNT(*) FROM detections WHERE found_by = 'reconciliation'"
            ).fetchone()[0]
            lag = refresher.status(conn)["late_data"]["max_lag_ms"]
            print(f"found only by reconciliation: {found:,}; largest lag {lag / HOUR:.1f} h")

            with conn:
                conn.execute("DELETE FROM ariel_minute_counts")
            report(
                "without stored per-minute counts (a plain re-query)",
                *measured(lambda: reconcile.reconcile_once(conn, gw)),
            )
            conn.close()
        finally:
            stop_serve(served.process)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
