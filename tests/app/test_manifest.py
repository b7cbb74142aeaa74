"""manifest.json against the App Framework v2 manifest rules."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = json.loads((ROOT / "manifest.json").read_text(encoding="utf-8"))

KNOWN_TOP_LEVEL = {
    "name",
    "description",
    "version",
    "uuid",
    "image",
    "authentication",
    "load_flask",
    "add_app_capability",
    "areas",
    "rest_methods",
    "dashboard_items",
    "configuration_pages",
    "gui_actions",
    "page_scripts",
    "metadata_providers",
    "fragments",
    "custom_columns",
    "resource_bundles",
    "resources",
    "multitenancy_safe",
    "single_instance_only",
    "use_qradar_csrf",
    "environment_variables",
    "services",
    "uninstall_hooks",
    "log_level",
    "node_only",
}
BOOLEAN_STRING_FIELDS = {
    "load_flask",
    "add_app_capability",
    "multitenancy_safe",
    "single_instance_only",
    "use_qradar_csrf",
    "node_only",
}
HTTP_METHODS = {"GET", "POST", "PUT", "DELETE"}


def bundle_strings() -> dict[str, dict[str, str]]:
    bundles = {}
    for entry in MANIFEST.get("resource_bundles", []):
        text = (ROOT / "app" / "static" / entry["bundle"]).read_text(encoding="utf-8")
        pairs = {}
        for line in text.splitlines():
            if line.strip() and not line.lstrip().startswith(("#", "!")):
                key, _, value = line.partition("=")
                pairs[key.strip()] = value.strip()
        bundles[entry["locale"]] = pairs
    return bundles


def test_required_fields_and_types():
    for field in ("name", "description", "version", "uuid"):
        assert isinstance(MANIFEST[field], str) and MANIFEST[field].strip(), field
    assert re.fullmatch(r"\d+\.\d+\.\d+", MANIFEST["version"])
    assert str(uuid.UUID(MANIFEST["uuid"])) == MANIFEST["uuid"]
    assert re.fullmatch(r"qradar-app-base:4\.\d+\.\d+", MANIFEST["image"])  # Python 3.11, Flask 3.0


def test_no_unknown_top_level_fields():
    assert set(MANIFEST) <= KNOWN_TOP_LEVEL, set(MANIFEST) - KNOWN_TOP_LEVEL
    assert "dependencies" not in MANIFEST  # removed in v2
    assert "rest_method" not in MANIFEST  # the field is plural


def test_booleans_are_strings():
    for field in BOOLEAN_STRING_FIELDS & set(MANIFEST):
        assert MANIFEST[field] in ("true", "false"), field
    assert MANIFEST["load_flask"] == "false"
    assert MANIFEST["use_qradar_csrf"] == "true"


def test_version_matches_pyproject():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["version"] == MANIFEST["version"]


def test_oauth2_client_credentials_with_few_capabilities():
    oauth = MANIFEST["authentication"]["oauth2"]
    assert oauth["authorisation_flow"] == "CLIENT_CREDENTIALS"
    caps = oauth["requested_capabilities"]
    assert caps and all(isinstance(c, str) and c for c in caps)
    assert "ADMIN" not in caps  # least privilege: the service token never needs ADMIN


def test_gunicorn_is_the_named_service_on_5000_with_its_supervisord_conf():
    services = {s["name"]: s for s in MANIFEST["services"]}
    assert services["gunicorn"]["port"] == 5000
    assert "command" not in services["gunicorn"]  # supervisord conf below starts it, not QRadar
    conf = (ROOT / "container/conf/supervisord.d/gunicorn.conf").read_text()
    assert "[program:gunicorn]" in conf and "0.0.0.0:5000" in conf and "app:create_app()" in conf
    refresher = (ROOT / "container/conf/supervisord.d/refresher.conf").read_text()
    assert "[program:refresher]" in refresher and "-m app.refresher" in refresher


def test_log_level_and_memory():
    assert MANIFEST["log_level"] in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
    memory = MANIFEST["resources"]["memory"]
    assert isinstance(memory, int) and 100 <= memory <= 1024


def test_areas_fragments_and_gui_actions_shapes():
    for area in MANIFEST["areas"]:
        assert {"id", "text", "url"} <= set(area)
        assert isinstance(area.get("required_capabilities", []), list)
    (fragment,) = MANIFEST["fragments"]
    assert (fragment["app_name"], fragment["page_id"]) == ("SEM", "OffenseSummary")
    assert "location" not in fragment  # Offense Summary has only the header injection point
    (action,) = MANIFEST["gui_actions"]
    assert action["groups"] == ["OffenseSummaryToolbar"]
    assert {"id", "text", "javascript"} <= set(action)


def test_every_named_rest_method_exists_and_is_safe_under_qradar_csrf():
    methods = {m["name"]: m for m in MANIFEST["rest_methods"]}
    assert len(methods) == len(MANIFEST["rest_methods"]), "rest_method names must be unique"
    for method in methods.values():
        assert method["method"] in HTTP_METHODS and {"name", "url", "method"} <= set(method)
    for item in MANIFEST["dashboard_items"]:
        assert item["rest_method"] in methods
        assert {"text", "description"} <= set(item)
    for action in MANIFEST["gui_actions"]:
        if "rest_method" in action:
            assert action["rest_method"] in methods
            # use_qradar_csrf "true": GUI-action REST methods must be GET
            assert methods[action["rest_method"]]["method"] == "GET"


def test_resource_bundles_define_every_key_used():
    bundles = bundle_strings()
    assert bundles, "resource_bundles missing"
    keys = [MANIFEST["name"], MANIFEST["description"]]
    for section in ("areas", "dashboard_items", "gui_actions"):
        keys += [entry.get(field, "") for entry in MANIFEST[section] for field in ("text", "description")]
    for locale, strings in bundles.items():
        for key in filter(None, keys):
            assert key in strings, f"{key} missing from the {locale} bundle"
            assert "<" not in strings[key], "manifest strings are plain text"


def _matches(app, path: str, method: str = "GET") -> bool:
    adapter = app.url_map.bind("localhost")
    try:
        adapter.match("/" + path.lstrip("/"), method=method)
    except Exception:  # NotFound / MethodNotAllowed / RequestRedirect
        return False
    return True


@pytest.fixture(scope="module")
def flask_app(tmp_path_factory):
    from app import create_app

    return create_app({"TESTING": True, "STORE_DIR": str(tmp_path_factory.mktemp("manifest_store"))})


def test_every_manifest_url_resolves_to_a_flask_route(flask_app):
    for area in MANIFEST["areas"]:
        assert _matches(flask_app, area["url"]), area["url"]
    for method in MANIFEST["rest_methods"]:
        assert _matches(flask_app, method["url"], method["method"]), method["url"]
    for fragment in MANIFEST["fragments"]:
        # QRadar appends the offense id as a path segment
        assert _matches(flask_app, f"{fragment['rest_endpoint']}/42"), fragment["rest_endpoint"]
    for script in MANIFEST.get("page_scripts", []):
        for path in script["scripts"]:
            assert (ROOT / "app" / path).is_file(), path
    for action in MANIFEST["gui_actions"]:
        if action.get("icon"):
            assert (ROOT / "app" / action["icon"]).is_file() or _matches(flask_app, action["icon"])


def test_manifest_routes_answer_json(client, login, devconsole):
    """The fragment and dashboard item QRadar calls answer JSON: a 401 error without a session; with one,
    the fragment's ``{"html"}`` for the offense asked for and the classic dashboard item's
    ``{"id", "title", "HTML"}``."""
    offense_id = devconsole.scenario["offenses"][0]["id"]
    fragment_url = f"/{MANIFEST['fragments'][0]['rest_endpoint']}/{offense_id}"
    dashboard_url = "/" + next(
        m["url"]
        for m in MANIFEST["rest_methods"]
        if m["name"] == MANIFEST["dashboard_items"][0]["rest_method"]
    )
    for url in (fragment_url, dashboard_url):
        anonymous = client.get(url)
        assert anonymous.status_code == 401, url
        assert anonymous.json["error"]["code"] == "not_logged_in"
    login(client, "analyst")
    fragment = client.get(fragment_url)
    assert fragment.status_code == 200, fragment.get_data(as_text=True)
    assert list(fragment.json) == ["html"]
    assert f'data-offense-id="{offense_id}"' in fragment.json["html"]
    dashboard = client.get(dashboard_url)
    assert dashboard.status_code == 200, dashboard.get_data(as_text=True)
    assert sorted(dashboard.json) == ["HTML", "id", "title"]
    assert 'class="caw-dash"' in dashboard.json["HTML"]
