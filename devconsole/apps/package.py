"""Reading and checking an app zip the way QRadar does before it installs anything.

`read_package(data, ...)` returns an `AppPackage` or raises `InstallRefused` carrying QRadar's 422 code
(API 26.0, ``POST /gui_app_framework/application_creation_task``):

======  ==========================================================================================
33102   the zip's structure is invalid (not a zip, unsafe or duplicate entry names, too large)
33103   no ``manifest.json`` at the zip's root
33104   the manifest does not match the schema (``manifest_schema.json``)
33105   the manifest has duplicate keys
33106   the manifest cannot be parsed (not UTF-8 JSON)
33201   RPM/Python dependencies cannot be processed (``container/pip`` and its ``ordering.txt`` disagree,
        RPMs, which the dev console cannot install); a wheel pip refuses later is 33201 too
33302   the app asks for more memory than the console has left for apps
33303   the OAuth flow is not ``CLIENT_CREDENTIALS``
33304   a requested OAuth capability is unknown to the console
33307   a ``required_capabilities`` entry names an unknown capability
33308   a dashboard item, GUI action, metadata provider or uninstall hook names a REST method that
        ``rest_methods`` does not declare
======  ==========================================================================================
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

CODE_ZIP_STRUCTURE = 33102
CODE_NO_MANIFEST = 33103
CODE_SCHEMA = 33104
CODE_DUPLICATE_KEYS = 33105
CODE_UNPARSABLE = 33106
CODE_DEPENDENCIES = 33201
CODE_MEMORY = 33302
CODE_OAUTH_FLOW = 33303
CODE_OAUTH_CAPABILITY = 33304
CODE_REQUIRED_CAPABILITY = 33307
CODE_REST_METHOD = 33308

SCHEMA_PATH = Path(__file__).with_name("manifest_schema.json")
# No documented limit; a bound keeps a hostile zip from filling the disk when unpacked.
MAX_UNPACKED_BYTES = 512 * 1024 * 1024
MAX_ENTRIES = 20_000
# qapp run's default when a manifest names no resources.memory.
DEFAULT_MEMORY_MB = 100
PACKAGE_SUFFIXES = (".whl", ".tar.gz", ".zip")
SACROSANCT = frozenset(
    {
        "bin/log_collector.py",
        "bin/as_root",
        "bin/start.sh",
        "bin/start_flask.sh",
        "bin/update_ca_bundle.sh",
        "bin/whitegate_egress.sh",
    }
)
SACROSANCT_PREFIXES = ("startup.d/A0", "startup.d/A9")


class InstallRefused(Exception):
    """An install QRadar would refuse with HTTP 422 and this code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class AppPackage:
    """A checked app zip: its manifest and its entries (archive name -> bytes)."""

    manifest: dict[str, Any]
    files: dict[str, bytes] = field(repr=False)
    pip_order: list[str]
    sha256: str = ""

    @property
    def uuid(self) -> str:
        return str(self.manifest["uuid"]).lower()

    @property
    def memory_mb(self) -> int:
        return int((self.manifest.get("resources") or {}).get("memory", DEFAULT_MEMORY_MB))

    @property
    def requested_capabilities(self) -> list[str]:
        oauth = (self.manifest.get("authentication") or {}).get("oauth2") or {}
        return list(oauth.get("requested_capabilities") or [])

    def unpack(self, root: Path) -> None:
        """Write the entries under ``root`` (names were checked to stay inside it), except what the
        container hides: ``store/`` (the persistent volume is mounted there) and the framework's
        sacrosanct files, which QRadar ignores in an archive."""
        for name, data in self.files.items():
            if name.startswith("store/") or name in SACROSANCT or name.startswith(SACROSANCT_PREFIXES):
                continue
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            if name.startswith("container/") and name.endswith(".sh"):
                target.chmod(0o755)


