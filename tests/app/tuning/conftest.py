"""Fixtures for the tuning tests: a real migrated SQLite store (helpers live in tuning_helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.store import db


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[Any]:
    connection = db.connect(tmp_path / "tuning.db")
    yield connection
    connection.close()
