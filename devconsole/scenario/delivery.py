"""Attacks that only show against QRadar's delivery of events (``devconsole.coalesce``): a creation hidden
by coalescing behind four failed attempts, and a creation whose payload is cut in the middle of the new
account's name. Drawn after every other item, so the other items' random ids do not move."""

from __future__ import annotations

import json

from ..coalesce import COALESCE_AFTER, DEFAULT_MAX_PAYLOAD_BYTES
from .facts import TENANT_DOMAIN, UA_BOTO3_SCRIPT, UA_POWERSHELL
from .feeds import Builder
from .model import Item, aws_item, entra_user_item, ref

COALESCING = "coalescing"
POLL_DELAY_MS = 2 * 60_000
TRUNCATION = "truncation"


def _one_poll(b: Builder, burst: list[dict]) -> None:
    """A burst reaches QRadar in one poll of its feed: every record the same time after its own, so the
    seconds between them, which coalescing counts on starttime, are kept (with receipt delays on)."""
    for record in burst:
        b.arrives_after(record, POLL_DELAY_MS)


def delivery_items(b: Builder, max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES) -> list[Item]:
    items: list[Item] = []

    # -- four denied CreateUser calls, then the one that works, within 10 s from one address: QRadar keeps
    # the first three, and stores the fourth and fifth as one event with the fourth's ("failed") payload.
    intruder = b.iam_user("build-agent-07")
    ip = "198.51.100.77"
    t = b.at(5)
    name = "ops-breakglass"
    denied = ("AccessDenied", f"User is not authorized to perform: iam:CreateUser on resource: user {name}")
    attempts = [
        b.create_user(t + i * 2_000, intruder, ip, UA_BOTO3_SCRIPT, name, error=denied) for i in range(4)
    ]
    created = b.create_user(t + 8_000, intruder, ip, UA_BOTO3_SCRIPT, name)
    _one_poll(b, [*attempts, created])
    items.append(
        aws_item(
            "delivery-coalesced-create-user",
            "attack",
            "IAM user created after four denied attempts, coalesced behind a failed payload",
            intruder,
            [
                *(ref(a, "failed attempt", False) for a in attempts[:COALESCE_AFTER]),
                ref(created, "creation", True, False, "user", name),
            ],
            is_service_account=False,
            depends_on={
                COALESCING: "counted (eventcount 2) in the stored event of a denied attempt, whose payload "
                "says failed: detected only as a possible success"
            },
            notes="With coalescing on, the creation is counted in the stored event of the fourth (denied) "
            "attempt (eventcount 2): the app must report it as a possible success, not drop it as failed.",
        )
    )

    # -- the same in Entra ID: four "Add user" calls refused, then the one that works.
    admin, admin_ip = f"lynne.robbins@{TENANT_DOMAIN}", "198.51.100.78"
    t = b.at(4.5)
    upn = f"helpdesk-temp@{TENANT_DOMAIN}"
    refused = [
        b.entra_add_user(
            t + i * 2_000, admin, admin_ip, upn, "helpdesk-temp", user_agent=UA_POWERSHELL,
            result="failure", result_reason="Insufficient privileges to complete the operation.",
        )
        for i in range(4)
    ]  # fmt: skip
    added = b.entra_add_user(t + 8_000, admin, admin_ip, upn, "helpdesk-temp", user_agent=UA_POWERSHELL)
    _one_poll(b, [*refused, added])
    items.append(
        entra_user_item(
            b,
            "delivery-coalesced-entra-add-user",
            "attack",
            "Entra user added after four refused attempts, coalesced behind a failed payload",
            admin,
            [
                *(ref(r, "failed attempt", False) for r in refused[:COALESCE_AFTER]),
                ref(added, "creation", True, False, "user", upn),
            ],
            is_service_account=False,
            depends_on={
                COALESCING: "counted in the stored event of a refused attempt: detected only as a possible success"
            },
            notes="As the AWS item: the stored event keeps the fourth refusal's payload, eventcount 2.",
        )
    )

    # -- a CreateUser with many tags: its payload is longer than the maximum payload length and the cut
    # falls in the middle of requestParameters.userName.
    t = b.at(4)
    name = "svc-exfil-replica"
    tags = [{"key": f"cost-centre-{i:02d}", "value": "finance-reporting-pipeline"} for i in range(40)]
    record = b.create_user(t, intruder, ip, UA_BOTO3_SCRIPT, name)
    record["requestParameters"] = {"path": "/", "tags": tags, "userName": name}
    _cut_in_the_middle_of(record, name, max_payload_bytes)
    items.append(
        aws_item(
            "delivery-truncated-create-user",
            "attack",
            "IAM user created with a payload cut in the middle of the new user's name",
            intruder,
            [ref(record, "creation", True, False, "user", name)],
            is_service_account=False,
            depends_on={
                TRUNCATION: "the payload is cut inside the new user's name: detected with outcome unknown, "
                "the name from Account Name"
            },
            notes=f"The payload is longer than {max_payload_bytes} bytes and is cut inside the userName: the "
            "app must keep the detection, mark the payload truncated and take the name from Account Name.",
        )
    )
    return items


def _serialized(record: dict) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _cut_in_the_middle_of(record: dict, name: str, limit: int) -> None:
    """Lengthen the last tag's value so that byte ``limit`` of the payload falls inside ``name`` where
    ``requestParameters`` holds it."""
    needle = f'"userName":"{name}"}}'.encode()
    at = _serialized(record).find(needle) + len(b'"userName":"')
    shortfall = limit - (at + len(name) // 2)
    if shortfall < 0:
        raise ValueError("the record is already longer than the payload limit before its userName")
    record["requestParameters"]["tags"][-1]["value"] += "x" * shortfall
