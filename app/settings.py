"""App settings: typed defaults, stored overrides (SQLite ``settings`` table), admin edits.

Reading (any feature)::

    from app import settings
    settings.get("refresh_interval_s")            # in a request: uses get_db()
    settings.get("lookback_hours", conn=conn)     # background work: pass your connection
    settings.all_values(conn)                     # {key: value} for every setting

Writing (admins, through ``PUT /api/settings`` or ``PUT /api/tuning/settings``; audited as
``settings.update``) has one path, `update`, which both endpoints and the tuning import take::

    settings.update(conn, {"magnitude_minimum": 4}, actor="admin")   # validates all, then commits
    settings.update(conn, {"reference_set_name": "X"}, actor="admin", expected_version=3)

Invalid changes raise `SettingError(key, message)`; unknown keys are errors too. A feature that needs
its own setting declares it in its ``SETTINGS`` list (e.g. `app.detection.config.SETTINGS`) and documents
it there; `app.features.register_settings()` registers them all when the web app or the refresher starts
(importing a module registers nothing).

Values some of which are UNCONFIRMED on real consoles (log source type IDs, custom property names,
capability names, the current-user lookup path) are settings precisely so an admin can correct them.
"""

from __future__ import annotations

import contextlib
import copy
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from app.aql.detection import PLATFORMS
from app.store import audit, settings_rows
from app.store import tuning as tuning_store
from app.store.db import transaction


class SettingError(ValueError):
    def __init__(self, key: str, message: str) -> None:
        self.key = key
        self.message = message
        super().__init__(f"{key}: {message}")


class StaleSettingsVersion(SettingError):
    """The tuning settings changed since the caller read ``expected_version``."""

    def __init__(self, current: int) -> None:
        super().__init__("version", "the tuning settings changed meanwhile; reload them")
        self.current = current


@dataclass(frozen=True)
class Setting:
    key: str
    kind: str  # int | bool | str | str_list | log_source_types | str_map
    default: Any
    description: str
    minimum: int | None = None
    maximum: int | None = None
    validate: Callable[[Any], None] | None = None


