"""`make run`'s launcher: console + gunicorn + refresher wired together through qpylib, URL printed, Ctrl-C
stops all."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_run_all_serves_the_tab_through_the_console_and_stops_on_ctrl_c(devconsole, tmp_path):
    data = tmp_path / "devconsole"
    # An already seeded console (run_all seeds only when events.db is missing).
    shutil.copytree(devconsole.data_dir, data, ignore=shutil.ignore_patterns("*.log", "*-wal", "*-shm"))
    console_port, app_port = free_port(), free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devconsole.run_all",
            "--data",
            str(data),
            "--app-root",
            str(tmp_path / "app-root"),
            "--console-port",
            str(console_port),
            "--app-port",
            str(app_port),
            "--app-id",
            "4242",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 120
        url = None
        while url is None:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "".join(lines[-30:])
            lines.append(line)
            if "open the console page" in line:
                url = line.split()[-1]
            assert time.monotonic() < deadline, "".join(lines[-30:])
        assert url == f"https://127.0.0.1:{console_port}/console/"
        session = requests.Session()
        session.trust_env = False
        session.verify = str(data / "ca.pem")
        assert session.get(url, timeout=10).status_code == 200
        session.cookies.set("SEC", devconsole.tokens["analyst"])
        tab_url = f"https://127.0.0.1:{console_port}/console/plugins/4242/app_proxy/tab/?ui=new&theme=dark"
        tab = session.get(tab_url, timeout=30)
        assert tab.status_code == 200 and "cds--g100" in tab.text
        children = [
            int(pid)
            for pid in subprocess.run(
                ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True
            ).stdout.split()
        ]
        assert len(children) == 3  # dev console, gunicorn master, refresher
        # As inside QRadar: the refresher goes through qpylib too (its first log line says so).
        while not any("refresher started:" in line for line in lines):
            line = proc.stdout.readline()
            assert line and time.monotonic() < deadline, "".join(lines[-30:])
            lines.append(line)
        assert "refresher started: QRadar through qpylib" in "".join(lines)
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, rest[-2000:]
    assert "stopping" in rest
    # qpylib's store (APP_ROOT/store) and log (store/log/app.log).
    store = tmp_path / "app-root" / "store"
    assert "QRadar through qpylib" in (store / "log" / "app.log").read_text()
    assert (store / "cloud_account_watch.db").is_file()
    time.sleep(0.5)
    assert [pid for pid in children if _alive(pid)] == []
