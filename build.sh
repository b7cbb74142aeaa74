#!/usr/bin/env bash
# Build the installable app archive dist/<name>-<version>.zip from this tree.
#
# Contents: manifest.json at the root, app/ (no caches), container/ (conf, run scripts) and
# container/pip/ holding a manylinux x86_64 CPython 3.11 wheel for every package the base image lacks
# (the "bundled" group of requirements/app.txt) plus ordering.txt — nothing is fetched at install time.
# Never included: tests, the dev console, caches, store data, qenv.ini, secrets.
# The archive is deterministic: sorted entries, fixed timestamps and permissions, so the same tree
# gives a byte-identical zip. Downloaded wheels are cached in var/wheels/.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON="${PYTHON:-}"
if [ -z "$PYTHON" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi

NAME="$("$PYTHON" -c 'import tomllib; print(tomllib.load(open("pyproject.toml","rb"))["project"]["name"])')"
VERSION="$("$PYTHON" -c 'import json; print(json.load(open("manifest.json"))["version"])')"
WHEEL_CACHE="${WHEEL_CACHE:-var/wheels}"
DIST_DIR="${DIST_DIR:-dist}"
OUT="${DIST_DIR}/${NAME}-${VERSION}.zip"

# The bundled group: requirement lines after the "--- bundled" marker, comments stripped.
mapfile -t BUNDLED < <(sed -n '/^# --- bundled/,$p' requirements/app.txt | sed -e 's/#.*//' -e 's/[[:space:]]//g' | grep -v '^$')
if [ "${#BUNDLED[@]}" -eq 0 ]; then
  echo "build.sh: no bundled requirements found in requirements/app.txt" >&2
  exit 1
fi

mkdir -p "$WHEEL_CACHE" "$DIST_DIR"
"$PYTHON" -m pip download --quiet --disable-pip-version-check --only-binary=:all: \
  --platform manylinux2014_x86_64 --python-version 3.11 --implementation cp --no-deps \
  --dest "$WHEEL_CACHE" "${BUNDLED[@]}"

"$PYTHON" - "$OUT" "$WHEEL_CACHE" "${BUNDLED[@]}" <<'PY'
"""Stage and zip deterministically."""
import re
import stat
import sys
import zipfile
from pathlib import Path

out, cache, requirements = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
root = Path(".")
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
EXCLUDED_PARTS = {"__pycache__", ".pytest_cache", ".ruff_cache", "node_modules", ".mypy_cache"}
EXCLUDED_NAMES = {"qenv.ini", ".DS_Store", "secret_key", "requirements.txt"}
EXCLUDED_SUFFIXES = (".pyc", ".pyo", ".db", ".db-wal", ".db-shm", ".log", ".pem", ".key", ".swp")


def wanted(path: Path) -> bool:
    parts = set(path.parts)
    return not (parts & EXCLUDED_PARTS or path.name in EXCLUDED_NAMES or path.name.endswith(EXCLUDED_SUFFIXES)
                or any(p.startswith(".") for p in path.parts) or path.parts[:2] == ("container", "pip"))


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


entries: dict[str, bytes | Path] = {"manifest.json": root / "manifest.json"}
for top in ("app", "container"):
    for path in sorted((root / top).rglob("*")):
        if path.is_file() and wanted(path.relative_to(root)):
            entries[path.relative_to(root).as_posix()] = path

# One wheel per bundled requirement, in requirements order (dependencies first in app.txt).
ordering = []
for req in requirements:
    name, _, version = req.partition("==")
    matches = sorted(p for p in cache.glob("*.whl")
                     if canonical(p.name.split("-")[0]) == canonical(name) and p.name.split("-")[1] == version)
    if len(matches) != 1:
        sys.exit(f"build.sh: expected one wheel for {req} in {cache}, found {[m.name for m in matches]}")
    entries[f"container/pip/{matches[0].name}"] = matches[0]
    ordering.append(matches[0].name)
# gunicorn needs packaging: install dependencies before dependants.
ordering.sort(key=lambda n: 0 if canonical(n.split("-")[0]) == "packaging" else 1)
entries["container/pip/ordering.txt"] = ("\n".join(ordering) + "\n").encode()

tmp = out.with_suffix(".zip.tmp")
with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
    for arcname in sorted(entries):
        source = entries[arcname]
        data = source if isinstance(source, bytes) else source.read_bytes()
        executable = not isinstance(source, bytes) and bool(source.stat().st_mode & stat.S_IXUSR)
        info = zipfile.ZipInfo(arcname, FIXED_TIME)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.create_system = 3
        info.external_attr = ((0o100755 if executable else 0o100644) & 0xFFFF) << 16
        zf.writestr(info, data, compresslevel=9)
tmp.replace(out)
print(f"built {out} ({out.stat().st_size} bytes, {len(entries)} files)")
PY
