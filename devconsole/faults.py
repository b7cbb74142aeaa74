"""Fault injection for reliability tests.

The next N calls of an endpoint pattern can fail with 500/1020, 503/1010, hang past a client timeout, or
see an expired token (401); Ariel searches can be made slow or end in ERROR. Switch faults on from Python
in-process (``FaultInjector``), or over HTTP with the admin token (``POST /devconsole/faults``, wrapped
by ``FaultClient`` for tests running in another process).
"""

from __future__ import annotations

import fnmatch
import itertools
import threading
from dataclasses import asdict, dataclass, field

import requests

FAULT_KINDS = ("error", "unavailable", "hang", "expired_token")
MAX_HANG_SECONDS = 600.0


@dataclass
class FaultRule:
    id: int
    kind: str  # one of FAULT_KINDS
    path: str  # fnmatch pattern on the request path, e.g. "/api/ariel/searches*"
    method: str | None = None  # None matches every method
    remaining: int = 1
    hang_seconds: float = 120.0

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        return fnmatch.fnmatchcase(path, self.path)


@dataclass
class SearchFaults:
    extra_seconds: float = 0.0  # every search spends at least this long in EXECUTE, reporting progress
    error_remaining: int = 0  # the next N searches end in ERROR
    error_message: str = "Injected failure: the search could not be completed."


@dataclass
class _State:
    rules: list[FaultRule] = field(default_factory=list)
    searches: SearchFaults = field(default_factory=SearchFaults)


class FaultInjector:
    """Thread-safe registry of active faults; the server consults it on every /api request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = _State()
        self._ids = itertools.count(1)
        self._released = threading.Event()  # set by clear() so hanging requests end early

    # --- switching faults on and off -------------------------------------------------------------
    def add(
        self, kind: str, path: str, count: int = 1, method: str | None = None, hang_seconds: float = 120.0
    ) -> FaultRule:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        if count < 1:
            raise ValueError("count must be at least 1")
        if not path.startswith("/"):
            raise ValueError("path must be a pattern starting with '/', e.g. /api/ariel/searches*")
        hang_seconds = min(max(float(hang_seconds), 0.0), MAX_HANG_SECONDS)
        with self._lock:
            rule = FaultRule(
                next(self._ids), kind, path, method.upper() if method else None, count, hang_seconds
            )
            self._state.rules.append(rule)
            return rule

    def slow_searches(self, extra_seconds: float) -> None:
        if extra_seconds < 0:
            raise ValueError("extra_seconds must not be negative")
        with self._lock:
            self._state.searches.extra_seconds = float(extra_seconds)

    def error_searches(self, count: int = 1, message: str | None = None) -> None:
        if count < 0:
            raise ValueError("count must not be negative")
        with self._lock:
            self._state.searches.error_remaining = count
            if message:
                self._state.searches.error_message = message

    def clear(self) -> None:
        with self._lock:
            self._state = _State()
            released, self._released = self._released, threading.Event()
        released.set()

    def state(self) -> dict:
        with self._lock:
            return {
                "rules": [asdict(rule) for rule in self._state.rules],
                "searches": asdict(self._state.searches),
            }

    # --- consulted by the server -----------------------------------------------------------------
    def take(self, method: str, path: str) -> FaultRule | None:
        """Consume one call of the first rule matching this request, if any."""
        with self._lock:
            for rule in self._state.rules:
                if rule.matches(method, path):
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        self._state.rules.remove(rule)
                    return FaultRule(**asdict(rule))
        return None

    def wait_hang(self, seconds: float) -> None:
        """Block a request for ``seconds`` unless the faults are cleared first."""
        with self._lock:
            released = self._released
        released.wait(seconds)

    def search_extra_seconds(self) -> float:
        with self._lock:
            return self._state.searches.extra_seconds

    def take_search_error(self) -> str | None:
        with self._lock:
            if self._state.searches.error_remaining > 0:
                self._state.searches.error_remaining -= 1
                return self._state.searches.error_message
        return None

    def apply(self, body: dict) -> dict:
        """Apply one JSON command from ``POST /devconsole/faults``; raise ValueError naming a bad field."""
        action = body.get("action", "add")
        if action == "add":
            unknown = set(body) - {"action", "kind", "path", "method", "count", "hang_seconds"}
            if unknown:
                raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}")
            if "kind" not in body or "path" not in body:
                raise ValueError("'kind' and 'path' are required")
            rule = self.add(
                str(body["kind"]),
                str(body["path"]),
                int(body.get("count", 1)),
                body.get("method"),
                float(body.get("hang_seconds", 120.0)),
            )
            return {"rule": asdict(rule)}
        if action == "slow_searches":
            self.slow_searches(float(body.get("seconds", 0)))
        elif action == "error_searches":
            self.error_searches(int(body.get("count", 1)), body.get("message"))
        elif action == "clear":
            self.clear()
        else:
            raise ValueError(
                f"unknown action {action!r}; expected add, slow_searches, error_searches or clear"
            )
        return self.state()


class FaultClient:
    """Switch a running dev console's faults from another process (tests)."""

    def __init__(self, base_url: str, admin_token: str, ca_path: str, timeout: float = 10.0) -> None:
        self.url = base_url.rstrip("/") + "/devconsole/faults"
        self.headers = {"SEC": admin_token}
        self.verify = ca_path
        self.timeout = timeout

    def _post(self, body: dict) -> dict:
        response = requests.post(
            self.url, json=body, headers=self.headers, verify=self.verify, timeout=self.timeout
        )
        response.raise_for_status()
        return response.json()

    def add(
        self, kind: str, path: str, count: int = 1, method: str | None = None, hang_seconds: float = 120.0
    ) -> dict:
        body = {"action": "add", "kind": kind, "path": path, "count": count, "hang_seconds": hang_seconds}
        if method:
            body["method"] = method
        return self._post(body)

    def fail(self, path: str, count: int = 1, method: str | None = None) -> dict:
        """The next ``count`` matching calls answer 500 with code 1020."""
        return self.add("error", path, count, method)

    def unavailable(self, path: str, count: int = 1, method: str | None = None) -> dict:
        """The next ``count`` matching calls answer 503 with code 1010."""
        return self.add("unavailable", path, count, method)

    def hang(self, path: str, seconds: float, count: int = 1, method: str | None = None) -> dict:
        return self.add("hang", path, count, method, hang_seconds=seconds)

    def expire_token(self, path: str, count: int = 1, method: str | None = None) -> dict:
        return self.add("expired_token", path, count, method)

    def slow_searches(self, seconds: float) -> dict:
        return self._post({"action": "slow_searches", "seconds": seconds})

    def error_searches(self, count: int = 1, message: str | None = None) -> dict:
        body: dict = {"action": "error_searches", "count": count}
        if message:
            body["message"] = message
        return self._post(body)

    def clear(self) -> dict:
        return self._post({"action": "clear"})

    def state(self) -> dict:
        response = requests.get(self.url, headers=self.headers, verify=self.verify, timeout=self.timeout)
        response.raise_for_status()
        return response.json()
