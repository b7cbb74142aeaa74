"""A dev console of its own for install tests, and app zips built by build.sh from a copy of this tree."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from devconsole.apps.deploy import ConsoleClient
from devconsole.launcher import ServeProcess, start_serve, stop_serve

ROOT = Path(__file__).resolve().parents[2]
# What the console has for apps in these tests: the app's 300 MB fits, 2001 MB does not.
CONSOLE_APP_MEMORY_MB = 2000


@dataclass
class InstallConsole:
    serve: ServeProcess
    data_dir: Path
    tokens: dict[str, str]

    @property
    def base_url(self) -> str:
        return self.serve.base_url

    def client(self, user: str = "admin") -> ConsoleClient:
        return ConsoleClient(self.base_url, self.tokens[user], self.serve.ca_path)

    def browser_session(self, user: str) -> requests.Session:
        """A console user's session as a browser has it: SEC and QRadarCSRF cookies, the CSRF header."""
        session = requests.Session()
        session.trust_env = False  # else REQUESTS_CA_BUNDLE from the environment replaces verify
        session.verify = self.serve.ca_path
        session.cookies.set("SEC", self.tokens[user])
        session.cookies.set("QRadarCSRF", "csrf-" + user)
        session.headers["QRadarCSRF"] = "csrf-" + user
        return session


@pytest.fixture(scope="module")
def install_console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InstallConsole]:
    data_dir = tmp_path_factory.mktemp("install_console")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "devconsole",
            "seed",
            "--data",
            str(data_dir),
            "--events",
            "600",
            "--seed",
            "7",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DEVCONSOLE_APP_MEMORY_MB", str(CONSOLE_APP_MEMORY_MB))
        serve = start_serve(data_dir)
    tokens = json.loads((data_dir / "tokens.json").read_text(encoding="utf-8"))
    try:
        yield InstallConsole(serve, data_dir, tokens)
    finally:
        stop_serve(serve.process)


def build_zip(dest: Path, version: str | None = None) -> Path:
    """build.sh run on a copy of what it reads (optionally with another manifest version)."""
    tree = dest / "tree"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    tree.mkdir(parents=True)
    for name in ("manifest.json", "pyproject.toml", "build.sh"):
        shutil.copy2(ROOT / name, tree / name)
    for name in ("app", "container", "requirements"):
        shutil.copytree(ROOT / name, tree / name, ignore=ignore)
    if version is not None:
        manifest = json.loads((tree / "manifest.json").read_text(encoding="utf-8"))
        manifest["version"] = version
        (tree / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    env = {
        **os.environ,
        "DIST_DIR": str(dest / "dist"),
        "WHEEL_CACHE": str(ROOT / "var" / "wheels"),
        "PYTHON": sys.executable,
    }
    result = subprocess.run(
        ["bash", "build.sh"], cwd=tree, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr + result.stdout
    (archive,) = (dest / "dist").glob("*.zip")
    return archive


@pytest.fixture(scope="module")
def app_zip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return build_zip(tmp_path_factory.mktemp("zip_v1")).read_bytes()


def rewrite_zip(original: bytes, change: Callable[[dict[str, bytes]], None]) -> bytes:
    """``original`` with its entries changed by ``change`` (name -> bytes; delete or set)."""
    with zipfile.ZipFile(io.BytesIO(original)) as source:
        entries = {info.filename: source.read(info) for info in source.infolist()}
    change(entries)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for name, data in entries.items():
            target.writestr(name, data)
    return out.getvalue()
