"""Installed apps: install, authorize, start, upgrade and uninstall, one job at a time.

State lives in ``DATA/apps/registry.json``; each app in ``DATA/apps/<application_id>/``:

* ``root-<n>/`` — the unpacked zip of generation ``n`` (the container's ``/opt/app-root``), whose
  ``store`` is a link to
* ``store/`` — the app's persistent store; it survives upgrades and goes only with an uninstall,
* ``venv-<n>/`` — the app's Python environment (base image + the zip's wheels),
* ``run/`` — the generated supervisord config and its output, ``ca-bundle.pem`` — the CAs the app trusts.

An install's task moves CREATING (or UPGRADING) → AUTH_REQUIRED (when the manifest asks for OAuth
capabilities not yet granted) → STARTING → COMPLETED, or ends in ERROR / CANCELLED; the app itself is
RUNNING once ``/debug`` answers 200. The running app becomes the console's app: the console pages and
``/console/plugins/<application_id>/app_proxy/`` serve that installed copy.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from devconsole.apps.package import CODE_DEPENDENCIES, AppPackage, InstallRefused, read_package
from devconsole.apps.runtime import Container, RuntimeProblem, create_app_env, ensure_base_image, free_port
from devconsole.users import CAPABILITY_IDS, Role, User

FIRST_APPLICATION_ID = 1201
# The JSA application framework guide: all apps together may use at most 10% of the console's memory.
DEFAULT_MEMORY_SHARE = 0.10
MEMORY_ENV = "DEVCONSOLE_APP_MEMORY_MB"
CODE_START_FAILED = 33400  # ours: the app did not pass QRadar's /debug health check

TASK_CREATING = "CREATING"
TASK_UPGRADING = "UPGRADING"
TASK_AUTH_REQUIRED = "AUTH_REQUIRED"
TASK_STARTING = "STARTING"
TASK_COMPLETED = "COMPLETED"
TASK_CANCELLED = "CANCELLED"
TASK_ERROR = "ERROR"
TASK_ACTIVE = frozenset({TASK_CREATING, TASK_UPGRADING, TASK_AUTH_REQUIRED, TASK_STARTING})


def console_memory_mb() -> int:
    """What the console has for all apps together (``DEVCONSOLE_APP_MEMORY_MB``, else 10% of RAM)."""
    configured = os.environ.get(MEMORY_ENV, "").strip()
    if configured:
        return int(configured)
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return int(total / 2**20 * DEFAULT_MEMORY_SHARE)


@dataclass
class InstalledApp:
    application_id: int
    uuid: str
    manifest: dict[str, Any]
    status: str = "CREATING"  # the app: CREATING, UPGRADING, RUNNING, STOPPED, ERROR
    task_status: str = TASK_CREATING
    errors: list[dict[str, Any]] = field(default_factory=list)
    generation: int = 0  # the root/venv running (0: none yet)
    pending_generation: int = 0  # prepared by an install or upgrade, not started yet
    pending_manifest: dict[str, Any] | None = None
    port: int = 0
    grant: dict[str, Any] | None = None  # {"user_id", "capabilities", "token"}
    zip_sha256: str = ""
    uploaded_at: float = 0.0
    running_at: float = 0.0
    cancel_requested: bool = False

    @property
    def memory_mb(self) -> int:
        return int((self.manifest.get("resources") or {}).get("memory", 100))

    def requested_capabilities(self, manifest: dict[str, Any] | None = None) -> list[str]:
        oauth = ((manifest or self.manifest).get("authentication") or {}).get("oauth2") or {}
        return list(oauth.get("requested_capabilities") or [])

    def task_json(self) -> dict[str, Any]:
        return {
            "application_id": self.application_id,
            "status": self.task_status,
            "error_messages": [e["message"] for e in self.errors],
            "error_messages_json": [dict(e) for e in self.errors],
        }


class AppInstaller:
    """Owns every installed app of one dev console; ``console`` is its shared `Console` state."""

    def __init__(self, console: Any, manifest_loader: Callable[[Path], Any]) -> None:
        # The console's manifest reader (devconsole.server.context.ManifestLoader), passed in so that the
        # installer does not import the server package that hosts it.
        self.manifest_loader = manifest_loader
        self.console = console
        self.data_dir = Path(console.config.data_dir)
        self.dir = self.data_dir / "apps"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.registry_path = self.dir / "registry.json"
        self.lock = threading.RLock()
        self.apps: dict[int, InstalledApp] = {}
        self.next_id = FIRST_APPLICATION_ID
        self.containers: dict[int, Container] = {}
        self.original_app = (console.config.app_id, console.config.app_url, console.manifest)
        self.jobs: queue.Queue[tuple[Callable[..., None], tuple, threading.Event]] = queue.Queue()
        self._load()
        # Every process start happens on this one long-lived thread (see runtime._die_with_parent).
        threading.Thread(target=self._work, name="app-installer", daemon=True).start()
        for app in self.apps.values():
            if app.status == "RUNNING":
                self.submit(self._restart, app.application_id)

    # --- persistence ----------------------------------------------------------------------------

    def _load(self) -> None:
        if not self.registry_path.exists():
            return
        saved = json.loads(self.registry_path.read_text(encoding="utf-8"))
        self.next_id = saved["next_id"]
        for raw in saved["apps"]:
            app = InstalledApp(**raw)
            if app.task_status in TASK_ACTIVE - {TASK_AUTH_REQUIRED}:
                app.task_status, app.errors = (
                    TASK_ERROR,
                    [{"code": CODE_START_FAILED, "message": "the console stopped during the install"}],
                )
            self.apps[app.application_id] = app
            if app.grant:
                self._register_token(app)

    def _save(self) -> None:
        with self.lock:
            payload = {"next_id": self.next_id, "apps": [asdict(a) for a in self.apps.values()]}
        tmp = self.registry_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        os.chmod(tmp, 0o600)  # holds the authorized services' tokens
        tmp.replace(self.registry_path)

    # --- the job thread ---------------------------------------------------------------------------

    def submit(self, job: Callable[..., None], *args: object) -> threading.Event:
        done = threading.Event()
        self.jobs.put((job, args, done))
        return done

    def _work(self) -> None:
        while True:
            job, args, done = self.jobs.get()
            try:
                job(*args)
            except Exception as exc:  # a job's failure is the app's ERROR state, never the thread's end
                app = self.apps.get(args[0]) if args else None
                if app is not None:
                    self._fail(app, CODE_START_FAILED, f"unexpected {type(exc).__name__}: {exc}")
            finally:
                done.set()

    # --- queries ------------------------------------------------------------------------------------

    def get(self, application_id: int) -> InstalledApp | None:
        return self.apps.get(application_id)

    def list(self) -> list[InstalledApp]:
        with self.lock:
            return sorted(self.apps.values(), key=lambda a: a.application_id)

    def memory_left_mb(self, except_uuid: str | None = None) -> int:
        used = sum(a.memory_mb for a in self.list() if a.uuid != except_uuid)
        return console_memory_mb() - used

    def container(self, application_id: int) -> Container | None:
        return self.containers.get(application_id)

    # --- install and upgrade ------------------------------------------------------------------------

    def read(self, data: bytes, except_uuid: str | None = None) -> AppPackage:
        """Check an upload (InstallRefused with QRadar's code when it would be refused)."""
        if not data:
            raise InstallRefused(33102, "the request body is empty; send the app zip as application/zip")
        return read_package(
            data,
            known_capabilities=set(CAPABILITY_IDS),
            memory_left_mb=lambda uuid: self.memory_left_mb(except_uuid or uuid),
        )

    def install(self, package: AppPackage, upgrade_of: int | None = None) -> InstalledApp:
        """Start installing ``package``: a new app, or an upgrade of the installed app with its UUID."""
        with self.lock:
            existing = self.apps.get(upgrade_of) if upgrade_of else None
            existing = existing or next((a for a in self.apps.values() if a.uuid == package.uuid), None)
            if existing is not None:
                if existing.task_status in TASK_ACTIVE:
                    raise InstallRefused(
                        33006, f"application {existing.application_id} is busy ({existing.task_status})"
                    )
                if existing.uuid != package.uuid:
                    raise InstallRefused(
                        33104, f"the zip's uuid {package.uuid} is not application {existing.application_id}'s"
                    )
                app = existing
                app.task_status, app.errors, app.cancel_requested = TASK_UPGRADING, [], False
                if app.status != "RUNNING":
                    app.status = "UPGRADING"
            else:
                app = InstalledApp(self.next_id, package.uuid, package.manifest)
                self.next_id += 1
                self.apps[app.application_id] = app
            app.uploaded_at = time.time()
            app.running_at = 0.0
            app.zip_sha256 = package.sha256
        self._save()
        self.submit(self._prepare, app.application_id, package)
        return app

    def _app_dir(self, app: InstalledApp) -> Path:
        return self.dir / str(app.application_id)

    def _prepare(self, application_id: int, package: AppPackage) -> None:
        app = self.apps[application_id]
        app_dir = self._app_dir(app)
        generation = max(app.generation, app.pending_generation) + 1
        root, venv = app_dir / f"root-{generation}", app_dir / f"venv-{generation}"
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        (app_dir / "store").mkdir(exist_ok=True)
        package.unpack(root)
        (root / "store").symlink_to(app_dir / "store", target_is_directory=True)
        try:
            create_app_env(venv, ensure_base_image(), root / "container" / "pip", package.pip_order)
            self._run_build_commands(root, venv)
        except RuntimeProblem as exc:
            shutil.rmtree(root, ignore_errors=True)
            shutil.rmtree(venv, ignore_errors=True)
            self._fail(app, CODE_DEPENDENCIES, str(exc))
            return
        with self.lock:
            if app.cancel_requested:
                shutil.rmtree(root, ignore_errors=True)
                shutil.rmtree(venv, ignore_errors=True)
                self._cancelled(app)
                return
            app.pending_generation, app.pending_manifest = generation, package.manifest
            granted = set((app.grant or {}).get("capabilities_requested", []))
            if set(app.requested_capabilities(package.manifest)) - granted:
                app.task_status = TASK_AUTH_REQUIRED
                self._save()
                return
        self._start_pending(application_id)

    def _run_build_commands(self, root: Path, venv: Path) -> None:
        ordering = root / "container" / "build" / "ordering.txt"
        if not ordering.is_file():
            return
        env = {"PATH": f"{venv}/bin:/usr/local/bin:/usr/bin:/bin", "APP_ROOT": str(root), "HOME": str(root)}
        for line in ordering.read_text(encoding="utf-8").splitlines():
            if line.strip():
                result = subprocess.run(
                    ["/bin/sh", "-c", line.strip().replace("/opt/app-root", str(root))],
                    cwd=root,
                    env=env,
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if result.returncode != 0:
                    raise RuntimeProblem(
                        f"container/build command {line.strip()!r} failed: {result.stderr[-2000:]}"
                    )

    # --- authorization -------------------------------------------------------------------------------

    def authorize(self, application_id: int, user: User) -> InstalledApp:
        """Grant the requested capabilities through ``user``'s role: a new authorized service token."""
        app = self.apps[application_id]
        manifest = app.pending_manifest or app.manifest
        requested = app.requested_capabilities(manifest)
        missing = [c for c in requested if not user.has_capability(c)]
        if missing:
            raise InstallRefused(
                1005,
                f"user {user.username} (id {user.id}) lacks requested capabilities: {', '.join(missing)}",
            )
        with self.lock:
            if app.grant:
                self.console.tokens._by_token.pop(app.grant["token"], None)  # the old service ends
            app.grant = {
                "user_id": user.id,
                "username": user.username,
                "capabilities": list(user.role.capabilities),
                "capabilities_requested": requested,
                "token": secrets.token_hex(16),
            }
            self._register_token(app)
            waiting = app.task_status == TASK_AUTH_REQUIRED
        self._save()
        if waiting:
            self.submit(self._start_pending, application_id)
        elif application_id in self.containers:
            self.submit(self._restart, application_id)  # its processes read SEC_ADMIN_TOKEN at start
        return app

    def _register_token(self, app: InstalledApp) -> None:
        grant = app.grant or {}
        service = User(
            id=100_000 + app.application_id,
            username=f"app{app.application_id}_authorized_service",
            role=Role(
                100_000 + app.application_id,
                f"Authorized service of app {app.application_id}",
                tuple(grant.get("capabilities", ())),
            ),
            is_service=True,
        )
        tokens = self.console.tokens
        tokens.tokens[service.username] = grant["token"]
        tokens._by_token[grant["token"]] = service  # the registry has no public way to add a service

    # --- starting and stopping ----------------------------------------------------------------------

    def _start_pending(self, application_id: int) -> None:
        app = self.apps[application_id]
        with self.lock:
            if app.cancel_requested:
                self._discard_pending(app)
                self._cancelled(app)
                return
            app.task_status = TASK_STARTING
        self._save()
        old = self.containers.pop(application_id, None)
        if old is not None:
            old.stop()
        previous = app.generation
        app.generation, app.manifest = app.pending_generation, app.pending_manifest or app.manifest
        app.pending_generation, app.pending_manifest = 0, None
        if previous and previous != app.generation:
            shutil.rmtree(self._app_dir(app) / f"root-{previous}", ignore_errors=True)
            shutil.rmtree(self._app_dir(app) / f"venv-{previous}", ignore_errors=True)
        self._start(app)

    def _restart(self, application_id: int) -> None:
        app = self.apps[application_id]
        running = self.containers.pop(application_id, None)
        if running is not None:
            running.stop()
        app.status = "STARTING"
        self._start(app)

    def _start(self, app: InstalledApp) -> None:
        container = self._container_for(app)
        # What the container's processes see, for running a one-off command inside it (0600: the token).
        env_file = container.run_dir / "environment.json"
        env_file.write_text(json.dumps(container.env, indent=2) + "\n", encoding="utf-8")
        env_file.chmod(0o600)
        try:
            container.start()
            self.containers[app.application_id] = container
            container.wait_until_healthy()
        except RuntimeProblem as exc:
            container.stop()
            self.containers.pop(app.application_id, None)
            self._fail(app, CODE_START_FAILED, str(exc))
            return
        with self.lock:
            app.port = container.port
            app.status, app.task_status, app.errors = "RUNNING", TASK_COMPLETED, []
            app.running_at = time.time()
            self._activate(app)
        self._save()

    def _container_for(self, app: InstalledApp) -> Container:
        app_dir = self._app_dir(app)
        root, venv = app_dir / f"root-{app.generation}", app_dir / f"venv-{app.generation}"
        run_dir = app_dir / "run"
        run_dir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        ca_bundle = app_dir / "ca-bundle.pem"
        ca_bundle.write_bytes(self._system_cas(venv) + b"\n" + (self.data_dir / "ca.pem").read_bytes())
        console_host = f"127.0.0.1:{self.console.config.port}"
        env = {
            "PATH": f"{venv}/bin:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(run_dir),
            "LANG": "C.UTF-8",
            "TZ": "UTC",
            "APP_ROOT": str(root),
            "APP_USER_ID": str(os.getuid()),
            "APP_GROUP_ID": str(os.getgid()),
            "QRADAR_APP_ID": str(app.application_id),
            "QRADAR_APP_UUID": app.uuid,
            "QRADAR_CONSOLE_FQDN": console_host,
            "QRADAR_CONSOLE_HOSTNAME": "127.0.0.1",
            "QRADAR_CONSOLE_IP": "127.0.0.1",
            "QRADAR_APPLICATION_BASE_URL": f"https://{console_host}/console/plugins/{app.application_id}/app_proxy",
            "QRADAR_VERSION": "7.5.0",
            "QRADAR_APPHOST_EXISTS": "false",
            "QRADAR_APP_RUNNING_ON_APPHOST": "false",
            "REQUESTS_CA_BUNDLE": str(ca_bundle),
        }
        for variable in app.manifest.get("environment_variables") or []:
            env[variable["name"]] = variable["value"]
        if app.grant:
            env["SEC_ADMIN_TOKEN"] = app.grant["token"]
        return Container(run_dir=run_dir, root=root, venv=venv, port=port, env=env)

    @staticmethod
    def _system_cas(venv: Path) -> bytes:
        # The image's CA bundle; certifi's (installed with requests in the base) stands in for it.
        base_pth = next(venv.glob("lib/python3.11/site-packages/qradar_app_base.pth"), None)
        if base_pth is not None:
            certifi = Path(base_pth.read_text(encoding="utf-8").strip()) / "certifi" / "cacert.pem"
            if certifi.is_file():
                return certifi.read_bytes()
        return b""

    def _fail(self, app: InstalledApp, code: int, message: str) -> None:
        with self.lock:
            app.task_status = TASK_ERROR
            app.errors = [{"code": code, "message": message}]
            if app.application_id not in self.containers:
                app.status = "ERROR"
        self._save()

    def _cancelled(self, app: InstalledApp) -> None:
        app.task_status = TASK_CANCELLED
        app.cancel_requested = False
        if app.generation == 0:
            self._remove(app)
        else:
            self._save()

    def _discard_pending(self, app: InstalledApp) -> None:
        if app.pending_generation:
            shutil.rmtree(self._app_dir(app) / f"root-{app.pending_generation}", ignore_errors=True)
            shutil.rmtree(self._app_dir(app) / f"venv-{app.pending_generation}", ignore_errors=True)
        app.pending_generation, app.pending_manifest = 0, None

    def cancel(self, application_id: int) -> InstalledApp:
        app = self.apps[application_id]
        with self.lock:
            if app.task_status not in (TASK_CREATING, TASK_UPGRADING, TASK_AUTH_REQUIRED):
                raise InstallRefused(
                    33006, f"the install is {app.task_status}; it can no longer be cancelled"
                )
            if app.task_status == TASK_AUTH_REQUIRED:
                self._discard_pending(app)
                self._cancelled(app)
            else:
                app.cancel_requested = True
        return app

    # --- uninstall ------------------------------------------------------------------------------------

    def uninstall(self, application_id: int) -> None:
        """Stop the app and remove it with its store (waits until done)."""
        self.submit(self._uninstall, application_id).wait()

    def _uninstall(self, application_id: int) -> None:
        app = self.apps.get(application_id)
        if app is None:
            return
        container = self.containers.pop(application_id, None)
        if container is not None:
            container.stop()
        self._remove(app)

    def _remove(self, app: InstalledApp) -> None:
        with self.lock:
            self.apps.pop(app.application_id, None)
            if app.grant:
                tokens = self.console.tokens
                tokens._by_token.pop(app.grant["token"], None)
                tokens.tokens.pop(f"app{app.application_id}_authorized_service", None)
            if self.console.config.app_id == app.application_id:
                running = [a for a in self.apps.values() if a.status == "RUNNING"]
                if running:
                    self._activate(running[-1])
                else:
                    config = self.console.config
                    config.app_id, config.app_url, self.console.manifest = self.original_app
        shutil.rmtree(self._app_dir(app), ignore_errors=True)
        self._save()

    def _activate(self, app: InstalledApp) -> None:
        """The console's pages and app proxy serve this installed copy from now on."""
        config = self.console.config
        config.app_id = app.application_id
        config.app_url = f"http://127.0.0.1:{app.port}"
        self.console.manifest = self.manifest_loader(
            self._app_dir(app) / f"root-{app.generation}" / "manifest.json"
        )

    def stop_all(self) -> None:
        for application_id in list(self.containers):
            with contextlib.suppress(Exception):
                self.containers.pop(application_id).stop()
