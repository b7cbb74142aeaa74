"""Ingest rate of the dev console's DSM-style ingestion for N raw records (default 1,000,000).

    python -m bench.ingest [--events N] [--batch-size B] [--keep DIR]

Generates the scenario's unrelated-event mix (CloudTrail, Entra audit and sign-in, Office 365, Google
Cloud, Azure Activity) as JSON lines into a temporary file, then times ``ingest_files`` on it: reading,
JSON parsing, source detection, DSM mapping and batched SQLite inserts (one transaction per batch).
Prints records/s, the store's size and the process's peak RSS. Generation is timed separately.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

from devconsole.ingest import DEFAULT_BATCH_SIZE, ingest_files
from devconsole.scenario import unrelated_records, write_records
from devconsole.store import EventStore


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def run(events: int, batch_size: int, work: Path) -> dict[str, float]:
    records_path = work / "records.jsonl"
    started = time.perf_counter()
    written = write_records(unrelated_records(events), records_path)
    generated_s = time.perf_counter() - started

    store = EventStore.in_dir(work / "data")
    started, cpu_started = time.perf_counter(), time.process_time()
    report = ingest_files(store, [records_path], batch_size=batch_size)
    ingest_s = time.perf_counter() - started
    ingest_cpu_s = time.process_time() - cpu_started
    db_size = sum(p.stat().st_size for p in (work / "data").glob("events.db*"))
    return {
        "records": written,
        "ingested": report.ingested,
        "rejected": len(report.rejected),
        "generate_s": generated_s,
        "ingest_s": ingest_s,
        "rate": report.ingested / ingest_s if ingest_s else 0.0,
        "cpu_s": ingest_cpu_s,
        "cpu_rate": report.ingested / ingest_cpu_s if ingest_cpu_s else 0.0,
        "load": os.getloadavg()[0],
        "file_mib": records_path.stat().st_size / 2**20,
        "db_mib": db_size / 2**20,
        "peak_rss_mib": peak_rss_mib(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--keep", help="work in this directory and keep it (default: a temporary one)")
    args = parser.parse_args(argv)

    if args.keep:
        work = Path(args.keep)
        work.mkdir(parents=True, exist_ok=True)
        figures = run(args.events, args.batch_size, work)
    else:
        with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
            figures = run(args.events, args.batch_size, Path(tmp))
    print(
        f"ingest: {figures['ingested']:,} of {figures['records']:,} records "
        f"({figures['rejected']} rejected), batch size {args.batch_size}"
    )
    print(f"  generate records  {figures['generate_s']:8.1f} s   ({figures['file_mib']:.0f} MiB JSON lines)")
    print(f"  ingest (wall)     {figures['ingest_s']:8.1f} s   = {figures['rate']:,.0f} records/s")
    print(f"  ingest (CPU)      {figures['cpu_s']:8.1f} s   = {figures['cpu_rate']:,.0f} records/CPU-s")
    print(f"  events.db         {figures['db_mib']:8.0f} MiB")
    print(f"  peak RSS          {figures['peak_rss_mib']:8.0f} MiB")
    print(f"  load average      {figures['load']:8.1f}     (1 min, at the end; other work slows wall clock)")
    return 0 if figures["rejected"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
