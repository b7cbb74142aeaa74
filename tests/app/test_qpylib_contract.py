"""Contract of the calls the app makes to qpylib (IBM/qpylib 2.0.9), which exists only inside QRadar.

This is the project's single stand-in: a fake ``qpylib`` package inserted into ``sys.modules`` for the
tests in this module only. Its functions have qpylib's documented signatures and argument checks
(shared/reference/qradar-app-framework.md §3), so a call the real library would reject fails here too.
"""

from __future__ import annotations

import importlib.machinery
import json
import logging
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import requests

from app.qradar import Gateway, QpylibTransport, QRadarError, QRadarUnavailable
from app.qradar.transport import HttpTransport

VALID_LOG_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "EXCEPTION", "CRITICAL"}


def make_response(status: int, body: Any) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode() if body is not None else b""
    response.headers["Content-Type"] = "application/json"
    return response


class FakeQpylib:
    """qpylib.qpylib's documented surface, recording calls."""

    def __init__(self, store: Path) -> None:
        self.store = store
        self.calls: list[dict[str, Any]] = []
        self.replies: list[requests.Response | Exception] = []
        self.logs: list[tuple[str, str]] = []
        self.log_created = 0

    def REST(
        self,
        rest_action,
        request_url,
        version=None,
        headers=None,
        data=None,
        params=None,
        json_body=None,
        verify=True,
        timeout=60,
        **kwargs,
    ):
        if rest_action.upper() not in ("GET", "PUT", "POST", "DELETE"):
            raise ValueError("REST: unsupported method")
        self.calls.append(
            {
                "action": rest_action,
                "url": request_url,
                "version": version,
                "headers": dict(headers or {}),
                "data": data,
                "params": params,
                "json_body": json_body,
                "verify": verify,
                "timeout": timeout,
                "kwargs": kwargs,
            }
        )
        reply = self.replies.pop(0) if self.replies else make_response(200, {})
        if isinstance(reply, Exception):
            raise reply
        return reply

    def get_store_path(self, *path):
        return str(self.store.joinpath(*path))

    def create_log(self, syslog_enabled=True):
        self.log_created += 1

    def log(self, message, level="INFO"):
        if self.log_created == 0:
            raise RuntimeError("You cannot use log before logging has been initialised")
        if level.upper() not in VALID_LOG_LEVELS:
            raise ValueError(f"Unknown level: {level}")
        self.logs.append((level.upper(), message))

    def q_url_for(self, endpoint, **values):
        return f"qpylib-url:{endpoint}"

    def get_app_id(self):
        return 1101


@pytest.fixture
def fake_qpylib(monkeypatch, tmp_path):
    fake = FakeQpylib(tmp_path / "qradar-store")
    fake.store.mkdir()
    package = types.ModuleType("qpylib")
    package.__spec__ = importlib.machinery.ModuleSpec("qpylib", None, is_package=True)
    package.__path__ = []
    module = types.ModuleType("qpylib.qpylib")
    module.__spec__ = importlib.machinery.ModuleSpec("qpylib.qpylib", None)
    for name in ("REST", "get_store_path", "create_log", "log", "q_url_for", "get_app_id"):
        setattr(module, name, getattr(fake, name))
    package.qpylib = module
    monkeypatch.setitem(sys.modules, "qpylib", package)
    monkeypatch.setitem(sys.modules, "qpylib.qpylib", module)
    monkeypatch.delenv("APP_QRADAR_TRANSPORT", raising=False)
    monkeypatch.delenv("APP_STORE_DIR", raising=False)
    return fake


@pytest.fixture
def gateway(fake_qpylib):
    gw = Gateway.from_env(api_version="26.0")
    assert isinstance(gw.transport, QpylibTransport)
    return gw


def test_inside_qradar_the_gateway_uses_qpylib(fake_qpylib):
    assert isinstance(Gateway.from_env().transport, QpylibTransport)


def test_start_search_sends_aql_in_the_form_body(gateway, fake_qpylib):
    aql = (
        "SELECT username FROM events WHERE username = 'a''b' " + "OR username = 'x' " * 800 + "LAST 24 HOURS"
    )
    fake_qpylib.replies.append(make_response(201, {"search_id": "s-1", "status": "WAIT"}))
    assert gateway.start_search(aql) == "s-1"
    (call,) = fake_qpylib.calls
    assert (call["action"], call["url"]) == ("POST", "api/ariel/searches")
    assert call["data"] == {"query_expression": aql}
    assert call["params"] is None and "query_expression" not in call["url"]
    assert call["version"] == "26.0"
    assert call["headers"]["Accept"] == "application/json"


