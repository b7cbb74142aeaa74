"""Crash safety: 100 ``kill -9`` of the refresher and of gunicorn workers at seeded random
points, during refreshes (searches slowed by the dev console) and allowlist writes through the API; then the
store is sound (see ``crashloop.py`` for the checks)."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.crashloop import check_store, crash_loop

pytestmark = pytest.mark.stress  # every test reads the one crash loop

REFRESHER_KILLS = 50
WORKER_KILLS = 50
SEED = 8


@pytest.fixture(scope="module")
def crashed(devconsole: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    devconsole.faults.clear()
    work = tmp_path_factory.mktemp("crashloop")
    outcome = crash_loop(
        devconsole, work / "store", refresher_kills=REFRESHER_KILLS, worker_kills=WORKER_KILLS, seed=SEED
    )
    outcome["work"] = work
    return outcome


def test_a_hundred_kills_leave_a_sound_store(crashed: dict[str, Any], devconsole: Any) -> None:
    assert crashed["killed"] == {"refresher": REFRESHER_KILLS, "worker": WORKER_KILLS}
    assert check_store(devconsole, crashed, crashed["work"]) == []


def test_the_loop_exercised_what_it_claims(crashed: dict[str, Any]) -> None:
    """Writes were acknowledged, cycles committed, entries suppressed detections, and the app never
    answered a 5xx (kills show up as dropped connections, status 0, never as server errors)."""
    statuses = crashed["acked"].statuses
    assert not [s for s in statuses if s >= 500], statuses
    assert len(crashed["acked"].writes) >= 10, statuses
    conn = sqlite3.connect(crashed["db_path"])
    try:
        (watermark,) = conn.execute(
            "SELECT watermark_ms FROM refresh_state WHERE name = 'detection'"
        ).fetchone()
        assert watermark > crashed["lookback_start"] + 10 * 60_000, "no refresh cycle ever committed"
        assert conn.execute("SELECT COUNT(*) FROM detections").fetchone()[0] > 0
        assert conn.execute("SELECT COUNT(*) FROM tuning_entries WHERE status = 'active'").fetchone()[0] > 0
    finally:
        conn.close()


def test_the_checks_catch_a_half_applied_change(
    crashed: dict[str, Any], devconsole: Any, tmp_path: Path
) -> None:
    """The checker is not blind: a store with an audit row removed, a detection dropped and a detection whose
    suppression or chain override no entry explains is reported on each count."""
    broken = tmp_path / "broken.db"
    source = sqlite3.connect(crashed["db_path"])
    target = sqlite3.connect(broken)
    source.backup(target)
    source.close()
    audited_id = crashed["acked"].writes[-1][0]
    target.execute(
        "DELETE FROM audit_log WHERE id = (SELECT MAX(id) FROM audit_log "
        "WHERE object_type = 'tuning_entry' AND object_id = ?)",
        (str(audited_id),),
    )
    target.execute("DELETE FROM detections WHERE id = (SELECT MIN(id) FROM detections)")
    # A suppression no entry explains (as if the detection update committed without its entry).
    target.execute("UPDATE detections SET suppressed_by = 999999 WHERE id = (SELECT MAX(id) FROM detections)")
    # A chain override no entry explains.
    target.execute(
        "UPDATE detections SET suppressed_by = NULL, suppression_overridden_by = 999999 "
        "WHERE id = (SELECT MIN(id) FROM detections)"
    )
    target.commit()
    target.close()
    problems = check_store(devconsole, {**crashed, "db_path": broken}, tmp_path)
    text = "\n".join(problems)
    assert "missing" in text and "audit" in text, problems
    assert "2 detections' suppressed_by/suppression_overridden_by disagree" in text, problems
    shutil.rmtree(tmp_path, ignore_errors=True)
