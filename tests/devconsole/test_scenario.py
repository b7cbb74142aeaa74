"""The scenario data set (devconsole.scenario): reproducible raw records, ingested through the DSM
ingestion into a real SQLite store, with a manifest whose every event exists with the right type, and
the signals the seed's Testing Methodology and Atomic Red Team T1136.003 expect."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest

from devconsole.dsm.receipt import load_receipt_delays
from devconsole.ingest import ingest_files
from devconsole.scenario import (
    HOSTILE_CSV,
    HOSTILE_SQL,
    HOSTILE_XSS,
    build_scenario,
    seed,
    write_records,
)
from devconsole.store import EventStore

REPO_ROOT = Path(__file__).resolve().parents[2]
HOUR_MS = 3_600_000
EVENTS = 3000
SEED = 7
CREATION_CATEGORIES = ("User Account Added",)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> tuple[Path, dict]:
    data = tmp_path_factory.mktemp("scenario")
    manifest = seed(data, EVENTS, SEED)
    return data, manifest


@pytest.fixture(scope="module")
def db(seeded):
    data, _ = seeded
    conn = sqlite3.connect(f"file:{data / 'events.db'}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    yield conn
    conn.close()


def items_of(manifest: dict, kind: str | None = None) -> list[dict]:
    return [item for item in manifest["items"] if kind is None or item["kind"] == kind]


def item(manifest: dict, key: str) -> dict:
    (found,) = [i for i in manifest["items"] if i["key"] == key]
    return found


def payload(db, event_id: int) -> dict:
    return json.loads(db.execute("SELECT payload FROM events WHERE id = ?", (event_id,)).fetchone()[0])


def payload_parses(db, event_id: int) -> bool:
    try:
        payload(db, event_id)
    except ValueError:
        return False
    return True


def event_row(db, event_id: int) -> sqlite3.Row:
    return db.execute(
        "SELECT e.*, q.name AS qid_name, q.log_source_type_id AS qid_type, c.name AS category_name,"
        " ls.name AS log_source_name, ls.type_id AS log_source_type"
        " FROM events e JOIN qid_records q ON q.qid = e.qid JOIN categories c ON c.id = e.category"
        " JOIN log_sources ls ON ls.id = e.logsourceid WHERE e.id = ?",
        (event_id,),
    ).fetchone()


# --- reproducibility and shape ---------------------------------------------------------------------------


def test_same_seed_same_records_different_seed_different_records():
    now = 1_795_800_000_000
    first = build_scenario(SEED, 800, now).records
    again = build_scenario(SEED, 800, now).records
    other = build_scenario(SEED + 1, 800, now).records
    assert json.dumps(first) == json.dumps(again)
    assert json.dumps(first) != json.dumps(other)
    assert len(first) == len(other) == 800


def test_size_is_the_requested_number_of_records_but_never_drops_the_scenario():
    now = 1_795_800_000_000
    assert len(build_scenario(SEED, 2500, now).records) == 2500
    small = build_scenario(SEED, 10, now)
    assert len(small.records) > 10  # every scenario item is kept even when fewer events are asked for
    assert {i.key for i in small.items} == {i.key for i in build_scenario(SEED, 2500, now).items}


def test_records_file_and_store_match_the_requested_size(seeded, db):
    data, manifest = seeded
    lines = (data / "scenario" / "records.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == EVENTS == manifest["totals"]["records"] == manifest["totals"]["ingested"]
    assert manifest["totals"]["rejected"] == 0
    # Coalesced records are counted in an earlier event's eventcount, not stored as events of their own.
    coalesced = manifest["totals"]["coalesced"]
    assert coalesced >= 1
    assert db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == EVENTS - coalesced
    assert db.execute("SELECT SUM(eventcount) FROM events").fetchone()[0] == EVENTS
    assert set(manifest["totals"]["by_source"]) == {
        "cloudtrail",
        "entra_audit",
        "entra_signin",
        "o365",
        "gcp",
        "workspace",
        "azure_platform",
    }


def test_times_are_relative_to_now(seeded, db):
    _, manifest = seeded
    now = manifest["generated_at_ms"]
    assert abs(now - time.time() * 1000) < 10 * 60_000
    oldest, newest = db.execute("SELECT MIN(starttime), MAX(starttime) FROM events").fetchone()
    assert now - 48 * HOUR_MS - 60_000 <= oldest
    assert oldest < now - 40 * HOUR_MS  # unrelated events really spread over ~48 h
    assert newest <= now
    for entry in items_of(manifest):
        for event in entry["events"]:
            assert now - 24 * HOUR_MS < event["starttime"] <= now, (entry["key"], event)


def test_re_ingesting_the_records_file_gives_the_same_events(seeded, tmp_path, db):
    data, _ = seeded
    store = EventStore.in_dir(tmp_path)
    receipt = load_receipt_delays(str(data / "scenario" / "receipt_delays.json"))
    report = ingest_files(store, [data / "scenario" / "records.jsonl"], receipt=receipt)
    assert report.rejected == []
    with closing(store.connect(readonly=True)) as conn:
        again = conn.execute(
            "SELECT e.starttime, e.devicetime, q.name, e.username, e.sourceip, e.payload FROM events e"
            " JOIN qid_records q ON q.qid = e.qid ORDER BY e.id"
        ).fetchall()
    original = db.execute(
        "SELECT e.starttime, e.devicetime, q.name, e.username, e.sourceip, e.payload FROM events e"
        " JOIN qid_records q ON q.qid = e.qid ORDER BY e.id"
    ).fetchall()
    assert again == [tuple(row) for row in original]


def test_written_records_are_reproducible_files(tmp_path):
    now = 1_795_800_000_000
    write_records(build_scenario(3, 300, now).records, tmp_path / "a.jsonl")
    write_records(build_scenario(3, 300, now).records, tmp_path / "b.jsonl")
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()


# --- the manifest is consistent with the store -------------------------------------------------------------


def test_every_manifest_event_exists_with_its_type_name_and_record_id(seeded, db):
    _, manifest = seeded
    seen = set()
    for entry in items_of(manifest):
        for event in entry["events"]:
            row = event_row(db, event["event_id"])
            assert row is not None, event
            assert row["devicetype"] == event["devicetype"]
            assert event["devicetype"] in manifest["log_source_types"].values()
            assert row["log_source_type"] == row["qid_type"] == event["devicetype"]
            assert row["qid"] == event["qid"]
            assert row["qid_name"] == event["event_name"]
            assert row["starttime"] == event["starttime"]
            seen.add(event["record_id"])
            if event.get("coalesced"):
                # Counted in an earlier record's event, which keeps that record's payload.
                assert row["eventcount"] > 1
                continue
            if event.get("payload_truncated"):
                assert not payload_parses(db, event["event_id"])
                continue
            record = payload(db, event["event_id"])
            value = record
            for part in event["record_id_field"].split("."):
                value = value[part]
            assert value == event["record_id"]
    assert len(seen) == sum(len(i["events"]) for i in items_of(manifest))  # record ids are unique


def _platform_of_type(manifest: dict, devicetype: int) -> str:
    (name,) = [n for n, t in manifest["log_source_types"].items() if t == devicetype]
    return name


def test_item_platform_matches_its_events_log_source_type(seeded):
    _, manifest = seeded
    for entry in items_of(manifest):
        if entry["kind"] == "noise-sample":
            continue
        creations = [e for e in entry["events"] if e["role"] == "creation"] or entry["events"]
        platform = _platform_of_type(manifest, creations[0]["devicetype"])
        # Entra changes made through Azure Resource Manager (a managed identity's federated credential) arrive
        # in the Azure Activity log; the app counts that log source type as Azure AD.
        platform = "Azure AD" if platform == "Azure Platform" else platform
        assert platform == entry["platform"], entry["key"]


def test_offenses_link_the_manifest_events(seeded, db):
    _, manifest = seeded
    assert len(manifest["offenses"]) >= 6
    for offense in manifest["offenses"]:
        row = db.execute("SELECT * FROM offenses WHERE id = ?", (offense["id"],)).fetchone()
        assert row["description"] == offense["description"]
        assert row["status"] == offense["status"]
        linked = [
            r[0]
            for r in db.execute(
                "SELECT event_id FROM offense_events WHERE offense_id = ? ORDER BY event_id", (offense["id"],)
            )
        ]
        assert linked == sorted(offense["event_ids"])
        times = [
            r[0]
            for r in db.execute(
                f"SELECT starttime FROM events WHERE id IN ({','.join('?' * len(linked))})", linked
            )
        ]
        assert (row["start_time"], row["last_updated_time"]) == (min(times), max(times))
        for key in offense["items"]:  # an item belongs to one offense at most
            assert item(manifest, key)["offense_id"] == offense["id"]
    in_offenses = {key for offense in manifest["offenses"] for key in offense["items"]}
    assert [i["offense_id"] for i in manifest["items"] if i["key"] not in in_offenses] == [None] * (
        len(manifest["items"]) - len(in_offenses)
    )
    closed = [o for o in manifest["offenses"] if o["status"] == "CLOSED"]
    assert (
        closed
        and db.execute("SELECT close_time FROM offenses WHERE id = ?", (closed[0]["id"],)).fetchone()[0]
    )


def test_one_offense_has_no_cloud_account_events(seeded, db):
    _, manifest = seeded
    (quiet,) = [o for o in manifest["offenses"] if not o["has_cloud_account_events"]]
    categories = {
        r[0]
        for r in db.execute(
            f"SELECT c.name FROM events e JOIN categories c ON c.id = e.category"
            f" WHERE e.id IN ({','.join('?' * len(quiet['event_ids']))})",
            quiet["event_ids"],
        )
    }
    assert categories == {"User Login Failure"}
    for offense in manifest["offenses"]:
        if offense["has_cloud_account_events"]:
            names = {
                r[0]
                for r in db.execute(
                    f"SELECT c.name FROM events e JOIN categories c ON c.id = e.category"
                    f" WHERE e.id IN ({','.join('?' * len(offense['event_ids']))})",
                    offense["event_ids"],
                )
            }
            assert "User Account Added" in names, offense


def test_chains_reference_events_in_time_order(seeded, db):
    _, manifest = seeded
    assert {c["rule"] for c in manifest["chains"]} == {"a", "b", "c", "e", "f"}
    for chain in manifest["chains"]:
        times = [event_row(db, eid)["devicetime"] for eid in chain["event_ids"]]
        assert times == sorted(times), chain


# --- the signals the seed and the references expect -----------------------------------------------


def test_seed_methodology_test_1_azure_cli_user(seeded, db):
    _, manifest = seeded
    entry = item(manifest, "seed-test-1-azure-cli-user")
    creation = entry["events"][0]
    record = payload(db, creation["event_id"])
    assert record["operationName"] == "Add user"
    assert record["properties"]["result"] == "success"
    assert record["properties"]["initiatedBy"]["user"]["userPrincipalName"] == entry["actor"]
    assert record["properties"]["targetResources"][0]["displayName"] == "df00tech-test-user"
    assert entry["actor_id"] == record["properties"]["initiatedBy"]["user"]["id"]
    assert {"key": "AppId", "value": "04b07795-8ddb-461a-bbee-02f9e1bf7b46"} in record["properties"][
        "additionalDetails"
    ]


def test_seed_methodology_test_2_aadinternals_chain_within_a_minute(seeded, db):
    _, manifest = seeded
    entry = item(manifest, "seed-test-2-aadinternals-service-principal")
    records = [payload(db, e["event_id"]) for e in entry["events"]]
    assert [r["operationName"] for r in records] == [
        "Add application",
        "Add service principal",
        "Add service principal credentials",
    ]
    assert len({r["correlationId"] for r in records}) == 1
    assert len({r["properties"]["initiatedBy"]["user"]["userPrincipalName"] for r in records}) == 1
    times = [e["devicetime"] for e in entry["events"]]
    assert times == sorted(times) and times[-1] - times[0] < 60_000
    assert entry["chain_rule"] == "a" and entry["is_service_account"] is True


def test_seed_methodology_test_3_aws_user_then_access_key(seeded, db):
    _, manifest = seeded
    entry = item(manifest, "seed-test-3-aws-user-access-key")
    user, key = (payload(db, e["event_id"]) for e in entry["events"])
    assert (user["eventName"], key["eventName"]) == ("CreateUser", "CreateAccessKey")
    assert (
        user["requestParameters"]["userName"]
        == key["requestParameters"]["userName"]
        == ("df00tech-atomic-test-user")
    )
    assert user["responseElements"]["user"]["arn"].endswith(":user/df00tech-atomic-test-user")
    assert user["sourceIPAddress"] == key["sourceIPAddress"]
    assert user["userIdentity"]["arn"] == key["userIdentity"]["arn"]
    assert 0 < entry["events"][1]["devicetime"] - entry["events"][0]["devicetime"] <= 60_000
    # The key reaches QRadar before the user it was created for (out-of-order arrival).
    assert entry["events"][1]["starttime"] < entry["events"][0]["starttime"]
    assert "receipt_delay" in entry["depends_on"]
    assert entry["actor_id"] == user["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"]
    assert entry["chain_rule"] == "b"


def test_seed_methodology_test_4_aadinternals_user_by_a_user(seeded, db):
    _, manifest = seeded
    entry = item(manifest, "seed-test-4-aadinternals-user")
    record = payload(db, entry["events"][0]["event_id"])
    assert record["operationName"] == "Add user" and record["properties"]["result"] == "success"
    assert "user" in record["properties"]["initiatedBy"] and "app" not in record["properties"]["initiatedBy"]


def test_atomic_red_team_t1136_003_tests(seeded, db):
    _, manifest = seeded
    aws = payload(db, item(manifest, "atomic-1-aws-create-user")["events"][0]["event_id"])
    assert aws["eventName"] == "CreateUser" and aws["requestParameters"]["userName"] == "atomicredteam"
    assert aws["userAgent"].startswith("aws-cli/")
    azuread = item(manifest, "atomic-2-azuread-new-user")
    cli = item(manifest, "atomic-3-az-ad-user-create")
    for entry in (azuread, cli):
        record = payload(db, entry["events"][0]["event_id"])
        assert record["operationName"] == "Add user"
        assert record["properties"]["targetResources"][0]["displayName"] == "atomicredteam"
    assert "AZURECLI" in json.dumps(payload(db, cli["events"][0]["event_id"]))
    assert all("Atomic Red Team T1136.003" in (i["source"] or "") for i in (azuread, cli))


def test_o365_twin_is_the_same_creation_in_the_other_feed(seeded, db):
    _, manifest = seeded
    entry = item(manifest, "atomic-2-azuread-new-user")
    creation, twin = entry["events"][0], entry["events"][1]
    assert twin["role"] == "twin" and twin["twin_of_event_id"] == creation["event_id"]
    assert (creation["event_name"], twin["event_name"]) == ("Add user", "Add user.")
    assert (creation["devicetype"], twin["devicetype"]) == (445, 397)
    entra, o365 = payload(db, creation["event_id"]), payload(db, twin["event_id"])
    assert o365["ObjectId"] == entra["properties"]["targetResources"][0]["userPrincipalName"]
    assert o365["UserId"] == entra["properties"]["initiatedBy"]["user"]["userPrincipalName"]
    assert 0 < twin["devicetime"] - creation["devicetime"] < 60_000
    # Office 365's copy reaches QRadar 38 minutes after the Entra record.
    assert twin["starttime"] - creation["starttime"] == 38 * 60_000 + 2_000
    assert "receipt_delay" in entry["depends_on"]
    assert entry["also_seen_in"] == ["Office 365"]
    props = [json.loads(event_row(db, e["event_id"])["props"]) for e in (creation, twin)]
    assert props[0] == props[1] == {"Account Name": o365["ObjectId"]}


def test_gcp_service_account_and_key(seeded, db):
    _, manifest = seeded
    entry = item(manifest, "gcp-service-account-and-key")
    methods = [payload(db, e["event_id"])["protoPayload"]["methodName"] for e in entry["events"]]
    assert methods == [
        "google.iam.admin.v1.CreateServiceAccount",
        "google.iam.admin.v1.CreateServiceAccountKey",
    ]
    rows = [event_row(db, e["event_id"]) for e in entry["events"]]
    assert {r["username"] for r in rows} == {entry["actor_id"]}
    assert {json.loads(r["props"])["Account Name"] for r in rows} == {entry["events"][0]["target_account"]}


def test_follow_ons_are_privilege_grants_after_their_creation(seeded, db):
    _, manifest = seeded
    follow_ons = items_of(manifest, "follow-on")
    names = {e["event_name"] for i in follow_ons for e in i["events"]}
    assert names == {
        "AttachUserPolicy",
        "Add member to role",
        "Add app role assignment to service principal",
        "Consent to application",
    }
    for entry in follow_ons:
        parent = item(manifest, entry["follows"])
        first_creation = min(e["devicetime"] for e in parent["events"] if e["expected_detection"])
        assert all(0 < e["devicetime"] - first_creation < 24 * HOUR_MS for e in entry["events"])
        assert entry["chain_rule"] == "c"
    policy = payload(db, item(manifest, "follow-on-aws-admin-policy")["events"][0]["event_id"])
    assert policy["requestParameters"]["policyArn"] == "arn:aws:iam::aws:policy/AdministratorAccess"
    role = payload(db, item(manifest, "follow-on-entra-global-admin")["events"][0]["event_id"])
    assert '"Global Administrator"' in json.dumps(role)
    login = item(manifest, "aws-user-login-profile")
    assert [e["event_name"] for e in login["events"]] == ["CreateUser", "CreateLoginProfile"]


def test_benign_look_alikes_carry_realistic_fingerprints(seeded, db):
    _, manifest = seeded
    benign = {i["key"]: i for i in items_of(manifest, "benign")}
    assert set(benign) >= {
        "benign-terraform-pipeline",
        "benign-ansible",
        "benign-puppet",
        "benign-cloudformation",
        "benign-service-linked-role",
        "benign-entra-connect-sync",
        "benign-workday-inbound",
        "benign-managed-identity",
        "benign-break-glass",
    }

    def first(key: str) -> dict:
        return payload(db, benign[key]["events"][0]["event_id"])

    assert "HashiCorp/1.0 Terraform/" in first("benign-terraform-pipeline")["userAgent"]
    assert first("benign-ansible")["userAgent"].endswith("Ansible/2.16.3")
    assert first("benign-cloudformation")["userIdentity"]["invokedBy"] == "cloudformation.amazonaws.com"
    slr = first("benign-service-linked-role")
    assert slr["eventName"] == "CreateServiceLinkedRole"
    assert slr["sourceIPAddress"] == slr["userAgent"] == slr["userIdentity"]["invokedBy"]
    sync = first("benign-entra-connect-sync")["properties"]["initiatedBy"]["user"]["userPrincipalName"]
    assert re.fullmatch(r"Sync_[A-Z0-9]+_[0-9a-f]{12}@contoso\.onmicrosoft\.com", sync)
    assert "Workday" in first("benign-workday-inbound")["properties"]["initiatedBy"]["app"]["displayName"]
    assert first("benign-managed-identity")["properties"]["initiatedBy"]["app"]["displayName"] == (
        "Managed Service Identity"
    )
    for entry in benign.values():
        assert entry["allowlist"]["actor_id"] == entry["actor_id"]  # presets key on immutable ids
        assert all(e["expected_detection"] or e["role"] == "privilege" for e in entry["events"])
    # immutable ids, not display names: the Workday app's servicePrincipalId
    workday = first("benign-workday-inbound")["properties"]["initiatedBy"]["app"]
    assert benign["benign-workday-inbound"]["actor_id"] == workday["servicePrincipalId"]


def test_hostile_values_are_flagged_and_stored_verbatim(seeded, db):
    _, manifest = seeded
    hostile = items_of(manifest, "hostile")
    assert all(i["hostile"] for i in hostile)
    values = {v for i in hostile for v in i["hostile_fields"].values()}
    assert {HOSTILE_SQL, HOSTILE_CSV} <= values and any(HOSTILE_XSS in v for v in values)
    for entry in hostile:
        row = event_row(db, entry["events"][0]["event_id"])
        assert json.loads(row["props"])["Account Name"] == entry["hostile_fields"]["target_account"]
        # verbatim in the raw record: as its JSON string literal
        literal = json.dumps(entry["hostile_fields"]["target_account"], ensure_ascii=False)[1:-1]
        assert literal in row["payload"].decode("utf-8")


def test_noise_holds_no_successful_creation(seeded, db):
    """Detection has to filter: outside the manifest, every account-added event is a failed attempt."""
    _, manifest = seeded
    listed = {e["event_id"] for i in items_of(manifest) for e in i["events"]}
    unlisted_failed = 0
    for row in db.execute(
        "SELECT e.id, e.payload FROM events e JOIN categories c ON c.id = e.category"
        " WHERE c.name IN ('User Account Added', 'Privilege Escalation Succeeded')"
    ):
        if row["id"] in listed:
            continue
        record = json.loads(row["payload"])
        failed = (
            bool(record.get("errorCode"))
            or (record.get("properties") or {}).get("result") == "failure"
            or record.get("ResultStatus") == "Failed"
            or bool((record.get("protoPayload") or {}).get("status"))
        )
        assert failed, record
        unlisted_failed += 1
    assert unlisted_failed > 0  # failed creations are in the noise
    noise = db.execute("SELECT COUNT(*) FROM events").fetchone()[0] - len(listed)
    assert noise > 0.9 * EVENTS


def test_expected_detections_are_successful_creations(seeded, db):
    _, manifest = seeded
    detections = [e for i in items_of(manifest) for e in i["events"] if e["expected_detection"]]
    assert len(detections) >= 25
    # Entra persistence that is not an account of its own: owners and federation are privilege changes,
    # domains plain directory management (devconsole/dsm/common.py).
    other_categories = {
        "app_owner": "Privilege Escalation Succeeded",
        "domain_federation": "Privilege Escalation Succeeded",
        "domain": "Audit Event",
    }
    for event in detections:
        row = event_row(db, event["event_id"])
        # An Identity Center account assignment is a detection filed as a privilege grant.
        allowed = (
            "User Account Added",
            "User Account Changed",
            "Privilege Escalation Succeeded",
            other_categories.get(event["account_kind"]),
        )
        assert row["category_name"] in allowed
        assert row["magnitude"] >= 3
        assert isinstance(event["is_service_account"], bool) and event["account_kind"]
    kinds = {e["account_kind"] for e in detections}
    assert kinds >= {
        "user",
        "service_principal",
        "application",
        "credential",
        "iam_role",
        "service_linked_role",
        "service_account",
        "service_account_key",
        "access_key",
        "login_profile",
    }
    for entry in items_of(manifest, "noise-sample"):
        assert not any(e["expected_detection"] for e in entry["events"])


def test_seed_command_line(tmp_path):
    data = tmp_path / "console"
    proc = subprocess.run(
        [sys.executable, "-m", "devconsole", "seed", "--data", str(data), "--events", "400", "--seed", "5"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "seeded 400 events (0 rejected)" in proc.stdout
    manifest = json.loads((data / "scenario" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["seed"] == 5 and manifest["events_requested"] == 400
    assert EventStore.in_dir(data).count_events() == 400 - manifest["totals"]["coalesced"]


TYPE_NAMES = {
    347: "Amazon AWS CloudTrail",
    445: "Microsoft Azure Active Directory",
    397: "Microsoft Office 365",
    449: "Google Cloud Audit",
    442: "Google G Suite",
}


def test_seeded_console_answers_ariel_searches_over_the_scenario(devconsole):
    """The shared console (seeded through the CLI) serves the scenario's creations through real AQL over
    HTTPS, with QID names, categories, log source types and the "Account Name" custom property as ingested."""
    aql = (
        'SELECT starttime, QIDNAME(qid) AS "Event Name", LOGSOURCETYPENAME(devicetype) AS "Type",'
        ' CATEGORYNAME(category) AS "Category", "Account Name" AS "Account", username'
        " FROM events WHERE CATEGORYNAME(category) = 'User Account Added' LAST 2 DAYS"
    )
    status, rows = devconsole.run_search(aql)
    assert status["status"] == "COMPLETED"
    found = {(row["starttime"], row["Event Name"]): row for row in rows}
    creations = [
        (entry, event)
        for entry in devconsole.scenario["items"]
        for event in entry["events"]
        if event["role"] == "creation"
    ]
    assert len(creations) >= 20
    for entry, event in creations:
        row = found[(event["starttime"], event["event_name"])]
        assert row["Type"] == TYPE_NAMES[event["devicetype"]]
        assert row["Category"] == "User Account Added"
        assert row["Account"] == event["target_account"], entry["key"]
        assert row["username"] == event["username"], entry["key"]


def test_event_usernames_are_the_actor(seeded, db):
    _, manifest = seeded
    for entry in items_of(manifest):
        for event in entry["events"]:
            assert event_row(db, event["event_id"])["username"] == event["username"]
        if entry["kind"] in ("attack", "hostile", "follow-on"):
            assert {e["username"] for e in entry["events"]} == {entry["actor"]}, entry["key"]
