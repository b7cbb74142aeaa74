"""URLs the browser follows: app pages through QRadar's app proxy, and QRadar's own console pages.

Inside QRadar, qpylib's ``q_url_for`` turns an endpoint into the app-proxy URL
(``https://<console>/console/plugins/<app_id>/app_proxy/<path>``); outside it, `make_q_url_for` builds the
same shape from the ``X-Console-Host`` header the dev console's proxy sends. `create_app` registers the
result as the ``q_url_for`` Jinja global; Python code reaches it through `q_url_for` here, never another way.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

from flask import Flask, current_app, request, url_for
from werkzeug.routing import BuildError

from app.qradar.transport import load_qpylib, qpylib_available

QUrlFor = Callable[..., str]


# host[:port]: a DNS name or IPv4 address, or a bracketed IPv6 address; nothing else (no user info, path,
# query, fragment, backslash or space), so the header cannot point a built URL anywhere but a host.
_HOST = re.compile(
    r"(?:(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(?:\.(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?))*"
    r"|\[[0-9A-Fa-f:.]{2,45}\])"
    r"(?::(?P<port>[0-9]{1,5}))?"
)


def console_host() -> str | None:
    """The request's ``X-Console-Host`` when it is a plain ``host[:port]`` (port 1–65535, at most 253
    characters); None when absent or anything else. The one check every use of the header goes through."""
    host = request.headers.get("X-Console-Host", "").strip() if request else ""
    match = _HOST.fullmatch(host) if len(host) <= 253 else None
    if match is None:
        return None
    port = match.group("port")
    if port is not None and not 1 <= int(port) <= 65535:
        return None
    return host


def make_q_url_for(app: Flask) -> QUrlFor:
    """qpylib's ``q_url_for`` inside QRadar; outside, the same URL shape from ``X-Console-Host``."""
    if qpylib_available():
        qpylib_q_url_for = load_qpylib().q_url_for

        @functools.wraps(qpylib_q_url_for)
        def checked_q_url_for(endpoint: str, **values: Any) -> str:
            # qpylib puts X-Console-Host into the URL as it comes: a header that is not host[:port] gets the
            # app's own path instead.
            if request and "X-Console-Host" in request.headers and console_host() is None:
                return url_for(endpoint, **values)
            return qpylib_q_url_for(endpoint, **values)

        return checked_q_url_for

    def q_url_for(endpoint: str, **values: Any) -> str:
        path = url_for(endpoint, **values)
        host = console_host()
        the_app_id = app.config["APP_ID"]
        if the_app_id and host:
            return f"https://{host}/console/plugins/{the_app_id}/app_proxy{path}"
        return path

    return q_url_for


def q_url_for(endpoint: str, **values: Any) -> str:
    """The app URL of ``endpoint`` as the browser reaches it (the app's registered ``q_url_for``)."""
    build: QUrlFor = current_app.jinja_env.globals.get("q_url_for", url_for)  # type: ignore[assignment]
    return build(endpoint, **values)


def console_url(endpoint: str, **values: Any) -> str | None:
    """`q_url_for`, or None when ``endpoint`` is not registered (a feature left out of this app)."""
    try:
        return q_url_for(endpoint, **values)
    except BuildError:
        return None


def app_root(endpoint: str) -> str:
    """The prefix the browser puts before the app's own paths (the app-proxy path, or "" locally), from
    what `q_url_for` adds to ``url_for(endpoint)``."""
    local = url_for(endpoint)
    proxied = q_url_for(endpoint)
    return proxied[: len(proxied) - len(local)] if proxied.endswith(local) else ""


def console_origin() -> str:
    """``https://<console>`` from the proxy's X-Console-Host, for QRadar's own pages (``/console/do/...``);
    "" (the page's own origin) otherwise."""
    host = console_host()
    return f"https://{host}" if host else ""


# -- QRadar's own pages (console URLs, not app URLs) -------------------------------------------------------

LOG_ACTIVITY_PATH = "/console/do/ariel/arielSearch"
OFFENSE_SUMMARY_PATH = "/console/do/sem/offensesummary"


def log_activity_url(aql: str) -> str:
    """QRadar's Log Activity page running ``aql`` over the time range its own START/STOP or LAST clause
    gives (a console path; prefix `console_origin` for an absolute URL). The query is the last parameter,
    URL-encoded whole, so nothing in it can add a parameter."""
    params = {
        "appName": "EventViewer",
        "pageId": "EventList",
        "dispatch": "performSearch",
        "value(timeRangeType)": "aqlTime",
        "value(searchMode)": "AQL",
        "value(aql)": aql,
    }
    query = "&".join(f"{name}={quote(value, safe='')}" for name, value in params.items())
    return f"{LOG_ACTIVITY_PATH}?{query}"


def offense_url(offense_id: int) -> str:
    """QRadar's Offense Summary page of one offense (a console path)."""
    query = urlencode({"appName": "Sem", "pageId": "OffenseSummary", "summaryId": int(offense_id)})
    return f"{OFFENSE_SUMMARY_PATH}?{query}"
