"""gunicorn settings for the app: the one place for them (supervisord, ``make run`` and the tests' live app).

Used as ``python3 -m gunicorn --config container/conf/gunicorn.conf.py --bind HOST:PORT 'app:create_app()'``
from the app root; the caller adds only its bind address and log files (command-line options override
what is set here). Pinned to gunicorn 23.0.0 (requirements/app.txt): ``LivenessThreadWorker`` below
relies on that version's gthread internals, and tests/reliability/test_idle_connections.py checks it.

Why a worker class of our own. gunicorn's threaded worker keeps an idle connection in its poller (no
thread), and hands it to a thread as soon as the socket is readable, where it blocks reading a whole
request with no time limit. Two things make a socket readable without a request following, and each
parked one of the 8 threads for as long as the client kept the connection open (measured: with 16 such
connections a fresh request got no answer in 60 s):

* a kept-alive connection whose previous request carried a body the app did not read (it answered
  400/401/403/405/413 first): gunicorn discards the leftover bytes only when the socket turns readable
  again, then waits for a next request the client may never send (API fuzzing in CI stalled so;
  QRadar's proxy and browsers keep connections alive the same way);
* a client that sends part of a request and then nothing (a stalled or slow client).

The worker drains a request's unread body right after its response, so a kept-alive socket is readable
again only when the next request arrives, and bounds every blocking socket call in a thread: the rest
of a request's headers must come within ``HEADER_TIMEOUT_S``, each later read or write within
``CLIENT_IO_TIMEOUT_S``. Newer gunicorn releases were measured and not taken: 24.x hands each new
connection to a thread at once and 25.x-27.x let a thread wait up to 5 s for its first byte, so 48
connected-but-silent sockets (a proxy's or browser's preconnects) held a fresh request for 54 s on
27.0.1, where 23.0.0 answers in milliseconds.
"""

from __future__ import annotations

import time
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

# Memory: two workers fit resources.memory (300 MB, README "Memory"); threads are cheap, processes not.
workers = 2
threads = 4
# Above the app's own QRadar budgets (interactive searches: 120 s), so a slow search is not killed.
timeout = 120
graceful_timeout = 20
# Schema migrations run once in the master before the workers fork.
preload_app = True
# Idle kept-alive connections wait in the poller, not in a thread, so they cost a file descriptor only;
# gunicorn closes them after this many seconds (its default, written down so it is a decision).
keepalive = 2

# A thread takes a connection once its first bytes arrived; the rest of the request line and headers
# follow within milliseconds from QRadar's proxy (or a browser). A client that stalls mid-headers holds
# the thread this long instead of forever.
HEADER_TIMEOUT_S = 5.0
# Once the headers are in: the longest one read of the body, or one response write to a client that
# stopped reading, may take. Generous, since this can be a real upload or a slow reader.
CLIENT_IO_TIMEOUT_S = 20.0
# A body the app did not read is drained (then the connection is kept alive) up to this size and time;
# beyond that the connection is closed after the response instead. Well above the app's 1 MiB request
# limit: a client still sending a refused oversized body must be read to the end, or closing the socket
# under it resets the connection and the client never sees its 413 (the API fuzz test caught that).
DRAIN_MAX_BYTES = 8 * 1024 * 1024
DRAIN_TIMEOUT_S = 5.0


def drain_unread_body(req: Any, deadline: float, max_bytes: int = DRAIN_MAX_BYTES) -> bool:
    """Read and drop the rest of ``req``'s body; True when it ended within ``deadline`` and ``max_bytes``."""
    drained = 0
    try:
        while chunk := req.body.read(8192):
            drained += len(chunk)
            if drained > max_bytes or time.monotonic() > deadline:
                return False
    except Exception:  # a timeout, a reset or a malformed chunk: the connection cannot be reused
        return False
    return True


class LivenessThreadWorker(ThreadWorker):
    """gunicorn 23.0.0's gthread worker whose threads never wait on one client without a time limit."""

    def handle(self, conn: Any) -> Any:
        while True:
            # conn.init() made the socket blocking without a timeout just before this runs in the thread;
            # handle() parses the request headers, then calls handle_request().
            conn.sock.settimeout(HEADER_TIMEOUT_S)
            keepalive, conn = super().handle(conn)
            # The body drain may have read the start of the client's next request along with the end of
            # the body. Those bytes sit in the parser's buffer, not on the socket, so the poller would
            # never wake for them: serve that request now, on this thread.
            if not (keepalive and conn.parser.unreader.buf.getvalue()):
                return keepalive, conn

    def handle_request(self, req: Any, conn: Any) -> bool:
        conn.sock.settimeout(CLIENT_IO_TIMEOUT_S)
        keepalive = super().handle_request(req, conn)
        if not keepalive:
            return False
        # Leftover body bytes would make the kept-alive socket readable and park a thread on it.
        conn.sock.settimeout(DRAIN_TIMEOUT_S)
        return drain_unread_body(req, time.monotonic() + DRAIN_TIMEOUT_S)


worker_class = LivenessThreadWorker
