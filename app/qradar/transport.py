"""How the gateway reaches QRadar's REST API.

Two transports with one method, ``request(method, path, ...) -> requests.Response``:

* `QpylibTransport` — inside QRadar: every call goes through IBM's ``qpylib.REST`` (qpylib is preinstalled in
  the base image and not on PyPI, so it is imported lazily, only here; the dev virtualenv installs the same
  2.0.9 from vendor/qpylib). qpylib reads the container's environment on every call: ``QRADAR_CONSOLE_FQDN``
  (the URL is ``https://$QRADAR_CONSOLE_FQDN/<path>``), ``SEC_ADMIN_TOKEN`` (replaces any ``SEC``),
  ``QRADAR_REST_PROXY``; it verifies TLS with requests' default, which honours ``REQUESTS_CA_BUNDLE`` (how
  the container trusts the console's CA), and sends ``Host: 127.0.0.1`` and the request's ``SEC`` and
  ``QRadarCSRF`` cookies as headers. Only qpylib's ``REST`` is used: its ``ArielSearch.cancel()`` sends
  ``status=CANCELLED``, which API 26.0 does not accept (the gateway sends ``CANCELED``).
* `HttpTransport` — outside QRadar (``APP_QRADAR_TRANSPORT=http``: a workstation against a real console,
  tools that have no app root): behaves like ``qpylib.REST`` over a ``requests`` session of its own, with
  connect/read timeouts and TLS verified against ``REQUESTS_CA_BUNDLE``.

Which one: `qpylib_available()` — qpylib importable and ``APP_QRADAR_TRANSPORT`` not ``http``.

Acting as the logged-in user: qpylib overwrites ``SEC`` with ``SEC_ADMIN_TOKEN`` whenever that is set, so
anything asked on behalf of the user (who they are, their capabilities) must use `HttpTransport` with an
explicit ``sec_token`` — the user's own token, never the service token.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Mapping
from typing import Any, Protocol

import requests

from .errors import QRadarUnavailable

UNSAFE_CALLS = ("POST", "PUT", "DELETE")
ALLOWED_METHODS = ("GET", "POST", "PUT", "DELETE")  # qpylib.REST accepts no PATCH
DEFAULT_CONNECT_TIMEOUT_S = 10.0
DEFAULT_READ_TIMEOUT_S = 60.0  # qpylib's default REST timeout


class Transport(Protocol):
    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        version: str | None = None,
    ) -> requests.Response: ...


TRANSPORT_SWITCH = "APP_QRADAR_TRANSPORT"  # "http" runs the app without qpylib (outside QRadar)


def qpylib_available() -> bool:
    """True when the app runs through qpylib: it is importable (qradar-app-base ships it, the dev virtualenv
    installs it) and ``APP_QRADAR_TRANSPORT`` is not ``http``."""
    if os.environ.get(TRANSPORT_SWITCH) == "http":
        return False
    return importlib.util.find_spec("qpylib") is not None


def load_qpylib() -> Any:
    """Import ``qpylib.qpylib`` lazily; qpylib exists only in the QRadar base image."""
    return importlib.import_module("qpylib.qpylib")


def _request_cookies() -> Mapping[str, str]:
    """The current Flask request's cookies, or {} outside a request (background work)."""
    try:
        from flask import has_request_context, request
    except ImportError:  # pragma: no cover - flask is always installed with the app
        return {}
    return request.cookies if has_request_context() else {}


def _check_method(method: str) -> str:
    upper = method.upper()
    if upper not in ALLOWED_METHODS:
        raise ValueError(f"unsupported REST method {method!r}; use one of {', '.join(ALLOWED_METHODS)}")
    return upper


