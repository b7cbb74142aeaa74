"""A small, hand-built event set whose query answers can be stated by hand (see the table below).

``NOW`` is 2023-11-14 22:14:00 UTC; engines built on it use UTC.

| # | minutes ago | log source (type) | QID name | username | sourceip | magnitude | count | "Account Name" |
|---|---|---|---|---|---|---|---|---|
| 1 | 1 | CloudTrail @ acme (347) | CreateUser | alice | 10.0.0.5 | 6 | 1 | svc-backup |
| 2 | 2 | CloudTrail @ acme (347) | CreateAccessKey | alice | 10.0.0.5 | 4 | 2 | svc-backup |
| 3 | 3 | Azure AD @ contoso (445) | Add user | Bob@Contoso.com | 192.168.1.20 | 7 | 1 | eve.external |
| 4 | 4 | Azure AD @ contoso (445) | Add service principal | bob@contoso.com | 192.168.1.20 | 5 | 1 | |
| 5 | 10 | Office 365 @ contoso (397) | Add user. | carol | 203.0.113.9 | 3 | 1 | temp1 |
| 6 | 30 | Linux @ web1 (11) | Session Opened | root | 10.1.2.3 | 2 | 5 | |
| 7 | 90 | CloudTrail @ acme (347) | CreateUser | terraform | 10.0.0.7 | 3 | 1 | app-deployer |
| 8 | 600 | Azure AD @ contoso (445) | Add user | alice | NULL | 8 | 1 | |
| 9 | 2000 | CloudTrail @ acme (347) | CreateUser | mallory | 198.51.100.1 | 9 | 1 | |
| 10 | 0 | Linux @ web1 (11) | Session Opened | NULL | 10.1.2.4 | 1 | 1 | |

Offense 1 (rule 100411, the console's built-in "Cloud account created (T1136.003)") links events 1 and 2;
offense 2 (rules 100411 and 100052, "Multiple login failures from one source") links event 9. Every
event's destinationip is 10.9.9.9 (a local address). Reference set ``Allowlist`` (ALNIC, LAST_SEEN, 1 day) holds ``ALICE``
(last seen 1 h ago: live) and ``terraform`` (last seen 2 days ago: expired). Reference map ``Owners``
maps ``svc-backup`` to ``team-a``. Reference map of sets ``CreatedBy`` (ALN) maps ``alice`` to
{``svc-backup``, ``svc-deploy``} and ``terraform`` to {``app-deployer``}. Reference table ``Accounts``
(LAST_SEEN, 1 day) holds ``svc-backup``: owner ``team-a``, and ``app-deployer``: owner ``team-b`` (last
seen 2 days ago: expired).
"""

from __future__ import annotations

from pathlib import Path

from devconsole.store import EventStore

NOW = 1_700_000_040_000  # 2023-11-14 22:14:00 UTC
MINUTE = 60_000
QID = {
    "CreateUser": 347000001,
    "CreateAccessKey": 347000002,
    "Add user": 445000001,
    "Add service principal": 445000002,
    "Add user.": 397000001,
    "Session Opened": 11000001,
}


