"""Running an installed app as ``qradar-app-base`` 4.x would, without a container.

* **The base image** is a Python 3.11 virtual environment holding only what the image ships for apps:
  the first group of ``requirements/app.txt`` (Flask, Werkzeug, Jinja2, requests, urllib3), IBM's qpylib
  from ``vendor/qpylib`` with its dependencies at the image's versions (``BASE_IMAGE_EXTRAS``), and pip.
  It is built once (from PyPI, as an image build would) and cached under ``var/app-base/<key>/``.
* **Each app** gets a fresh environment on top of it: a venv whose ``site-packages`` holds a ``.pth``
  line pointing at the base's, into which the zip's own wheels go offline, in ``ordering.txt`` order
  (``pip install --no-index --find-links container/pip``; a dependency neither bundled nor in the base
  fails there, as it would in QRadar).
* **The container** is the app root (the unpacked zip, ``store`` linked to a folder that outlives
  upgrades) plus a real supervisord that includes ``container/conf/supervisord.d/*.conf``. Paths are
  mapped the way the container mounts them: ``/opt/app-root`` in those files becomes the app root, and
  the service port 5000 becomes a free local port (Docker publishes 5000 on an ephemeral host port).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
QPYLIB_WHEEL = REPO_ROOT / "vendor" / "qpylib" / "qpylib-2.0.9-py3-none-any.whl"
# qpylib's own dependencies at the versions qradar-app-base 4.0.11 lists (its package page).
BASE_IMAGE_EXTRAS = ("cryptography==37.0.2", "pycryptodome==3.20.0")
CONTAINER_ROOT = "/opt/app-root"
CONTAINER_PORT = 5000
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 40.0
PR_SET_PDEATHSIG = 1


class RuntimeProblem(Exception):
    """The app could not be prepared or started; the message says what and shows the relevant log."""


def base_image_requirements() -> list[str]:
    """requirements/app.txt's first group: what the base image already ships."""
    lines = (REPO_ROOT / "requirements" / "app.txt").read_text(encoding="utf-8").splitlines()
    wanted = []
    for line in lines:
        if line.startswith("# --- bundled"):
            break
        requirement = line.split("#", 1)[0].strip()
        if requirement:
            wanted.append(requirement)
    return wanted


def python311() -> str:
    """A Python 3.11 interpreter (the base image's version) to build environments with."""
    candidates = [getattr(sys, "_base_executable", ""), shutil.which("python3.11") or "", sys.executable]
    for candidate in candidates:
        if not candidate:
            continue
        out = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 11))"],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.stdout.strip() == "True":
            return candidate
    raise RuntimeProblem("no Python 3.11 interpreter found (qradar-app-base 4.x runs Python 3.11)")


def _run(cmd: list[str], what: str, **kwargs: object) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip()[-3000:]
        raise RuntimeProblem(f"{what} failed: {tail}")
    return result


def _site_packages(venv: Path) -> Path:
    return venv / "lib" / "python3.11" / "site-packages"


def base_image_dir() -> Path:
    """Where the base environment is cached; keyed by what it holds, so a change rebuilds it."""
    cache = Path(os.environ.get("DEVCONSOLE_APP_BASE_CACHE") or REPO_ROOT / "var" / "app-base")
    key = hashlib.sha256(
        "\n".join([*base_image_requirements(), *BASE_IMAGE_EXTRAS, QPYLIB_WHEEL.name]).encode()
        + QPYLIB_WHEEL.read_bytes()
    ).hexdigest()[:16]
    return cache / f"py311-{key}"


