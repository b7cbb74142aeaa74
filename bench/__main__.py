"""Run every benchmark in one command and write a report with the machine description.

    python -m bench [--quick] [--only NAME ...]

Each benchmark is its own module (``python -m bench.<name>``) printing its figures; this runner calls
them in turn as subprocesses (so one benchmark's memory never inflates another's peak RSS), collects their
output and writes ``bench/reports/report-<UTC time>.md``. ``--quick`` uses small sizes for a smoke run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
from pathlib import Path

# name -> (full-size args, quick args). Full size: 1,000,000 events / detections.
BENCHMARKS: dict[str, tuple[list[str], list[str]]] = {
    "ingest": (["--events", "1000000"], ["--events", "20000"]),
    "aql": (["--events", "1000000"], ["--events", "20000"]),
    "refresh": (["--events", "1000000"], ["--events", "20000"]),
    "reconcile": (["--events", "100000"], ["--events", "10000"]),
    "tuning": ([], ["--detections", "2000"]),
    "api": (["--detections", "1000000"], ["--detections", "20000"]),
    "load": ([], ["--duration", "10"]),
    "hunt_pressure": ([], ["--slow", "10", "--samples", "15"]),
    "profile_requests": ([], ["--requests", "50"]),
    "idle_connections": ([], ["--connections", "16", "--answer-timeout", "10"]),
    "install": ([], ["--runs", "1"]),
}


def machine_description() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores ({cpu}), {mem_gib:.0f} GiB RAM, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, SQLite {__import__('sqlite3').sqlite_version}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHMARKS), help="run only these")
    args = parser.parse_args(argv)

    names = args.only or list(BENCHMARKS)
    started = dt.datetime.now(dt.UTC)
    sections = [
        f"# Benchmark report {started:%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {machine_description()}",
        f"Mode: {'quick' if args.quick else 'full'}",
        "",
    ]
    failed = []
    for name in names:
        module = Path(__file__).with_name(f"{name}.py")
        if not module.exists():
            sections += [f"## {name}", "", "not present in this tree", ""]
            continue
        extra = BENCHMARKS[name][1 if args.quick else 0]
        cmd = [sys.executable, "-m", f"bench.{name}", *extra]
        print(f"== {' '.join(cmd[1:])}", flush=True)
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        print(proc.stdout, end="", flush=True)
        if proc.returncode != 0:
            failed.append(name)
            print(proc.stderr, file=sys.stderr)
        body = proc.stdout.strip() or "(no output)"
        status = "" if proc.returncode == 0 else f" — FAILED (exit {proc.returncode})"
        sections += [f"## {name}{status}", "", "```", body, "```", ""]

    reports = Path(__file__).with_name("reports")
    reports.mkdir(exist_ok=True)
    out = reports / f"report-{started:%Y%m%dT%H%M%S}.md"
    out.write_text("\n".join(sections))
    print(f"report written to {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
