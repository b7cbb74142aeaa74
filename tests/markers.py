"""Which tests need a browser, decided in one place so ``make test-fast`` can leave them out.

``ui`` goes on every test under tests/ui/ and on every test elsewhere that asks for a chromium fixture;
``stress`` (crash, fuzz, load and concurrency loops) is written on the tests themselves. Loaded for the
whole suite by tests/conftest.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

UI_DIR = Path(__file__).resolve().parent / "ui"
# Fixtures that start chromium (tests/ui/conftest.py, tests/ui/test_console_pages.py,
# tests/reliability/test_hostile_content.py).
BROWSER_FIXTURES = {"browser", "as_user", "in_browser", "browser_thread"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        in_ui_dir = UI_DIR in Path(str(item.path)).resolve().parents
        if in_ui_dir or BROWSER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.ui)
