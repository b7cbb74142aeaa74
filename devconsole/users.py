"""Built-in dev console users, roles, capabilities and their SEC tokens.

The roles mirror docs/ARCHITECTURE.md ("Built-in users and capabilities"). Tokens are random per data
directory and persisted to ``DIR/tokens.json`` (user name -> token) so tests and the app can read them.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Role:
    id: int
    name: str
    capabilities: tuple[str, ...]


@dataclass(frozen=True)
class SecurityProfile:
    """Which log sources a user's data is limited to, as QRadar's security profiles do: ``None`` = every
    log source (QRadar's "Admin" profile); otherwise the log sources of these log source types."""

    id: int
    name: str
    log_source_type_ids: tuple[int, ...] | None = None

    def visible_log_source_ids(self, conn: sqlite3.Connection) -> frozenset[int] | None:
        """The log source IDs this profile may see (``None``: all of them)."""
        if self.log_source_type_ids is None:
            return None
        marks = ",".join("?" * len(self.log_source_type_ids))
        rows = conn.execute(
            f"SELECT id FROM log_sources WHERE type_id IN ({marks})", self.log_source_type_ids
        )
        return frozenset(int(r[0]) for r in rows)


PROFILES: dict[str, SecurityProfile] = {
    "Admin": SecurityProfile(1, "Admin"),
    # Amazon AWS CloudTrail log sources only.
    "AWS only": SecurityProfile(2, "AWS only", (347,)),
}


@dataclass(frozen=True)
class User:
    id: int
    username: str
    role: Role
    email: str = ""
    is_service: bool = False
    security_profile: SecurityProfile = PROFILES["Admin"]

    def has_capability(self, name: str) -> bool:
        """ADMIN implies every capability, as in QRadar."""
        return "ADMIN" in self.role.capabilities or name in self.role.capabilities

    def has_all(self, names: list[str] | tuple[str, ...]) -> bool:
        return all(self.has_capability(name) for name in names)


# Capability ids are ours (QRadar's numeric ids are not published); names are QRadar's.
CAPABILITY_IDS: dict[str, int] = {"ADMIN": 1, "SEM": 2, "EVENTVIEWER": 3, "REFERENCEDATA": 4}

ROLES: dict[str, Role] = {
    "Admin": Role(1, "Admin", ("ADMIN",)),
    "Detection Engineer": Role(2, "Detection Engineer", ("SEM", "EVENTVIEWER", "REFERENCEDATA")),
    "Analyst": Role(3, "Analyst", ("SEM", "EVENTVIEWER")),
    "Authorized Service": Role(4, "Authorized Service", ("ADMIN",)),
    # Offenses but not Log Activity: sees offenses, cannot search events or read payloads.
    "Offense Viewer": Role(5, "Offense Viewer", ("SEM",)),
}

USERS: dict[str, User] = {
    "admin": User(1, "admin", ROLES["Admin"], "admin@example.test"),
    "tuner1": User(2, "tuner1", ROLES["Detection Engineer"], "tuner1@example.test"),
    "tuner2": User(3, "tuner2", ROLES["Detection Engineer"], "tuner2@example.test"),
    "analyst": User(4, "analyst", ROLES["Analyst"], "analyst@example.test"),
    # The authorized-service token the app uses as SEC_ADMIN_TOKEN.
    "service": User(5, "service", ROLES["Authorized Service"], is_service=True),
    # An analyst whose security profile limits their data to AWS CloudTrail log sources.
    "restricted": User(
        6, "restricted", ROLES["Analyst"], "restricted@example.test", False, PROFILES["AWS only"]
    ),
    "nologs": User(7, "nologs", ROLES["Offense Viewer"], "nologs@example.test"),
}


def role_json(role: Role) -> dict:
    """The shape of ``GET /api/config/access/user_roles`` items."""
    return {
        "id": role.id,
        "name": role.name,
        "capabilities": [{"id": CAPABILITY_IDS.get(c, 0), "name": c} for c in role.capabilities],
    }


def user_json(user: User) -> dict:
    """The shape of ``GET /api/config/access/users`` items (subset)."""
    return {
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "user_role_id": user.role.id,
        "security_profile_id": user.security_profile.id,
        "tenant_id": 0,
    }


def same_secret(expected: str, given: str) -> bool:
    """Constant-time comparison that also accepts non-ASCII input (an attacker's header) without raising."""
    return secrets.compare_digest(
        expected.encode("utf-8", "surrogateescape"), given.encode("utf-8", "surrogateescape")
    )


class TokenRegistry:
    """Maps SEC tokens to users; persisted in DIR/tokens.json."""

    def __init__(self, tokens: dict[str, str]) -> None:
        self.tokens = dict(tokens)
        self._by_token = {tok: USERS[name] for name, tok in tokens.items() if name in USERS}

    @classmethod
    def load_or_create(cls, data_dir: str | os.PathLike) -> TokenRegistry:
        """Read DIR/tokens.json, adding a fresh random token for any built-in user missing from it."""
        path = Path(data_dir) / "tokens.json"
        tokens: dict[str, str] = {}
        if path.exists():
            tokens = json.loads(path.read_text(encoding="utf-8"))
        changed = False
        for name in USERS:
            if name not in tokens:
                tokens[name] = secrets.token_hex(16)
                changed = True
        if changed or not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(tokens, indent=2) + "\n", encoding="utf-8")
            os.chmod(tmp, 0o600)
            tmp.replace(path)
        return cls(tokens)

    def user_for(self, token: str | None) -> User | None:
        if not token:
            return None
        for known, user in self._by_token.items():
            if same_secret(known, token):
                return user
        return None

    def token_for(self, username: str) -> str:
        return self.tokens[username]
