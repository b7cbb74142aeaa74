"""The pages' ES modules as the browser loads them: every script comes through QRadar's app proxy (the entry
module from q_url_for, the rest by relative import), as JavaScript, each once."""

from __future__ import annotations

import pytest

DETECTIONS_MODULES = {
    "static/js/common.js",
    "static/js/qradar_health.js",
    "static/js/chart.js",
    "static/js/detections/main.js",
    "static/js/detections/model.js",
    "static/js/detections/filters.js",
    "static/js/detections/table.js",
    "static/js/detections/overview.js",
    "static/js/detections/status.js",
    "static/js/detections/panel.js",
}


def loaded_scripts(session, path: str, ready: str) -> list[tuple[str, int, str]]:
    """(URL, status, Content-Type) of every script the page at ``path`` (through the proxy) loaded."""
    scripts: list[tuple[str, int, str]] = []

    def on_response(response) -> None:
        if response.request.resource_type == "script" and response.frame == session.page.main_frame:
            scripts.append((response.url, response.status, response.headers.get("content-type", "")))

    session.page.goto("about:blank")  # the console page of the login, and its tab frame, are gone
    session.page.on("response", on_response)
    frame = session.open_app(path)
    frame.wait_for_selector(ready)
    session.page.remove_listener("response", on_response)
    return scripts


@pytest.mark.parametrize(
    ("path", "ready", "expected"),
    [
        ("/tab/", "#detections-body tr.caw-row", DETECTIONS_MODULES),
        (
            "/tab/tuning",
            "#entries-table",
            {"static/js/common.js", "static/js/qradar_health.js", "static/js/tuning.js"},
        ),
        (
            "/tab/settings",
            "#s-refresh_interval_s",
            {"static/js/common.js", "static/js/qradar_health.js", "static/js/settings.js"},
        ),
        ("/playbook/", ".caw-pb-copy", {"static/js/common.js", "playbook/static/playbook.js"}),
    ],
)
def test_every_module_comes_through_the_app_proxy(
    as_user, tab_env, path: str, ready: str, expected: set
) -> None:
    session = as_user("admin")
    scripts = loaded_scripts(session, path, ready)
    prefix = session.proxy_root + "/"
    outside = [url for url, _, _ in scripts if not url.startswith(prefix)]
    assert not outside, f"scripts loaded around the app proxy: {outside}"
    names = [url[len(prefix) :].split("?", 1)[0] for url, _, _ in scripts]
    assert sorted(set(names)) == sorted(expected)
    assert len(names) == len(set(names)), f"a module loaded twice: {names}"
    # A module the login's tab frame fetched already may be revalidated (304, no Content-Type of its own).
    assert all(status in (200, 304) for _, status, _ in scripts), scripts
    assert all("javascript" in kind for _, status, kind in scripts if status == 200), scripts