def _check_int(s: Setting, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SettingError(s.key, "must be a whole number")
    if s.minimum is not None and value < s.minimum:
        raise SettingError(s.key, f"must be at least {s.minimum}")
    if s.maximum is not None and value > s.maximum:
        raise SettingError(s.key, f"must be at most {s.maximum}")
    return value


def _check_bool(s: Setting, value: Any) -> bool:
    if not isinstance(value, bool):
        raise SettingError(s.key, "must be true or false")
    return value


def _check_str(s: Setting, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SettingError(s.key, "must be a non-empty string")
    # DEL (127) is a control character too: AQL string literals refuse it, so it must not get stored.
    if len(value) > 255 or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise SettingError(s.key, "must be at most 255 printable characters")
    return value.strip()


def _check_str_list(s: Setting, value: Any) -> list[str]:
    if not isinstance(value, list) or not value:
        raise SettingError(s.key, "must be a non-empty list of strings")
    out = [_check_str(s, v) for v in value]
    if len(set(out)) != len(out):
        raise SettingError(s.key, "must not repeat a value")
    return out


def _check_str_map(s: Setting, value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not value:
        raise SettingError(s.key, "must be an object of names")
    unknown = set(value) - set(s.default)
    if unknown:
        raise SettingError(s.key, f"unknown entries: {', '.join(sorted(unknown))}")
    return {k: _check_str(s, v) for k, v in value.items()}


def _check_log_source_types(s: Setting, value: Any) -> dict[str, list[dict[str, Any]]]:
    if not isinstance(value, dict) or not value:
        raise SettingError(s.key, "must be an object: platform -> [{name, id}]")
    out: dict[str, list[dict[str, Any]]] = {}
    for platform, types in value.items():
        if platform not in PLATFORMS:
            raise SettingError(
                s.key, f"unknown platform {platform!r}; expected one of {', '.join(PLATFORMS)}"
            )
        if not isinstance(types, list) or not types:
            raise SettingError(s.key, f"{platform}: must be a non-empty list of {{name, id}}")
        entries = []
        for t in types:
            if not isinstance(t, dict) or set(t) - {"name", "id"} or "name" not in t:
                raise SettingError(s.key, f'{platform}: each entry is {{"name": str, "id": int|null}}')
            type_id = t.get("id")
            bad_id = isinstance(type_id, bool) or not isinstance(type_id, int) or type_id < 0
            if type_id is not None and bad_id:
                raise SettingError(s.key, f"{platform}: id must be a non-negative whole number or null")
            entries.append({"name": _check_str(s, t["name"]), "id": type_id})
        out[platform] = entries
    return out


def _checked(s: Setting, value: Any) -> Any:
    """The kind's check, then the setting's own ``validate`` (if any)."""
    clean = CHECKS[s.kind](s, value)
    if s.validate is not None:
        s.validate(clean)
    return clean


def _aql_property_names(names: dict[str, str]) -> None:
    # Custom property names go into AQL as double-quoted identifiers, which have no escape: a name with
    # a quote (or anything app.aql.literals.identifier refuses) is refused here, not at the next refresh.
    from app.aql.literals import AqlLiteralError, identifier

    for key, name in names.items():
        try:
            identifier(name)
        except AqlLiteralError:
            raise SettingError(
                "custom_properties",
                f"{key}: {name!r} is not a usable AQL property name (letters, digits, spaces "
                "and _ . - ( ) / # : only, starting with a letter)",
            ) from None


CHECKS: dict[str, Callable[[Setting, Any], Any]] = {
    "int": _check_int,
    "bool": _check_bool,
    "str": _check_str,
    "str_list": _check_str_list,
    "str_map": _check_str_map,
    "log_source_types": _check_log_source_types,
}

REGISTRY: dict[str, Setting] = {}


def register(setting: Setting) -> Setting:
    if setting.kind not in CHECKS:
        raise ValueError(f"unknown setting kind {setting.kind!r}")
    existing = REGISTRY.get(setting.key)
    if existing is not None and existing != setting:
        raise ValueError(f"setting {setting.key!r} registered twice with different definitions")
    REGISTRY[setting.key] = setting
    return setting


# The settings every part of the app shares; features declare theirs in their own ``SETTINGS`` lists and
# `app.features.register_settings()` registers them all when a process starts.
SETTINGS: list[Setting] = [
    Setting("refresh_interval_s", "int", 300, "Seconds between background detection refreshes.", 30, 86_400),
    Setting("lookback_hours", "int", 24, "How far back the first refresh searches (hours).", 1, 24 * 30),
    Setting(
        "overlap_minutes",
        "int",
        10,
        "Each refresh re-searches this many minutes before the watermark, "
        "so late-arriving events are not missed (duplicates are removed by event key).",
        0,
        1440,
    ),
    Setting("magnitude_minimum", "int", 3, "Events below this magnitude are not searched.", 0, 10),
    Setting("retention_days", "int", 90, "Detections older than this are deleted.", 1, 3650),
    Setting(
        "log_source_types",
        "log_source_types",
        {
            # IDs from IBM's pySigma QRadar backend (Google's display names are read from its keys,
            # UNCONFIRMED: README, "Log source types").
            # Names are resolved to IDs at run time when the console knows them; the IDs are the fallback.
            "AWS": [{"name": "Amazon AWS CloudTrail", "id": 347}],
            "Azure AD": [
                {"name": "Microsoft Azure Active Directory", "id": 445},
                {"name": "Microsoft Azure Platform", "id": 413},
            ],
            "Office 365": [{"name": "Microsoft Office 365", "id": 397}],
            "GCP": [{"name": "Google Cloud Audit", "id": 449}],
            "Google Workspace": [{"name": "Google G Suite", "id": 442}],
        },
        "Log source types searched per cloud platform: names, with default type IDs.",
    ),
    Setting(
        "custom_properties",
        "str_map",
        {
            "account_name": "Account Name",
            "target_username": "Target Username",
            "user_agent": "User Agent",
        },
        "QRadar custom event property names the detection reads (they exist only if defined on the "
        "console; UNCONFIRMED names).",
        validate=_aql_property_names,
    ),
    Setting(
        "custom_property_payload_fallback",
        "bool",
        True,
        "When a custom property is empty or missing, extract the value from the event payload.",
    ),
    Setting(
        "tuning_capabilities",
        "str_list",
        ["ADMIN", "REFERENCEDATA"],
        "QRadar capabilities that allow tuning (any one suffices). 'REFERENCEDATA' as the name of "
        "'Manage Reference Data' is UNCONFIRMED.",
    ),
    Setting(
        "log_activity_capabilities",
        "str_list",
        ["EVENTVIEWER"],
        "QRadar capabilities that grant Log Activity (any one suffices, or ADMIN): needed for event "
        "payloads and hunting. 'EVENTVIEWER' as the capability name is UNCONFIRMED.",
    ),
    Setting(
        "visibility_cache_s",
        "int",
        120,
        "Seconds the log sources a user may see (asked of QRadar with their own token) and their offense "
        "access are cached per user.",
        0,
        3600,
    ),
    Setting(
        "audit_retention_days",
        "int",
        400,
        "Audit records older than this are exported to the store directory, then deleted.",
        30,
        3650,
    ),
    Setting(
        "single_person_approval",
        "bool",
        False,
        "Allow one person to both request and approve a tuning change (off: four-eyes).",
    ),
    Setting(
        "reference_set_name",
        "str",
        "CloudAccountWatch_Allowlist",
        "QRadar reference set mirroring the active allowlist (for REFERENCESETCONTAINS in rules).",
    ),
    Setting(
        "reference_map_name",
        "str",
        "CloudAccountWatch_AllowlistReasons",
        "QRadar reference map: allowlisted value -> reason/entry id.",
    ),
    Setting("api_version", "str", "26.0", "QRadar REST API version sent in the Version header."),
    Setting("search_timeout_s", "int", 300, "Time budget of a background Ariel search (s).", 10, 3600),
    Setting(
        "interactive_search_timeout_s", "int", 120, "Time budget of a user-started Ariel search (s).", 5, 1800
    ),
    Setting("search_poll_wait_s", "int", 5, "Prefer: wait=N seconds per Ariel status poll.", 0, 60),
    Setting("search_page_size", "int", 1000, "Rows per Ariel results page (Range).", 10, 50_000),
    Setting(
        "current_user_path",
        "str",
        "api/config/access/users?current_user=true",
        "REST path that names the logged-in user (UNCONFIRMED on real consoles).",
    ),
    Setting(
        "user_cache_s",
        "int",
        60,
        "Seconds a user's identity and capabilities are cached per token (short: at most 300).",
        0,
        300,
    ),
]

# Settings that shape the shared gateway: changing them rebuilds it.
GATEWAY_KEYS = frozenset({"api_version", "current_user_path", "search_poll_wait_s"})
# The tuning settings. Changing one bumps their version (the tuning page's optimistic lock), which also
# renews the tuning generation: the refresher then pushes the reference set/map at its next cycle.
VERSIONED_KEYS = ("single_person_approval", "reference_set_name", "reference_map_name", "tuning_capabilities")


def _conn(conn: sqlite3.Connection | None) -> sqlite3.Connection:
    if conn is not None:
        return conn
    from app.store.db import get_db

    return get_db()


def defaults() -> dict[str, Any]:
    return {key: copy.deepcopy(s.default) for key, s in REGISTRY.items()}


def all_values(conn: sqlite3.Connection | None = None) -> dict[str, Any]:
    """Every setting: stored value where valid, default otherwise."""
    values = defaults()
    for key, value in settings_rows.setting_rows(_conn(conn)).items():
        setting = REGISTRY.get(key)
        if setting is None:
            continue  # a setting removed from the code: ignore its leftover row
        # a value stored before a validation rule tightened falls back to the default
        with contextlib.suppress(SettingError):
            values[key] = _checked(setting, value)
    return values


def get(key: str, conn: sqlite3.Connection | None = None) -> Any:
    if key not in REGISTRY:
        raise KeyError(f"unknown setting {key!r}")
    return all_values(conn)[key]


def validate(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Typed, validated copies of ``changes``; raises SettingError on the first problem."""
    if not isinstance(changes, Mapping) or not changes:
        raise SettingError("settings", "send an object with at least one setting")
    unknown = sorted(set(changes) - set(REGISTRY))
    if unknown:
        raise SettingError(unknown[0], f"unknown setting(s): {', '.join(unknown)}")
    return {key: _checked(REGISTRY[key], value) for key, value in changes.items()}


def update(
    conn: sqlite3.Connection, changes: Mapping[str, Any], actor: str, *, expected_version: int | None = None
) -> dict[str, Any]:
    """Validate ``changes``, then in one transaction: check ``expected_version`` (the tuning settings
    version the caller read; StaleSettingsVersion when another change came first), bump that version when
    it was given or a `VERSIONED_KEYS` value changes, store the values and one audit row. Returns all
    values."""
    clean = validate(changes)
    with transaction(conn):
        before = all_values(conn)
        versioned_change = any(key in VERSIONED_KEYS and before[key] != value for key, value in clean.items())
        if expected_version is not None or versioned_change:
            version = tuning_store.settings_version(conn) if expected_version is None else expected_version
            if not tuning_store.bump_settings_version(conn, version):
                raise StaleSettingsVersion(tuning_store.settings_version(conn))
        for key, value in clean.items():
            if value == REGISTRY[key].default:
                settings_rows.delete_setting(conn, key)
            else:
                settings_rows.put_setting(conn, key, value, actor)
        audit.record_audit(
            conn,
            actor=actor,
            action="settings.update",
            object_type="settings",
            object_id=None,
            before={k: before[k] for k in clean},
            after=clean,
        )
    return all_values(conn)


def describe() -> list[dict[str, Any]]:
    """Metadata for the settings page / OpenAPI: key, kind, default, description, bounds."""
    return [
        {
            "key": s.key,
            "kind": s.kind,
            "default": copy.deepcopy(s.default),
            "description": s.description,
            "minimum": s.minimum,
            "maximum": s.maximum,
        }
        for s in REGISTRY.values()
    ]