def ensure_base_image() -> Path:
    """The cached base environment, built on first use (one builder at a time across processes)."""
    target = base_image_dir()
    if (target / "READY").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / "READY").exists():
            return target
        shutil.rmtree(target, ignore_errors=True)
        _run([python311(), "-m", "venv", str(target)], "creating the base image's Python 3.11 environment")
        pip = [
            str(target / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ]
        _run(
            [*pip, "--only-binary=:all:", *base_image_requirements(), *BASE_IMAGE_EXTRAS, str(QPYLIB_WHEEL)],
            "installing the base image's packages",
        )
        frozen = _run([str(target / "bin" / "python"), "-m", "pip", "freeze"], "listing the base image")
        (target / "base-image-packages.txt").write_text(frozen.stdout, encoding="utf-8")
        (target / "READY").write_text("ok\n", encoding="utf-8")
    return target


def create_app_env(venv: Path, base: Path, wheel_dir: Path, order: list[str]) -> None:
    """A fresh venv layered on ``base`` with the app's wheels installed offline in ``order``."""
    shutil.rmtree(venv, ignore_errors=True)
    _run(
        [str(base / "bin" / "python"), "-m", "venv", "--without-pip", str(venv)],
        "creating the app's environment",
    )
    # The base's packages (pip among them) are importable after the app's own, like the image's.
    (_site_packages(venv) / "qradar_app_base.pth").write_text(f"{_site_packages(base)}\n", encoding="utf-8")
    for name in order:
        _run(
            [
                str(venv / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-index",
                "--find-links",
                str(wheel_dir),
                str(wheel_dir / name),
            ],
            f"pip install {name} (offline, container/pip)",
        )


def free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_BIND = re.compile(r"(?:0\.0\.0\.0|127\.0\.0\.1|localhost)?:" + str(CONTAINER_PORT) + r"\b")


def map_container_text(text: str, root: Path, port: int) -> str:
    """A supervisord program file as the container sees it, with its paths and port mapped to this host."""
    mapped = text.replace(CONTAINER_ROOT, str(root))
    return (
        "\n".join(
            _BIND.sub(f"127.0.0.1:{port}", line) if line.lstrip().startswith("command") else line
            for line in mapped.splitlines()
        )
        + "\n"
    )


@dataclass
class Container:
    """The files and process of one running app."""

    run_dir: Path
    root: Path
    venv: Path
    port: int
    env: dict[str, str]
    process: subprocess.Popen | None = None
    log_offset: int = 0

    @property
    def log_dir(self) -> Path:
        return self.root / "store" / "log"

    def write_supervisord_conf(self) -> Path:
        programs = self.run_dir / "supervisord.d"
        shutil.rmtree(programs, ignore_errors=True)
        programs.mkdir(parents=True)
        source = self.root / "container" / "conf" / "supervisord.d"
        for conf in sorted(source.glob("*.conf")) if source.is_dir() else []:
            (programs / conf.name).write_text(
                map_container_text(conf.read_text(encoding="utf-8"), self.root, self.port), encoding="utf-8"
            )
        if not any(programs.iterdir()):
            raise RuntimeProblem(
                "container/conf/supervisord.d holds no .conf program: nothing would serve port 5000"
            )
        conf_path = self.run_dir / "supervisord.conf"
        conf_path.write_text(
            "; Generated by the dev console: the app container's supervisord.\n"
            "[supervisord]\n"
            "nodaemon=true\n"
            f"logfile={self.log_dir / 'supervisord.log'}\n"
            f"pidfile={self.run_dir / 'supervisord.pid'}\n"
            f"childlogdir={self.log_dir}\n"
            f"directory={self.root}\n"
            "\n[include]\n"
            f"files = {programs}/*.conf\n",
            encoding="utf-8",
        )
        return conf_path

    def run_startup_commands(self) -> None:
        """container/run/ordering.txt: commands run at container start, in order."""
        ordering = self.root / "container" / "run" / "ordering.txt"
        if not ordering.is_file():
            return
        for line in ordering.read_text(encoding="utf-8").splitlines():
            command = line.strip()
            if command:
                _run(
                    ["/bin/sh", "-c", command.replace(CONTAINER_ROOT, str(self.root))],
                    f"container/run command {command!r}",
                    cwd=self.root,
                    env=self.env,
                )

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            self.log_offset = (self.log_dir / "supervisord.log").stat().st_size
        conf = self.write_supervisord_conf()
        self.run_startup_commands()
        with (self.run_dir / "supervisord.out").open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "supervisor.supervisord", "--nodaemon", "--configuration", str(conf)],
                cwd=self.root,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )

    def wait_until_healthy(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Until ``/debug`` answers 200 (QRadar's health check); RuntimeProblem with the logs otherwise."""
        deadline = time.monotonic() + timeout_s
        url = f"http://127.0.0.1:{self.port}/debug"
        while True:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeProblem(f"supervisord exited: {self.log_tails()}")
            if self._gave_up():
                raise RuntimeProblem(f"supervisord gave up on a program: {self.log_tails()}")
            try:
                if requests.get(url, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeProblem(f"/debug did not answer 200 within {timeout_s:g} s: {self.log_tails()}")
            time.sleep(0.25)

    def _gave_up(self) -> bool:
        # A program that keeps exiting at start ends FATAL after startretries; /debug will never answer.
        # The log is in the store and outlives this start: read only what this supervisord wrote.
        try:
            with (self.log_dir / "supervisord.log").open("rb") as log:
                log.seek(self.log_offset)
                return b"entered FATAL state" in log.read()
        except OSError:
            return False

    def log_tails(self) -> str:
        parts = []
        logs = sorted(self.log_dir.glob("*.log"))
        # supervisord.out repeats supervisord.log, except when supervisord failed before opening it.
        for path in (
            logs
            if self.log_dir.joinpath("supervisord.log").exists()
            else [self.run_dir / "supervisord.out", *logs]
        ):
            with contextlib.suppress(OSError):
                text = path.read_text(errors="replace").strip()
                if text:
                    parts.append(f"[{path.name}] {text[-800:]}")
        return " | ".join(parts) or "(no logs)"

    def stop(self) -> None:
        """SIGTERM to supervisord, which stops its programs (their stopwaitsecs apply)."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        # Anything a program left in the group (it ran in supervisord's session) goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        self.process = None

    def resident_memory_mb(self) -> dict[str, float] | None:
        """Resident memory of the app's processes (supervisord's children) and of the whole container."""
        if self.process is None or self.process.poll() is not None:
            return None
        import psutil

        try:
            top = psutil.Process(self.process.pid)
            children = top.children(recursive=True)
            app = sum(p.memory_info().rss for p in children)
            total = app + top.memory_info().rss
            # RSS counts the pages gunicorn's forked workers share once per process; PSS splits them,
            # closer to what a container's memory limit charges.
            pss = sum(p.memory_full_info().pss for p in children)
        except psutil.Error:
            return None
        return {
            "processes": len(children),
            "app_rss_mb": round(app / 2**20, 1),
            "with_supervisord_rss_mb": round(total / 2**20, 1),
            "app_pss_mb": round(pss / 2**20, 1),
        }


try:  # resolved before any fork: the child only calls it
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux
    _prctl = None


def _die_with_parent() -> None:
    # supervisord (and so the app) stops when the dev console process ends, however it ends; the fork
    # happens on the installer's long-lived thread, which the parent-death signal is tied to.
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
