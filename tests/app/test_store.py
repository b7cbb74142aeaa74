"""The SQLite store: location, WAL, migrations (ordered, atomic, once under concurrency), get_db on g,
concurrent writers, the core tables and typed settings."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from app import settings
from app.store import audit, db, refresh_state, settings_rows

ROOT = Path(__file__).resolve().parents[2]


def latest_version() -> int:
    return db.migrations()[-1][0]


def test_connect_uses_wal_busy_timeout_and_migrates(tmp_path):
    conn = db.connect(tmp_path / "a.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == db.BUSY_TIMEOUT_MS
    assert db.schema_version(conn) == latest_version() >= 1
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"settings", "refresh_state", "audit_log"} <= tables


def test_only_the_connection_that_asks_gets_a_larger_page_cache(tmp_path):
    from app.refresher import REFRESHER_CACHE_KIB

    default = db.connect(tmp_path / "a.db").execute("PRAGMA cache_size").fetchone()[0]
    refresher = db.connect(tmp_path / "a.db", cache_kib=REFRESHER_CACHE_KIB)
    assert default == -2000  # SQLite's default, in KiB: every web worker keeps it
    assert refresher.execute("PRAGMA cache_size").fetchone()[0] == -REFRESHER_CACHE_KIB < default


def test_migrations_are_numbered_in_order_and_idempotent(tmp_path):
    versions = [v for v, _ in db.migrations()]
    assert versions == sorted(versions) and versions[0] == 1
    conn = db.connect(tmp_path / "a.db")
    assert db.migrate(conn) == latest_version()  # second run applies nothing
    assert conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'audit_log'").fetchone()[0] == 1


def test_failed_migration_rolls_back_and_keeps_version(tmp_path):
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "0001_good.sql").write_text("CREATE TABLE a (x INTEGER);")
    (migrations / "0002_bad.sql").write_text("CREATE TABLE b (x INTEGER);\nINSERT INTO nowhere VALUES (1);")
    conn = db.connect(tmp_path / "m.db", migrate_schema=False)
    with pytest.raises(sqlite3.OperationalError, match="nowhere"):
        db.migrate(conn, migrations)
    assert db.schema_version(conn) == 1
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "a" in tables and "b" not in tables  # 0002 left nothing behind


def test_bad_and_duplicate_migration_names_are_refused(tmp_path):
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "0001_b.sql").write_text("SELECT 1;")
    with pytest.raises(RuntimeError, match="two migrations numbered 0001"):
        db.migrations(tmp_path)
    (tmp_path / "0001_b.sql").unlink()
    (tmp_path / "2_x.sql").write_text("SELECT 1;")
    with pytest.raises(RuntimeError, match=r"NNNN_name\.sql"):
        db.migrations(tmp_path)


def test_split_statements_keeps_triggers_and_quoted_semicolons():
    script = textwrap.dedent("""
        CREATE TABLE t (v TEXT);
        INSERT INTO t VALUES ('a;b');
        CREATE TRIGGER t_ins AFTER INSERT ON t BEGIN
            UPDATE t SET v = v || ';x' WHERE rowid = new.rowid;
        END;
    """)
    statements = db.split_statements(script)
    assert len(statements) == 3
    assert statements[1] == "INSERT INTO t VALUES ('a;b');"
    assert statements[2].startswith("CREATE TRIGGER") and statements[2].endswith("END;")


MIGRATE_AND_WRITE = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    from app.store import audit, db
    conn = db.connect(sys.argv[1])
    for i in range(int(sys.argv[3])):
        with conn:
            audit.record_audit(conn, actor=sys.argv[2], action="test.write", object_type="t", object_id=i)
    print(db.schema_version(conn))
""")


def test_several_processes_migrate_and_write_at_once(tmp_path):
    """Like gunicorn workers and the refresher starting together on an empty store."""
    path = tmp_path / "shared.db"
    script = MIGRATE_AND_WRITE.format(root=str(ROOT))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(path), f"writer{i}", "50"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(6)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
        assert int(out.strip()) == latest_version()
    conn = db.connect(path)
    assert conn.execute("SELECT COUNT(*) FROM audit_log").fetchone()[0] == 6 * 50
    assert conn.execute("SELECT COUNT(DISTINCT actor) FROM audit_log").fetchone()[0] == 6


def test_transaction_rolls_back_on_error(tmp_path):
    conn = db.connect(tmp_path / "a.db")
    with pytest.raises(RuntimeError), db.transaction(conn):
        audit.record_audit(conn, actor="a", action="x", object_type="t")
        raise RuntimeError("boom")
    assert conn.execute("SELECT COUNT(*) FROM audit_log").fetchone()[0] == 0