def test_status_poll_results_cancel_delete(gateway, fake_qpylib):
    fake_qpylib.replies += [
        make_response(206, {"search_id": "s-1", "status": "EXECUTE", "progress": 40, "record_count": 0}),
        make_response(200, {"events": [{"n": 1}, {"n": 2}]}),
        make_response(200, {"search_id": "s-1", "status": "CANCELED"}),
        make_response(202, {"search_id": "s-1", "status": "CANCELED"}),
    ]
    status = gateway.search_status("s-1", wait_s=5)
    assert (status.status, status.progress) == ("EXECUTE", 40)
    assert gateway.results("s-1", 0, 1) == [{"n": 1}, {"n": 2}]
    gateway.cancel_search("s-1")
    gateway.delete_search("s-1")
    poll, results, cancel, delete = fake_qpylib.calls
    assert (poll["action"], poll["url"]) == ("GET", "api/ariel/searches/s-1")
    assert poll["headers"]["Prefer"] == "wait=5"
    assert poll["timeout"] > 5  # the HTTP timeout outlives the server-side wait
    assert results["url"] == "api/ariel/searches/s-1/results"
    assert results["headers"]["Range"] == "items=0-1"  # inclusive
    assert (cancel["action"], cancel["params"]) == ("POST", {"status": "CANCELED"})  # API spelling
    assert delete["action"] == "DELETE"
    for call in fake_qpylib.calls:
        assert call["action"] in ("GET", "POST", "PUT", "DELETE")
        assert not call["url"].startswith("/")


def test_hostile_names_stay_one_path_segment(gateway, fake_qpylib):
    fake_qpylib.replies.append(make_response(200, {}))
    gateway.delete_reference_set_value("allow/../../siem", "x?y=1&z/../")
    (call,) = fake_qpylib.calls
    assert call["url"] == "api/reference_data/sets/allow%2F..%2F..%2Fsiem/x%3Fy%3D1%26z%2F..%2F"


def test_qradar_error_bodies_become_qradar_error(gateway, fake_qpylib):
    fake_qpylib.replies.append(
        make_response(
            422,
            {
                "http_response": {"code": 422, "message": "unprocessable"},
                "code": 2000,
                "message": "Invalid AQL: unexpected token 'FORM' at line 1",
                "description": "syntax",
            },
        )
    )
    with pytest.raises(QRadarError) as info:
        gateway.start_search("SELECT * FORM events")
    assert (info.value.http_status, info.value.code) == (422, 2000)
    assert "unexpected token 'FORM'" in info.value.message


def test_network_failures_become_qradar_unavailable(gateway, fake_qpylib):
    fake_qpylib.replies += [
        requests.exceptions.ConnectTimeout("slow"),
        requests.exceptions.ConnectionError("refused"),
        KeyError("QRADAR_CONSOLE_FQDN"),
    ]
    for _ in range(3):
        with pytest.raises(QRadarUnavailable):
            gateway.search_status("s-1")


def test_current_user_never_goes_through_qpylib(gateway, fake_qpylib, monkeypatch):
    """qpylib.REST would replace the user's SEC with SEC_ADMIN_TOKEN, so identity uses plain HTTP."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    monkeypatch.setenv("QRADAR_CONSOLE_FQDN", f"127.0.0.1:{closed_port}")
    monkeypatch.setenv("SEC_ADMIN_TOKEN", "service-token")
    gateway._user_transport = None
    transport = gateway.user_transport()
    assert isinstance(transport, HttpTransport) and transport.admin_token is None
    assert transport.build_headers(None, None, sec_token="users-own")["SEC"] == "users-own"
    with pytest.raises(QRadarUnavailable):
        gateway.current_user("users-own")
    assert fake_qpylib.calls == []


@pytest.fixture
def restore_app_logger():
    logger = logging.getLogger("app")
    saved = (
        list(logger.handlers),
        logger.level,
        logger.propagate,
        getattr(logger, "_cloud_account_watch_configured", False),
    )
    logger.handlers.clear()
    logger._cloud_account_watch_configured = False
    yield
    logger.handlers[:] = saved[0]
    logger.level, logger.propagate = saved[1], saved[2]
    logger._cloud_account_watch_configured = saved[3]


def test_create_app_inside_qradar_uses_qpylib_store_log_and_q_url_for(
    fake_qpylib, restore_app_logger, monkeypatch
):
    monkeypatch.setenv("QRADAR_APP_ID", "1101")
    from app import create_app

    flask_app = create_app({"TESTING": True})
    assert Path(flask_app.config["DATABASE"]).parent == fake_qpylib.store
    assert fake_qpylib.log_created == 1
    with flask_app.test_request_context("/"):
        from flask import render_template_string

        assert render_template_string("{{ q_url_for('debug') }}") == "qpylib-url:debug"
    logging.getLogger("app.test").warning("hello %s", "<qradar>")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("app.test").exception("failed")
    assert ("WARNING", "app.test: hello <qradar>") in fake_qpylib.logs
    assert ("EXCEPTION", "app.test: failed") in fake_qpylib.logs
    assert flask_app.test_client().get("/debug").status_code == 200
