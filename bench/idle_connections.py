"""Idle connections vs gunicorn's worker threads: how long fresh requests wait while N idle ones are held.

    python -m bench.idle_connections [--connections 48] [--answer-timeout 20]
    python -m bench.idle_connections --configs stock --gunicorn-path /tmp/gunicorn-27.0.1  # another release

Starts the app under gunicorn (offline: QRadar is a closed port, /debug needs none) once per server
configuration, and for each kind of idle connection holds ``--connections`` of them, then sends 8 fresh
``GET /debug`` at once (so they reach every worker) and reports the slowest answer, or that some got none
within ``--answer-timeout``. Configurations: ``shipped`` = container/conf/gunicorn.conf.py (what the
container runs), ``stock`` = the options supervisord used before it (``--workers 2 --threads 4
--preload`` with gunicorn's own gthread worker). Kinds of idle connection:

* ``silent``   connected, nothing sent (a preconnect);
* ``kept``     kept alive after one ``GET /debug``;
* ``rejected`` kept alive after a POST with a 64 KiB body the app rejected unread (403, no CSRF header);
* ``partial``  half a request line and headers sent, then nothing (a stalled client).

``--gunicorn-path`` puts a directory first on the server's PYTHONPATH (an unpacked wheel of another
gunicorn release) to compare releases under the same load.
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

from devconsole.launcher import GUNICORN_CONF

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {
    "stock": [
        "--workers",
        "2",
        "--threads",
        "4",
        "--timeout",
        "120",
        "--graceful-timeout",
        "20",
        "--preload",
    ],
    "shipped": ["--config", str(GUNICORN_CONF)],
}
KINDS = ("silent", "kept", "rejected", "partial")
FRESH = 8


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_debug(port: int, timeout: float) -> float | None:
    """Seconds until a fresh ``GET /debug`` was answered 200, None when no answer came in ``timeout``."""
    start = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/debug", headers={"Connection": "close"})
        response = conn.getresponse()
        response.read()
        return time.monotonic() - start if response.status == 200 else None
    except OSError:
        return None
    finally:
        conn.close()


def hold(kind: str, port: int, count: int, stack: ExitStack, timeout: float) -> None:
    """Open ``count`` idle connections of ``kind``; requests are all sent before any answer is awaited."""
    conns: list[http.client.HTTPConnection] = []
    for _ in range(count):
        if kind in ("silent", "partial"):
            sock = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=timeout))
            if kind == "partial":
                sock.sendall(b"GET /debug HTTP/1.1\r\nHost: bench\r\n")
            continue
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        stack.callback(conn.close)
        if kind == "kept":
            conn.request("GET", "/debug")
        else:
            conn.request(
                "POST", "/api/refresh", body=b"x" * 65536, headers={"Content-Type": "application/json"}
            )
        conns.append(conn)
    deadline = time.monotonic() + timeout
    for conn in conns:
        try:
            conn.sock.settimeout(max(0.1, deadline - time.monotonic()))
            conn.getresponse().read()
        except OSError:
            pass  # no answer: the server is stalled already, which the fresh requests then report


def measure(config: str, connections: int, timeout: float, gunicorn_path: str | None) -> dict[str, str]:
    port = free_port()
    store = tempfile.mkdtemp(prefix="bench-idle-")
    env = {
        **os.environ,
        "QRADAR_CONSOLE_FQDN": f"127.0.0.1:{free_port()}",
        "SEC_ADMIN_TOKEN": "unused",
        "QRADAR_APP_ID": "1101",
        "APP_STORE_DIR": store,
        "APP_QRADAR_TRANSPORT": "http",
    }
    if gunicorn_path:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [gunicorn_path, env.get("PYTHONPATH")]))
    with open(Path(store) / "gunicorn.log", "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--bind",
                f"127.0.0.1:{port}",
                *CONFIGS[config],
                "app:create_app()",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    results: dict[str, str] = {}
    try:
        deadline = time.monotonic() + 60
        while get_debug(port, 2) is None:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"gunicorn ({config}) did not start; see {store}/gunicorn.log")
            time.sleep(0.2)
        version = subprocess.run(
            [sys.executable, "-c", "import gunicorn; print(gunicorn.__version__)"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        results["gunicorn"] = version
        for kind in KINDS:
            with ExitStack() as stack:
                hold(kind, port, connections, stack, timeout)
                with ThreadPoolExecutor(FRESH) as pool:
                    waits = list(pool.map(lambda _: get_debug(port, timeout), range(FRESH)))
            answered = [w for w in waits if w is not None]
            results[kind] = (
                f"{max(answered):.2f} s"
                if len(answered) == FRESH
                else f"{FRESH - len(answered)}/{FRESH} unanswered in {timeout:g} s"
            )
            # Let the server close what was held before the next kind.
            recover = time.monotonic() + 60
            while get_debug(port, 5) is None and time.monotonic() < recover:
                pass
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.idle_connections", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--connections", type=int, default=48, help="idle connections held of each kind")
    parser.add_argument("--answer-timeout", type=float, default=20.0, help="seconds a fresh request may take")
    parser.add_argument("--configs", nargs="*", choices=sorted(CONFIGS), default=["stock", "shipped"])
    parser.add_argument("--gunicorn-path", help="directory put first on the server's PYTHONPATH")
    args = parser.parse_args(argv)

    print(
        f"Slowest of {FRESH} fresh GET /debug while {args.connections} idle connections of one kind are held"
    )
    print()
    print("| Server | " + " | ".join(KINDS) + " |")
    print("|---" * (len(KINDS) + 1) + "|")
    for config in args.configs:
        results = measure(config, args.connections, args.answer_timeout, args.gunicorn_path)
        cells = " | ".join(results[k] for k in KINDS)
        print(f"| {config} (gunicorn {results['gunicorn']}) | {cells} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