def test_a_transaction_inside_another_joins_it(tmp_path):
    """A store function that commits its own work (here the planner statistics' state row) is one step
    of its caller's transaction when called inside one: the outer block commits or rolls back the whole."""
    path = tmp_path / "a.db"
    conn = db.connect(path)
    other = db.connect(path)
    with pytest.raises(RuntimeError), db.transaction(conn):
        audit.record_audit(conn, actor="a", action="x", object_type="t")
        with db.transaction(conn):
            refresh_state.save_refresh_state(conn, "inner", runs=1)
        assert conn.in_transaction  # the inner block did not commit
        assert other.execute("SELECT COUNT(*) FROM refresh_state").fetchone()[0] == 0
        raise RuntimeError("boom")
    assert conn.execute("SELECT COUNT(*) FROM audit_log").fetchone()[0] == 0
    assert refresh_state.get_refresh_state(conn, "inner")["last_status"] == "never"
    with db.transaction(conn):
        audit.record_audit(conn, actor="a", action="x", object_type="t")
        with db.transaction(conn):
            refresh_state.save_refresh_state(conn, "inner", runs=1)
    assert not conn.in_transaction
    assert other.execute("SELECT COUNT(*) FROM audit_log").fetchone()[0] == 1
    assert refresh_state.get_refresh_state(other, "inner")["runs"] == 1


def test_store_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv("APP_STORE_DIR", raising=False)
    monkeypatch.setenv("APP_ROOT", str(tmp_path / "root"))
    assert db.store_dir() == tmp_path / "root" / "store"
    monkeypatch.setenv("APP_STORE_DIR", str(tmp_path / "explicit"))
    assert db.store_dir() == tmp_path / "explicit"
    assert (tmp_path / "explicit").is_dir()
    # The composition root passes QRadar's store path (qpylib's) in; only APP_STORE_DIR outranks it.
    assert db.store_dir(tmp_path / "qradar") == tmp_path / "explicit"
    monkeypatch.delenv("APP_STORE_DIR")
    assert db.store_dir(tmp_path / "qradar") == tmp_path / "qradar"


def test_get_db_is_one_connection_per_thread_kept_between_requests(offline_app, monkeypatch):
    with offline_app.app_context():
        first = db.get_db()
        assert db.get_db() is first
        first.execute("CREATE TABLE scratch (x INTEGER)")  # DDL: committed at once
        first.execute("INSERT INTO scratch VALUES (1)")  # left uncommitted by the "request"
        assert first.in_transaction
    with offline_app.app_context():
        again = db.get_db()
        assert again is first  # kept open for this thread's next request ...
        assert not again.in_transaction  # ... with what the last one left uncommitted rolled back
        assert again.execute("SELECT COUNT(*) FROM scratch").fetchone()[0] == 0
    other: list[sqlite3.Connection] = []

    def in_another_thread() -> None:
        with offline_app.app_context():
            other.append(db.get_db())
            other[0].execute("SELECT 1")

    thread = threading.Thread(target=in_another_thread)
    thread.start()
    thread.join()
    assert other and other[0] is not first  # SQLite connections stay in their thread
    # A database file replaced on disk (a restore) is opened anew.
    path = Path(offline_app.config["DATABASE"])
    replacement = path.with_name("replacement.db")
    db.connect(replacement).close()
    replacement.replace(path)
    with offline_app.app_context():
        assert db.get_db() is not first
    with pytest.raises(sqlite3.ProgrammingError):
        first.execute("SELECT 1")  # the old one was closed
    # One kept too long is replaced too (it would not see new planner statistics).
    with offline_app.app_context():
        current = db.get_db()
    monkeypatch.setattr(db, "MAX_CONNECTION_AGE_S", -1.0)
    with offline_app.app_context():
        assert db.get_db() is not current
    assert path.parent == Path(offline_app.config["STORE_DIR"])


def test_audit_log_round_trip_and_filters(tmp_path):
    conn = db.connect(tmp_path / "a.db")
    with conn:
        audit.record_audit(
            conn,
            actor="tuner1",
            action="entry.create",
            object_type="entry",
            object_id=7,
            before=None,
            after={"value": "<script>x</script>"},
        )
        audit.record_audit(
            conn,
            actor="admin",
            action="entry.delete",
            object_type="entry",
            object_id=7,
            before={"value": "<script>x</script>"},
            after=None,
        )
        audit.record_audit(conn, actor="admin", action="settings.update", object_type="settings")
    items, total = audit.list_audit(conn, object_type="entry", object_id=7)
    assert total == 2
    assert [i["action"] for i in items] == ["entry.delete", "entry.create"]  # newest first
    assert items[1]["after"] == {"value": "<script>x</script>"}
    assert audit.list_audit(conn, actor="admin", limit=1)[1] == 2


