"""build.sh: the app zip has what QRadar installs offline and nothing that must stay out; rebuilding
the same tree gives the same bytes."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE_PACKAGES = {"flask", "werkzeug", "jinja2", "requests", "urllib3"}

pytestmark = pytest.mark.slow


def bundled_requirements() -> list[str]:
    lines = (ROOT / "requirements/app.txt").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("# --- bundled"))
    return [line.split("#")[0].strip() for line in lines[start + 1 :] if line.split("#")[0].strip()]


def snapshot(dest: Path) -> Path:
    """Copy what build.sh reads, so other work in the tree cannot change the input mid-test."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    for name in ("manifest.json", "pyproject.toml", "build.sh"):
        shutil.copy2(ROOT / name, dest / name)
    for name in ("app", "container", "requirements"):
        shutil.copytree(ROOT / name, dest / name, ignore=ignore)
    (dest / "app" / "__pycache__").mkdir(exist_ok=True)
    (dest / "app" / "__pycache__" / "junk.cpython-311.pyc").write_bytes(b"x")  # must be left out
    (dest / "qenv.ini").write_text("[app]\nSEC_ADMIN_TOKEN=secret\n")
    (dest / "app" / "qenv.ini").write_text("[app]\nSEC_ADMIN_TOKEN=secret\n")
    (dest / "container" / "pip").mkdir(exist_ok=True)
    (dest / "container" / "pip" / "requirements.txt").write_text("flask\n")  # stale, must not ship
    return dest


def build(tree: Path, dist: Path) -> Path:
    env = {
        **os.environ,
        "DIST_DIR": str(dist),
        "WHEEL_CACHE": str(ROOT / "var" / "wheels"),
        "PYTHON": str(ROOT / ".venv" / "bin" / "python"),
    }
    result = subprocess.run(
        ["bash", "build.sh"], cwd=tree, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr + result.stdout
    version = json.loads((tree / "manifest.json").read_text())["version"]
    archive = dist / f"cloud-account-watch-{version}.zip"
    assert archive.is_file()
    return archive


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    tree = snapshot(tmp_path_factory.mktemp("tree"))
    first = build(tree, tmp_path_factory.mktemp("dist1"))
    second = build(tree, tmp_path_factory.mktemp("dist2"))
    return first, second


def test_rebuild_is_byte_identical(built):
    first, second = built
    assert first.read_bytes() == second.read_bytes()


def test_layout_and_offline_wheels(built):
    archive, _ = built
    with zipfile.ZipFile(archive) as zf:
        names = zf.namelist()
        assert zf.testzip() is None
        manifest = json.loads(zf.read("manifest.json"))
        ordering = zf.read("container/pip/ordering.txt").decode()
        infos = zf.infolist()
    assert names == sorted(names)
    assert manifest["version"] in archive.name
    assert "app/__init__.py" in names
    assert "container/conf/supervisord.d/gunicorn.conf" in names
    assert "container/conf/supervisord.d/refresher.conf" in names
    assert any(n.startswith("app/store/migrations/0001_") for n in names)
    wheels = sorted(n.split("/")[-1] for n in names if n.startswith("container/pip/") and n.endswith(".whl"))
    assert ordering.endswith("\n") and "\r" not in ordering
    assert sorted(ordering.split()) == wheels
    assert ordering.split()[0].startswith("packaging-")  # gunicorn's dependency is installed first
    # The request-body validator (app/api/schema.py) is not in the base image: its wheel ships too.
    assert any(w.startswith("fastjsonschema-2.22.3-") and w.endswith("-py3-none-any.whl") for w in wheels)
    wanted = {req.split("==")[0].lower(): req.split("==")[1] for req in bundled_requirements()}
    found = {w.split("-")[0].lower(): w.split("-")[1] for w in wheels}
    assert found == wanted
    for wheel in wheels:
        tags = wheel[:-4].split("-")[-3:]
        assert tags[0] in ("py3", "cp311") and (tags[2] == "any" or "x86_64" in tags[2]), wheel
    assert not {w.split("-")[0].lower() for w in wheels} & BASE_IMAGE_PACKAGES
    for info in infos:
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert (info.external_attr >> 16) & 0o777 in (0o644, 0o755)


def test_nothing_that_must_stay_out(built):
    archive, _ = built
    with zipfile.ZipFile(archive) as zf:
        names = zf.namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"manifest.json", "app", "container"}
    for name in names:
        parts = name.split("/")
        assert "__pycache__" not in parts and not name.endswith((".pyc", ".db", ".db-wal", ".log")), name
        assert parts[-1] not in ("qenv.ini", "secret_key", "requirements.txt", "tokens.json", "ca.pem"), name
        assert parts[0] not in ("tests", "devconsole", "store", "var", "bench", ".venv", "vendor"), name
        assert "qpylib" not in name.lower(), (
            name
        )  # the base image ships qpylib; the vendored wheel is for dev


def test_qpylib_is_installed_for_development_only():
    """requirements/dev.txt installs the vendored wheel (the one vendor/qpylib/README.md describes);
    requirements/app.txt, which build.sh bundles from, never names it."""

    def requirement_lines(name: str) -> list[str]:
        lines = (ROOT / "requirements" / name).read_text().splitlines()
        return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]

    (wheel,) = [line for line in requirement_lines("dev.txt") if "qpylib" in line]
    assert wheel == "./vendor/qpylib/qpylib-2.0.9-py3-none-any.whl"
    digest = hashlib.sha256((ROOT / wheel).read_bytes()).hexdigest()
    assert f"sha256 `{digest}`" in (ROOT / "vendor" / "qpylib" / "README.md").read_text()
    assert (
        "Apache License\n                           Version 2.0"
        in (ROOT / "vendor/qpylib/LICENSE.txt").read_text()
    )
    assert importlib.metadata.version("qpylib") == "2.0.9"
    assert not [line for line in requirement_lines("app.txt") if "qpylib" in line.lower()]