def build_store(path: Path) -> EventStore:
    store = EventStore(path)
    cloudtrail = store.ensure_log_source("CloudTrail @ acme", 347)
    azure = store.ensure_log_source("Azure AD @ contoso", 445)
    office = store.ensure_log_source("Office 365 @ contoso", 397)
    linux = store.ensure_log_source("Linux @ web1", 11)
    qids = {
        "CreateUser": store.ensure_qid(347, "CreateUser", 3035, "An IAM user was created"),
        "CreateAccessKey": store.ensure_qid(347, "CreateAccessKey", 3037, "An access key was created"),
        "Add user": store.ensure_qid(445, "Add user", 3035, "A user was added"),
        "Add service principal": store.ensure_qid(445, "Add service principal", 3035, "A service principal"),
        "Add user.": store.ensure_qid(397, "Add user.", 3035, "Office 365 user added"),
        "Session Opened": store.ensure_qid(11, "Session Opened", 3014, "A login session opened"),
    }
    assert qids == QID
    store.declare_custom_property("Account Name")

    def event(minutes, source, devicetype, name, user, ip, magnitude, count=1, props=None, payload=None):
        return {
            "starttime": NOW - minutes * MINUTE,
            "qid": QID[name],
            "category": 3014 if name == "Session Opened" else 3035,
            "highlevelcategory": 3000,
            "logsourceid": source,
            "devicetype": devicetype,
            "username": user,
            "sourceip": ip,
            "destinationip": "10.9.9.9",
            "magnitude": magnitude,
            "eventcount": count,
            "props": props,
            "payload": payload,
        }

    ids = store.insert_events(
        [
            event(
                1,
                cloudtrail,
                347,
                "CreateUser",
                "alice",
                "10.0.0.5",
                6,
                props={"Account Name": "svc-backup"},
                payload='{"eventName":"CreateUser","requestParameters":{"userName":"svc-backup"}}',
            ),
            event(
                2,
                cloudtrail,
                347,
                "CreateAccessKey",
                "alice",
                "10.0.0.5",
                4,
                count=2,
                props={"Account Name": "svc-backup"},
                payload='{"eventName":"CreateAccessKey"}',
            ),
            event(
                3,
                azure,
                445,
                "Add user",
                "Bob@Contoso.com",
                "192.168.1.20",
                7,
                props={"Account Name": "eve.external"},
                payload='{"operationName":"Add user","result":"success"}',
            ),
            event(
                4,
                azure,
                445,
                "Add service principal",
                "bob@contoso.com",
                "192.168.1.20",
                5,
                payload='{"operationName":"Add service principal"}',
            ),
            event(
                10,
                office,
                397,
                "Add user.",
                "carol",
                "203.0.113.9",
                3,
                props={"Account Name": "temp1"},
                payload='{"Operation":"Add user."}',
            ),
            event(
                30,
                linux,
                11,
                "Session Opened",
                "root",
                "10.1.2.3",
                2,
                count=5,
                payload=b"session \xff\xfe opened",
            ),
            event(
                90,
                cloudtrail,
                347,
                "CreateUser",
                "terraform",
                "10.0.0.7",
                3,
                props={"Account Name": "app-deployer"},
                payload='{"eventName":"CreateUser","userAgent":"Terraform/1.6"}',
            ),
            event(600, azure, 445, "Add user", "alice", None, 8, payload='{"operationName":"Add user"}'),
            event(
                2000,
                cloudtrail,
                347,
                "CreateUser",
                "mallory",
                "198.51.100.1",
                9,
                payload='{"eventName":"CreateUser"}',
            ),
            event(0, linux, 11, "Session Opened", None, "10.1.2.4", 1, payload="session opened"),
        ]
    )
    offense = store.add_offense(
        "AWS user then key", NOW - 2 * MINUTE, NOW - MINUTE, rules=[{"id": 100_411, "type": "CRE_RULE"}]
    )
    assert offense == 1
    store.link_offense_events(offense, ids[:2])
    old = store.add_offense(
        "Old CreateUser",
        NOW - 2000 * MINUTE,
        NOW - 2000 * MINUTE,
        rules=[{"id": 100_411, "type": "CRE_RULE"}, {"id": 100_052, "type": "CRE_RULE"}],
    )
    assert old == 2
    store.link_offense_events(old, [ids[8]])
    with store.connect() as conn:
        conn.execute(
            "INSERT INTO reference_sets(name, element_type, timeout_type, time_to_live, creation_time)"
            " VALUES ('Allowlist', 'ALNIC', 'LAST_SEEN', '1 day', ?)",
            (NOW,),
        )
        conn.executemany(
            "INSERT INTO reference_set_values(set_name, value, first_seen, last_seen)"
            " VALUES ('Allowlist', ?, ?, ?)",
            [
                ("ALICE", NOW - 3_600_000, NOW - 3_600_000),
                ("terraform", NOW - 3 * 86_400_000, NOW - 2 * 86_400_000),
            ],
        )
        conn.execute(
            "INSERT INTO reference_maps(name, element_type, timeout_type, time_to_live, creation_time)"
            " VALUES ('Owners', 'ALN', 'UNKNOWN', NULL, ?)",
            (NOW,),
        )
        conn.execute(
            "INSERT INTO reference_map_values(map_name, key, value, first_seen, last_seen)"
            " VALUES ('Owners', 'svc-backup', 'team-a', ?, ?)",
            (NOW, NOW),
        )
        conn.execute(
            "INSERT INTO reference_maps_of_sets(name, element_type, creation_time) VALUES ('CreatedBy', 'ALN', ?)",
            (NOW,),
        )
        conn.executemany(
            "INSERT INTO reference_map_of_sets_values(map_name, key, value, first_seen, last_seen)"
            " VALUES ('CreatedBy', ?, ?, ?, ?)",
            [
                (k, v, NOW, NOW)
                for k, v in [("alice", "svc-backup"), ("alice", "svc-deploy"), ("terraform", "app-deployer")]
            ],
        )
        conn.execute(
            "INSERT INTO reference_tables(name, element_type, timeout_type, time_to_live, creation_time)"
            " VALUES ('Accounts', 'ALN', 'LAST_SEEN', '1 day', ?)",
            (NOW,),
        )
        conn.executemany(
            "INSERT INTO reference_table_values(table_name, outer_key, inner_key, value, first_seen, last_seen)"
            " VALUES ('Accounts', ?, 'owner', ?, ?, ?)",
            [
                ("svc-backup", "team-a", NOW, NOW),
                ("app-deployer", "team-b", NOW - 3 * 86_400_000, NOW - 2 * 86_400_000),
            ],
        )
    return store
