"""SQL of the detections store on a real SQLite file: retention, cascades, triage history, LIKE escaping."""

from __future__ import annotations

from app.store import detections as store

DAY = 86_400_000
NOW = 1_780_000_000_000


def record(key: str, t: int, **extra) -> dict:
    base = {
        "event_key": key,
        "event_time": t,
        "event_name": "CreateUser",
        "cloud_platform": "AWS",
        "is_service_account": False,
        "account_kind": "user",
        "actor": "alice",
        "actor_id": "arn:a",
        "target_account": f"user_{key}",
        "severity": 7,
        "confidence": "medium",
        "base_severity": 7,
        "base_confidence": "medium",
        "also_seen_in": [],
        "target_keys": [f"user_{key}"],
        "payload": "{}",
        "payload_ok": True,
        "stored_at": NOW,
    }
    return {**base, **extra}


def test_retention_purges_old_rows_and_their_dependents(store_conn) -> None:
    with store_conn:
        old = store.insert_detection(store_conn, record("old", NOW - 100 * DAY))
        new = store.insert_detection(store_conn, record("new", NOW - DAY))
        store.set_triage(store_conn, [old], "benign", "expected", "tuner1", NOW)
        store.insert_follow_on(
            store_conn,
            {
                "event_key": "f-old",
                "event_time": NOW - 100 * DAY,
                "event_name": "AttachUserPolicy",
                "cloud_platform": "AWS",
                "target_keys": [],
                "stored_at": NOW,
            },
        )
        store.replace_chains(
            store_conn,
            NOW - 200 * DAY,
            [
                store.ChainRow(
                    "k-old",
                    "aws_user_credential",
                    ["aws_user_credential"],
                    NOW - 100 * DAY,
                    NOW - 100 * DAY,
                    9,
                    "high",
                    False,
                    [("old", NOW - 100 * DAY, "CreateUser", "AWS", "alice", "user_old", old)],
                )
            ],
            NOW,
        )
        counts = store.purge_older_than(store_conn, NOW - 90 * DAY)
    assert counts == {"detections": 1, "follow_on_events": 1, "chains": 1}
    assert [r[0] for r in store_conn.execute("SELECT id FROM detections")] == [new]
    assert (
        store_conn.execute("SELECT COUNT(*) FROM detection_events WHERE event_key = 'old'").fetchone()[0] == 0
    )
    assert store_conn.execute("SELECT COUNT(*) FROM chain_events WHERE event_key = 'old'").fetchone()[0] == 0
    assert (
        store_conn.execute("SELECT COUNT(*) FROM triage_history WHERE detection_id = ?", (old,)).fetchone()[0]
        == 0
    )
    assert store.known_event_keys(store_conn, ["old", "new", "f-old"]) == {"new"}


def test_chain_membership_raises_and_restores_severity(store_conn) -> None:
    with store_conn:
        did = store.insert_detection(store_conn, record("a", NOW))
        chain = store.ChainRow(
            "k",
            "aws_user_credential",
            ["aws_user_credential"],
            NOW,
            NOW,
            9,
            "high",
            False,
            [("a", NOW, "CreateUser", "AWS", "alice", "user_a", did)],
        )
        store.replace_chains(store_conn, NOW - DAY, [chain], NOW)
    row = store_conn.execute(
        "SELECT severity, confidence, chain_kind FROM detections WHERE id = ?", (did,)
    ).fetchone()
    assert tuple(row) == (9, "high", "aws_user_credential")
    with store_conn:
        store.replace_chains(store_conn, NOW - DAY, [], NOW)  # the chain no longer holds
    row = store_conn.execute(
        "SELECT severity, confidence, chain_id FROM detections WHERE id = ?", (did,)
    ).fetchone()
    assert tuple(row) == (7, "medium", None)
    assert store_conn.execute("SELECT COUNT(*) FROM chains").fetchone()[0] == 0


def test_text_filters_treat_wildcards_literally(store_conn) -> None:
    with store_conn:
        store.insert_detection(store_conn, record("x", NOW, target_account="100%_real\\name"))
        store.insert_detection(store_conn, record("y", NOW, target_account="100 percent"))
    for text, expected in (("100%", 1), ("%", 1), ("_", 1), ("\\", 1), ("100", 2), ("' OR 1=1 --", 0)):
        items, total = store.list_detections(store_conn, store.DetectionFilter(text=text))
        assert total == expected == len(items), text


def test_triage_history_keeps_every_change(store_conn) -> None:
    with store_conn:
        did = store.insert_detection(store_conn, record("t", NOW))
        store.set_triage(store_conn, [did], "investigating", None, "analyst", NOW)
        store.set_triage(store_conn, [did, 424242], "malicious", "confirmed", "tuner1", NOW + 1)
    detail = store.get_detection(store_conn, did)
    assert [h["status"] for h in detail["triage_history"]] == ["investigating", "malicious"]
    assert (detail["triage_status"], detail["triage_by"], detail["triage_note"]) == (
        "malicious",
        "tuner1",
        "confirmed",
    )