class DuplicateKeyError(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise DuplicateKeyError(key)
        seen[key] = value
    return seen


@cache
def _validator() -> Any:
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def parse_manifest(raw: bytes) -> dict[str, Any]:
    """The manifest as a dict; duplicate keys (at any depth) and unparsable text are refused."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InstallRefused(CODE_UNPARSABLE, f"manifest.json is not UTF-8 text: {exc}") from None
    try:
        manifest = json.loads(text, object_pairs_hook=_no_duplicates)
    except DuplicateKeyError as exc:
        raise InstallRefused(
            CODE_DUPLICATE_KEYS, f"manifest.json has the key '{exc}' twice in one object"
        ) from None
    except ValueError as exc:
        raise InstallRefused(CODE_UNPARSABLE, f"manifest.json is not valid JSON: {exc}") from None
    return manifest


def validate_manifest(manifest: Any) -> None:
    """Schema, then the cross-references the schema cannot express."""
    errors = sorted(_validator().iter_errors(manifest), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(top level)"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise InstallRefused(
            CODE_SCHEMA, f"manifest.json does not match the schema at {where}: {first.message}{more}"
        )
    names = [m["name"] for m in manifest.get("rest_methods") or []]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InstallRefused(CODE_SCHEMA, f"rest_methods names must be unique: {', '.join(duplicates)}")
    for section in ("dashboard_items", "gui_actions", "metadata_providers", "uninstall_hooks"):
        for index, entry in enumerate(manifest.get(section) or []):
            wanted = entry.get("rest_method")
            if wanted is not None and wanted not in names:
                raise InstallRefused(
                    CODE_REST_METHOD,
                    f"{section}[{index}] uses the REST method '{wanted}', which rest_methods does not declare",
                )


def check_capabilities(manifest: dict[str, Any], known: set[str]) -> None:
    oauth = (manifest.get("authentication") or {}).get("oauth2")
    if oauth is not None:
        flow = oauth.get("authorisation_flow", "CLIENT_CREDENTIALS")
        if flow != "CLIENT_CREDENTIALS":
            raise InstallRefused(
                CODE_OAUTH_FLOW, f"authorisation_flow '{flow}' is not supported; use CLIENT_CREDENTIALS"
            )
        requested = oauth.get("requested_capabilities") or []
        if not requested:
            raise InstallRefused(
                CODE_OAUTH_CAPABILITY, "requested_capabilities must name at least one capability"
            )
        unknown = [c for c in requested if c not in known]
        if unknown:
            raise InstallRefused(
                CODE_OAUTH_CAPABILITY,
                f"requested_capabilities names unknown capabilities: {', '.join(unknown)}",
            )
    for section in ("areas", "rest_methods", "dashboard_items", "configuration_pages", "gui_actions"):
        for index, entry in enumerate(manifest.get(section) or []):
            unknown = [c for c in entry.get("required_capabilities") or [] if c not in known]
            if unknown:
                raise InstallRefused(
                    CODE_REQUIRED_CAPABILITY,
                    f"{section}[{index}].required_capabilities names unknown capabilities: {', '.join(unknown)}",
                )


def _read_zip(data: bytes) -> dict[str, bytes]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError) as exc:
        raise InstallRefused(CODE_ZIP_STRUCTURE, f"the upload is not a zip archive: {exc}") from None
    infos = archive.infolist()
    if len(infos) > MAX_ENTRIES:
        raise InstallRefused(CODE_ZIP_STRUCTURE, f"the zip has {len(infos)} entries; at most {MAX_ENTRIES}")
    if sum(i.file_size for i in infos) > MAX_UNPACKED_BYTES:
        raise InstallRefused(CODE_ZIP_STRUCTURE, f"the zip unpacks to more than {MAX_UNPACKED_BYTES} bytes")
    files: dict[str, bytes] = {}
    for info in infos:
        name = info.filename
        path = PurePosixPath(name)
        if name.startswith("/") or "\\" in name or ".." in path.parts or ":" in path.parts[0]:
            raise InstallRefused(CODE_ZIP_STRUCTURE, f"unsafe entry name in the zip: {name!r}")
        if (info.external_attr >> 16) & 0o170000 == 0o120000:
            raise InstallRefused(CODE_ZIP_STRUCTURE, f"the zip holds a symbolic link: {name!r}")
        if info.is_dir():
            continue
        key = path.as_posix()
        if key in files:
            raise InstallRefused(CODE_ZIP_STRUCTURE, f"the zip holds {name!r} twice")
        try:
            files[key] = archive.read(info)
        except (zipfile.BadZipFile, OSError, RuntimeError, ValueError) as exc:
            raise InstallRefused(CODE_ZIP_STRUCTURE, f"cannot read {name!r} from the zip: {exc}") from None
    return files


def pip_order(files: dict[str, bytes]) -> list[str]:
    """The wheels of ``container/pip`` in install order; the directory and ``ordering.txt`` must agree."""
    if any(n.startswith("container/rpm/") and n.endswith(".rpm") for n in files):
        raise InstallRefused(
            CODE_DEPENDENCIES,
            "container/rpm holds RPMs; the dev console has no RHEL package manager to install them",
        )
    packages = sorted(
        n.removeprefix("container/pip/")
        for n in files
        if n.startswith("container/pip/") and n.count("/") == 2 and n.endswith(PACKAGE_SUFFIXES)
    )
    if "container/pip/requirements.txt" in files:
        raise InstallRefused(
            CODE_DEPENDENCIES,
            "container/pip/requirements.txt needs the internet at install; bundle the wheels with ordering.txt",
        )
    raw = files.get("container/pip/ordering.txt")
    if raw is None:
        if len(packages) > 1:
            raise InstallRefused(
                CODE_DEPENDENCIES, f"container/pip holds {len(packages)} packages but no ordering.txt"
            )
        return packages
    try:
        lines = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InstallRefused(CODE_DEPENDENCIES, "container/pip/ordering.txt is not UTF-8 text") from None
    if "\r" in lines:
        raise InstallRefused(CODE_DEPENDENCIES, "container/pip/ordering.txt must use UNIX line endings")
    order = [line.strip() for line in lines.splitlines() if line.strip()]
    missing = [n for n in order if n not in packages]
    if missing:
        raise InstallRefused(
            CODE_DEPENDENCIES, f"container/pip/ordering.txt names files the zip lacks: {', '.join(missing)}"
        )
    unlisted = [p for p in packages if p not in order]
    if unlisted:
        raise InstallRefused(
            CODE_DEPENDENCIES,
            f"container/pip holds packages that ordering.txt does not list: {', '.join(unlisted)}",
        )
    if len(set(order)) != len(order):
        raise InstallRefused(CODE_DEPENDENCIES, "container/pip/ordering.txt lists a file twice")
    return order


def read_package(
    data: bytes, *, known_capabilities: set[str], memory_left_mb: Callable[[str], int]
) -> AppPackage:
    """Check an uploaded zip; ``memory_left_mb(uuid)`` is what the console has for the app with that uuid
    (an upgrade's own memory is free again)."""
    files = _read_zip(data)
    if "manifest.json" not in files:
        elsewhere = next((n for n in files if n.endswith("/manifest.json")), None)
        hint = f" (found {elsewhere}; v2 apps keep it at the root)" if elsewhere else ""
        raise InstallRefused(CODE_NO_MANIFEST, f"the zip has no manifest.json at its root{hint}")
    manifest = parse_manifest(files["manifest.json"])
    validate_manifest(manifest)
    if not any(n.startswith("app/") for n in files):
        raise InstallRefused(CODE_ZIP_STRUCTURE, "the zip has no app/ directory")
    check_capabilities(manifest, known_capabilities)
    package = AppPackage(
        manifest=manifest, files=files, pip_order=pip_order(files), sha256=hashlib.sha256(data).hexdigest()
    )
    left = memory_left_mb(package.uuid)
    if package.memory_mb > left:
        raise InstallRefused(
            CODE_MEMORY,
            f"the app asks for {package.memory_mb} MB (resources.memory) but the console has "
            f"{left} MB left for apps",
        )
    return package