def test_refresh_state_defaults_and_updates(tmp_path):
    conn = db.connect(tmp_path / "a.db")
    assert refresh_state.get_refresh_state(conn, "detection")["last_status"] == "never"
    with conn:
        state = refresh_state.save_refresh_state(
            conn, "detection", watermark_ms=1000, last_status="ok", runs=1, details={"inserted": 3}
        )
    assert state["watermark_ms"] == 1000 and state["details"] == {"inserted": 3}
    with pytest.raises(ValueError, match="unknown refresh_state fields"):
        refresh_state.save_refresh_state(conn, "detection", nonsense=1)


def test_settings_defaults_match_the_brief(tmp_path):
    conn = db.connect(tmp_path / "a.db")
    values = settings.all_values(conn)
    assert values["refresh_interval_s"] == 300
    assert values["lookback_hours"] == 24
    assert values["overlap_minutes"] == 10
    assert values["magnitude_minimum"] == 3
    assert values["retention_days"] == 90
    assert values["tuning_capabilities"] == ["ADMIN", "REFERENCEDATA"]
    assert values["single_person_approval"] is False
    assert values["api_version"] == "26.0"
    assert values["log_source_types"]["AWS"] == [{"name": "Amazon AWS CloudTrail", "id": 347}]
    assert values["custom_properties"]["account_name"] == "Account Name"


def test_settings_update_validates_stores_and_audits(tmp_path):
    conn = db.connect(tmp_path / "a.db")
    after = settings.update(conn, {"magnitude_minimum": 5, "tuning_capabilities": ["ADMIN"]}, actor="admin")
    assert after["magnitude_minimum"] == 5 and settings.get("magnitude_minimum", conn) == 5
    items, _ = audit.list_audit(conn, object_type="settings")
    assert items[0]["actor"] == "admin"
    assert items[0]["before"] == {"magnitude_minimum": 3, "tuning_capabilities": ["ADMIN", "REFERENCEDATA"]}
    for bad, key in (
        ({"magnitude_minimum": 11}, "magnitude_minimum"),
        ({"magnitude_minimum": "5"}, "magnitude_minimum"),
        ({"single_person_approval": 1}, "single_person_approval"),
        ({"no_such_setting": 1}, "no_such_setting"),
        ({"log_source_types": {"Mars": [{"name": "x", "id": 1}]}}, "log_source_types"),
        ({"tuning_capabilities": []}, "tuning_capabilities"),
    ):
        with pytest.raises(settings.SettingError) as info:
            settings.update(conn, bad, actor="admin")
        assert info.value.key == key
    assert settings.get("magnitude_minimum", conn) == 5  # nothing half-applied


def test_settings_update_is_all_or_nothing(tmp_path):
    conn = db.connect(tmp_path / "a.db")
    with pytest.raises(settings.SettingError):
        settings.update(conn, {"lookback_hours": 48, "retention_days": 0}, actor="admin")
    assert settings.get("lookback_hours", conn) == 24


def test_setting_stored_before_a_rule_tightened_falls_back_to_default(tmp_path):
    conn = db.connect(tmp_path / "a.db")
    with conn:
        settings_rows.put_setting(conn, "magnitude_minimum", 99, actor="old-version")
    assert settings.get("magnitude_minimum", conn) == 3


def test_planner_statistics_run_when_due(tmp_path):
    conn = db.connect(tmp_path / "a.db")
    with conn:
        conn.execute(
            "INSERT INTO settings (key, value_json, updated_by, updated_at) VALUES ('x', '1', 't', 0)"
        )
    assert refresh_state.refresh_planner_statistics_if_due(conn, 1_000_000)
    analysed = {r[0] for r in conn.execute("SELECT tbl FROM sqlite_stat1")}
    assert "settings" in analysed
    # Not again within the interval; again once it passed, and each run is counted.
    assert not refresh_state.refresh_planner_statistics_if_due(
        conn, 1_000_000 + refresh_state.STATISTICS_EVERY_MS - 1
    )
    assert refresh_state.refresh_planner_statistics_if_due(
        conn, 1_000_000 + refresh_state.STATISTICS_EVERY_MS
    )
    state = refresh_state.get_refresh_state(conn, refresh_state.STATISTICS_JOB)
    assert (state["runs"], state["last_success_ms"]) == (2, 1_000_000 + refresh_state.STATISTICS_EVERY_MS)
