"""Shared state of one running dev console and per-request helpers (user, database connection)."""

from __future__ import annotations

import base64
import binascii
import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import current_app, g, request

from devconsole.faults import FaultInjector
from devconsole.searches import SearchManager
from devconsole.store import EventStore
from devconsole.users import TokenRegistry, User


@dataclass
class ServerConfig:
    data_dir: Path
    port: int = 8443
    app_url: str = "http://127.0.0.1:5000"
    manifest_path: Path = Path("manifest.json")
    app_id: int = 1101
    default_window_ms: int = 5 * 60_000  # AQL guide's default window; API 26.0 says 60 s (UNCONFIRMED)
    search_retention_seconds: float = 1800.0
    search_reuse_seconds: float = 30.0
    max_concurrent_searches: int = 2
    proxy_timeout_seconds: float = 300.0
    # Console pages' Content-Security-Policy; off only for tests that must see whether the app's injected
    # HTML is safe on its own (real QRadar's CSP is unknown).
    console_csp: bool = True


class ManifestLoader:
    """Reads the app's manifest.json, re-reading it when the file changes (the app is developed live)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._mtime: float | None = None
        self._data: dict = {}
        self.error: str | None = None

    def get(self) -> dict:
        with self._lock:
            try:
                mtime = self.path.stat().st_mtime
            except OSError:
                self._data, self._mtime = {}, None
                self.error = f"manifest {self.path} not found"
                return {}
            if mtime != self._mtime:
                try:
                    self._data = json.loads(self.path.read_text(encoding="utf-8"))
                    self.error = None
                except (OSError, ValueError) as exc:
                    self._data = {}
                    self.error = f"manifest {self.path} is not valid JSON: {exc}"
                self._mtime = mtime
            return self._data

    def text(self, key: object) -> str:
        """A manifest string resolved through the app's resource bundles (en_US, then en), else as is."""
        key = "" if key is None else str(key)
        for locale in ("en_US", "en"):
            for bundle in self.get().get("resource_bundles") or []:
                if bundle.get("locale") == locale:
                    value = self._bundle(str(bundle.get("bundle", ""))).get(key)
                    if value is not None:
                        return value
        return key

    def _bundle(self, relative: str) -> dict[str, str]:
        # Bundle paths are relative to app/static (qradar-app-framework.md §1.1); Java .properties format.
        path = self.path.parent / "app" / "static" / relative
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError:
            return {}
        entries: dict[str, str] = {}
        for line in lines:
            stripped = line.strip()
            if not stripped or stripped[0] in "#!":
                continue
            key, sep, value = stripped.partition("=")
            if sep:
                entries[key.strip()] = value.strip()
        return entries


@dataclass
class Console:
    config: ServerConfig
    store: EventStore
    tokens: TokenRegistry
    faults: FaultInjector
    searches: SearchManager
    manifest: ManifestLoader
    tasks: dict[int, dict] = field(default_factory=dict)
    task_lock: threading.Lock = field(default_factory=threading.Lock)

    def add_task(self, name: str, message: str) -> dict:
        """A finished task, in API 26.0's task status shape (the console deletes at once)."""
        with self.task_lock:
            task_id = len(self.tasks) + 1
            stamp = int(time.time() * 1000)
            task = {
                "completed": stamp,
                "created": stamp,
                "created_by": getattr(current_user(), "username", ""),
                "id": task_id,
                "message": message,
                "modified": stamp,
                "name": name,
                "started": stamp,
                "status": "COMPLETED",
            }
            self.tasks[task_id] = task
            return task


def console() -> Console:
    return current_app.extensions["devconsole"]


def get_db() -> sqlite3.Connection:
    """One event-store connection per request, on ``g`` (Flask tutorial shape)."""
    if "db" not in g:
        conn = console().store.connect()
        conn.row_factory = sqlite3.Row
        g.db = conn
    return g.db


def close_db(_exc: BaseException | None = None) -> None:
    conn = g.pop("db", None)
    if conn is not None:
        conn.close()


def token_from_request() -> tuple[str | None, str]:
    """The SEC token of this request and where it came from: header, cookie or basic."""
    header = request.headers.get("SEC")
    if header:
        return header.strip(), "header"
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("basic "):
        # Basic auth with the user name and the user's token as password (QRadar takes the password).
        try:
            decoded = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None, "basic"
        username, _, password = decoded.partition(":")
        user = console().tokens.user_for(password)
        if user is not None and user.username == username:
            return password, "basic"
        return None, "basic"
    cookie = request.cookies.get("SEC")
    if cookie:
        return cookie, "cookie"
    return None, "none"


def current_user() -> User | None:
    return g.get("user")


def json_body() -> Any:
    return request.get_json(silent=True)
