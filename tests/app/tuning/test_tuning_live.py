"""The tuning API under gunicorn, reached the way a browser does: through the dev console's app proxy
with each user's own SEC and QRadarCSRF cookies."""

from __future__ import annotations

import uuid
from typing import Any

from app.store.db import now_ms

DAY = 86_400_000


def test_two_person_flow_through_the_console_proxy(live_app: Any, devconsole: Any) -> None:
    actor_id = f"arn:aws:iam::111122223333:role/live-{uuid.uuid4().hex[:10]}"
    tuner1, tuner2, analyst = (live_app.session_as(u) for u in ("tuner1", "tuner2", "analyst"))
    url = live_app.proxy_url
    body = {
        "platforms": ["AWS"],
        "actor_id": actor_id,
        "expires_at": now_ms() + 7 * DAY,
        "justification": "live proxy test: pipeline role allowlist",
    }

    refused = analyst.post(url("api/tuning/entries"), json=body, timeout=30)
    assert refused.status_code == 403
    assert analyst.get(url(f"api/tuning/entries?actor_id={actor_id}"), timeout=30).json()["total"] == 0

    created = tuner1.post(url("api/tuning/entries"), json=body, timeout=30)
    assert created.status_code == 201, created.text
    entry = created.json()["entry"]
    assert entry["status"] == "pending" and entry["created_by"] == "tuner1"

    same = tuner1.post(
        url(f"api/tuning/entries/{entry['id']}/approve"), json={"version": entry["version"]}, timeout=30
    )
    assert same.status_code == 403 and same.json()["error"]["code"] == "same_user"
    approved = tuner2.post(
        url(f"api/tuning/entries/{entry['id']}/approve"), json={"version": entry["version"]}, timeout=30
    )
    assert approved.status_code == 200 and approved.json()["entry"]["approved_by"] == "tuner2"

    names = tuner1.get(url("api/tuning/settings"), timeout=30).json()
    qradar = devconsole.api("admin")
    set_url = f"{devconsole.base_url}/api/reference_data/sets/{names['reference_set_name']}"
    assert actor_id in {v["value"] for v in qradar.get(set_url, timeout=30).json()["data"]}

    stale = tuner1.patch(
        url(f"api/tuning/entries/{entry['id']}"),
        json={"version": entry["version"], "ticket": "x"},
        timeout=30,
    )
    assert stale.status_code == 409 and stale.json()["current"]["status"] == "active"
    current = stale.json()["current"]
    removed = tuner1.delete(
        url(f"api/tuning/entries/{entry['id']}"), json={"version": current["version"]}, timeout=30
    )
    assert removed.status_code == 200 and removed.json()["entry"]["status"] == "deleted"
    assert actor_id not in {v["value"] for v in qradar.get(set_url, timeout=30).json()["data"]}
    audit = tuner1.get(url(f"api/tuning/audit?object_id={entry['id']}&sort=id"), timeout=30).json()
    assert [i["action"] for i in audit["items"]] == [
        "tuning.entry.create",
        "tuning.entry.approve",
        "tuning.entry.delete",
    ]
