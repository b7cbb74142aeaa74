"""Install figures: time from uploading build.sh's zip to the app RUNNING, and the installed app's
resident memory (all its processes) next to the manifest's ``resources.memory``.

    python -m bench.install [--runs 3] [--events 20000]

Each run installs the zip through ``/api/gui_app_framework`` (authorized as admin), waits for the
supervisord refresher's first cycle, uses the tab's API through the console proxy, samples the resident
memory of supervisord's children, then uninstalls. The base-image environment is built before the first
run (cached in var/app-base), as a console has its base image before any install.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from devconsole.apps.deploy import ConsoleClient, deploy
from devconsole.apps.runtime import ensure_base_image
from devconsole.launcher import start_serve, stop_serve

ROOT = Path(__file__).resolve().parents[1]


def _session(base_url: str, token: str, ca: str) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = ca
    session.cookies.set("SEC", token)
    return session


def one_run(client: ConsoleClient, session: requests.Session, base_url: str, zip_bytes: bytes) -> dict:
    done = deploy(client, zip_bytes, user_id=1)
    app_id = done.application_id
    proxy = f"{base_url}/console/plugins/{app_id}/app_proxy"
    deadline = time.monotonic() + 300
    while True:
        status = session.get(f"{proxy}/api/status", timeout=60).json()
        if status.get("runs", 0) >= 1 and not status.get("running"):
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"no refresh cycle within 300 s: {status}")
        time.sleep(0.5)
    after_refresh = client.application(app_id)["devconsole"]["resident_memory"]
    peak = dict(after_refresh)
    for _ in range(20):
        session.get(f"{proxy}/tab/", timeout=60)
        session.get(f"{proxy}/api/detections", params={"limit": 100}, timeout=60)
        session.get(f"{proxy}/dashboard/item", timeout=60)
        sample = client.application(app_id)["devconsole"]["resident_memory"]
        if sample["with_supervisord_rss_mb"] > peak["with_supervisord_rss_mb"]:
            peak = sample
    info = client.application(app_id)
    client.uninstall(app_id)
    return {
        "upload_to_running_s": info["devconsole"]["upload_to_running_s"],
        "after_refresh": after_refresh,
        "peak": peak,
        "memory_mb": info["application_state"]["memory"],
        "detections": status["counts"]["detections"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.install", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--events", type=int, default=20000)
    args = parser.parse_args(argv)
    ensure_base_image()
    built = subprocess.run(["bash", "build.sh"], cwd=ROOT, capture_output=True, text=True, check=True)
    archive = ROOT / built.stdout.strip().splitlines()[-1].split()[1]
    zip_bytes = archive.read_bytes()
    with tempfile.TemporaryDirectory(prefix="bench-install-") as tmp:
        data = Path(tmp)
        subprocess.run(
            [sys.executable, "-m", "devconsole", "seed", "--data", str(data), "--events", str(args.events)],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        serve = start_serve(data)
        try:
            tokens = json.loads((data / "tokens.json").read_text(encoding="utf-8"))
            client = ConsoleClient(serve.base_url, tokens["admin"], serve.ca_path)
            session = _session(serve.base_url, tokens["admin"], serve.ca_path)
            runs = [one_run(client, session, serve.base_url, zip_bytes) for _ in range(args.runs)]
        finally:
            stop_serve(serve.process)
    times = [r["upload_to_running_s"] for r in runs]
    print(
        f"install of {archive.name} ({len(zip_bytes)} bytes), {args.runs} runs, console seeded with {args.events} events"
    )
    print(
        f"upload -> RUNNING (/debug 200): median {statistics.median(times):.1f} s, min {min(times):.1f} s, max {max(times):.1f} s"
    )
    for index, run in enumerate(runs, 1):
        refresh, peak = run["after_refresh"], run["peak"]
        print(
            f"run {index}: {run['upload_to_running_s']:.1f} s; resident after the first refresh "
            f"{refresh['app_rss_mb']} MB in {refresh['processes']} processes "
            f"({refresh['with_supervisord_rss_mb']} MB with supervisord, PSS {refresh['app_pss_mb']} MB); peak while using the tab "
            f"{peak['app_rss_mb']} MB ({peak['with_supervisord_rss_mb']} MB, PSS {peak['app_pss_mb']} MB); resources.memory {run['memory_mb']} MB; "
            f"{run['detections']} detections"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