class HttpTransport:
    """``qpylib.REST`` look-alike over ``requests`` (see module docstring)."""

    def __init__(
        self,
        console_fqdn: str,
        *,
        admin_token: str | None = None,
        ca_bundle: str | None = None,
        api_version: str | None = "26.0",
        proxy: str | None = None,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        read_timeout_s: float = DEFAULT_READ_TIMEOUT_S,
    ) -> None:
        if not console_fqdn:
            raise QRadarUnavailable("QRADAR_CONSOLE_FQDN is not set: the app does not know where QRadar is")
        self.base_url = f"https://{console_fqdn.strip().rstrip('/')}/"
        self.admin_token = admin_token or None
        self.verify: str | bool = ca_bundle or True
        self.api_version = api_version
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self.session = requests.Session()
        self.session.trust_env = False  # verify/proxy come from our settings, not ambient env
        self.proxies = {"https": proxy} if proxy else None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **kwargs: Any) -> HttpTransport:
        env = os.environ if env is None else env
        return cls(
            env.get("QRADAR_CONSOLE_FQDN", ""),
            admin_token=env.get("SEC_ADMIN_TOKEN"),
            ca_bundle=env.get("REQUESTS_CA_BUNDLE"),
            proxy=env.get("QRADAR_REST_PROXY"),
            **kwargs,
        )

    def build_headers(
        self, headers: Mapping[str, str] | None, version: str | None, sec_token: str | None
    ) -> dict[str, str]:
        out = {"Accept": "application/json"}
        out.update(headers or {})
        out.setdefault("Host", "127.0.0.1")  # qpylib sends Host: gethostbyname('localhost')
        if version or self.api_version:
            out["Version"] = str(version or self.api_version)
        cookies = _request_cookies()
        if cookies.get("QRadarCSRF") and "QRadarCSRF" not in out:
            out["QRadarCSRF"] = cookies["QRadarCSRF"]
        if sec_token is not None:
            out["SEC"] = sec_token  # acting as this user: never replaced by the service token
        else:
            if cookies.get("SEC") and "SEC" not in out:
                out["SEC"] = cookies["SEC"]
            if self.admin_token:
                out["SEC"] = self.admin_token  # qpylib: SEC_ADMIN_TOKEN always wins
        return out

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        version: str | None = None,
        sec_token: str | None = None,
    ) -> requests.Response:
        method = _check_method(method)
        url = self.base_url + path.lstrip("/")
        read_timeout = self.read_timeout_s if timeout is None else timeout
        try:
            return self.session.request(
                method,
                url,
                params=params,
                data=data,
                json=json_body,
                headers=self.build_headers(headers, version, sec_token),
                verify=self.verify,
                timeout=(min(self.connect_timeout_s, read_timeout), read_timeout),
                proxies=self.proxies,
                allow_redirects=False,
            )
        except requests.exceptions.SSLError as exc:
            raise QRadarUnavailable(f"TLS verification of {self.base_url} failed: {exc}") from exc
        except requests.exceptions.Timeout as exc:
            raise QRadarUnavailable(
                f"QRadar did not answer {method} {path} within {read_timeout:g} s"
            ) from exc
        except requests.exceptions.RequestException as exc:
            raise QRadarUnavailable(f"cannot reach QRadar at {self.base_url}: {exc}") from exc


class QpylibTransport:
    """Inside QRadar: every call through ``qpylib.REST`` (which adds SEC/QRadarCSRF/Host itself)."""

    def __init__(self, api_version: str | None = "26.0") -> None:
        self.api_version = api_version
        self._qpylib: Any = None

    @property
    def qpylib(self) -> Any:
        if self._qpylib is None:
            self._qpylib = load_qpylib()
        return self._qpylib

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        version: str | None = None,
    ) -> requests.Response:
        method = _check_method(method)
        kwargs: dict[str, Any] = {
            "version": version or self.api_version,
            "headers": {"Accept": "application/json", **(headers or {})},
            "data": data,
            "params": params,
            "json_body": json_body,
        }
        if timeout is not None:  # else qpylib's default (60 s or store/rest-timeout-override)
            kwargs["timeout"] = timeout
        try:
            return self.qpylib.REST(method, path.lstrip("/"), **kwargs)
        except requests.exceptions.SSLError as exc:
            raise QRadarUnavailable(
                f"TLS verification of the QRadar console failed (REQUESTS_CA_BUNDLE must hold its CA): {exc}"
            ) from exc
        except requests.exceptions.Timeout as exc:
            within = f"within {timeout:g} s" if timeout is not None else "in time"
            raise QRadarUnavailable(f"QRadar did not answer {method} {path} {within}") from exc
        except requests.exceptions.RequestException as exc:
            raise QRadarUnavailable(f"cannot reach QRadar: {exc}") from exc
        except KeyError as exc:  # qpylib raises KeyError when QRADAR_CONSOLE_FQDN is unset
            raise QRadarUnavailable(f"QRadar console address is not configured ({exc})") from exc


def transport_from_env(env: Mapping[str, str] | None = None, api_version: str | None = "26.0") -> Transport:
    """`QpylibTransport` when ``env`` is None and `qpylib_available()` (qpylib reads the process environment
    itself); otherwise `HttpTransport` from ``env`` (default ``os.environ``) — an explicit mapping, as tests and
    tools that talk to another console pass, always means HTTP."""
    if env is None and qpylib_available():
        return QpylibTransport(api_version=api_version)
    return HttpTransport.from_env(env, api_version=api_version)
