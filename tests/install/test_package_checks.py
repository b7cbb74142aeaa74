"""The dev console's zip checks on their own (no console): unsafe names, what unpacking leaves out,
the memory budget and ordering.txt."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from devconsole.apps.package import InstallRefused, read_package

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = (ROOT / "manifest.json").read_bytes()
CAPABILITIES = {"ADMIN", "SEM", "EVENTVIEWER", "REFERENCEDATA"}


def make_zip(entries: dict[str, bytes], symlink: str | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = 0o120777 << 16
            archive.writestr(info, "/etc/passwd")
    return out.getvalue()


def read(data: bytes, memory_left_mb: int = 1000):
    return read_package(data, known_capabilities=CAPABILITIES, memory_left_mb=lambda _uuid: memory_left_mb)


def code_of(data: bytes, memory_left_mb: int = 1000) -> int:
    with pytest.raises(InstallRefused) as refused:
        read(data, memory_left_mb)
    return refused.value.code


BASE = {"manifest.json": MANIFEST, "app/__init__.py": b""}


@pytest.mark.parametrize("name", ["../evil.py", "/abs.py", "app/../../evil.py", "app\\evil.py"])
def test_unsafe_entry_names_are_a_structure_error(name: str) -> None:
    assert code_of(make_zip({**BASE, name: b"x"})) == 33102


def test_symbolic_links_and_missing_app_dir_are_structure_errors() -> None:
    assert code_of(make_zip(BASE, symlink="app/link")) == 33102
    assert code_of(make_zip({"manifest.json": MANIFEST})) == 33102


def test_manifest_in_the_v1_place_is_no_manifest() -> None:
    assert code_of(make_zip({"app/manifest.json": MANIFEST, "app/__init__.py": b""})) == 33103


def test_memory_is_compared_with_what_is_left() -> None:
    memory = json.loads(MANIFEST)["resources"]["memory"]
    assert read(make_zip(BASE), memory_left_mb=memory).memory_mb == memory
    assert code_of(make_zip(BASE), memory_left_mb=memory - 1) == 33302


def test_ordering_txt_and_container_pip_must_agree() -> None:
    wheels = {"container/pip/a-1.0-py3-none-any.whl": b"x", "container/pip/b-1.0-py3-none-any.whl": b"y"}
    ordering = b"b-1.0-py3-none-any.whl\na-1.0-py3-none-any.whl\n"
    package = read(make_zip({**BASE, **wheels, "container/pip/ordering.txt": ordering}))
    assert package.pip_order == ["b-1.0-py3-none-any.whl", "a-1.0-py3-none-any.whl"]
    assert code_of(make_zip({**BASE, **wheels})) == 33201  # two packages, no ordering.txt
    missing = b"b-1.0-py3-none-any.whl\na-1.0-py3-none-any.whl\nc-1.0-py3-none-any.whl\n"
    assert code_of(make_zip({**BASE, **wheels, "container/pip/ordering.txt": missing})) == 33201
    assert code_of(make_zip({**BASE, "container/rpm/x.rpm": b"r"})) == 33201


def test_unpacking_leaves_out_the_store_and_the_framework_files(tmp_path: Path) -> None:
    data = make_zip({**BASE, "store/secret_key": b"k", "bin/start.sh": b"x", "app/views.py": b"v"})
    read(data).unpack(tmp_path)
    assert (tmp_path / "app" / "views.py").read_bytes() == b"v"
    assert not (tmp_path / "store").exists() and not (tmp_path / "bin").exists()
