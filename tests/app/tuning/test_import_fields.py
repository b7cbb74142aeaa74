"""Tuning import validates every field of the document (issue 14, item 7): a wrongly typed history field
is a 400 naming it, never a 500 or a value stored unchecked."""

from __future__ import annotations

from typing import Any

import pytest

from app.store import tuning as store
from app.tuning import portable
from app.tuning.entries import TuningError
from tests.app.tuning.tuning_helpers import DAY, NOW, TUNER1, entry_body


def refused(conn: Any, document: dict) -> TuningError:
    with pytest.raises(TuningError) as caught:
        portable.import_document(conn, document, user=TUNER1, now_ms=NOW)
    assert caught.value.status == 400
    return caught.value


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"preset_id": 5}, "entries[0].preset_id"),
        ({"preset_id": ["iac"]}, "entries[0].preset_id"),
        ({"preset_id": "no-such-preset"}, "entries[0].preset_id"),
        ({"status": "approved"}, "entries[0].status"),
        ({"flagged_spoofable": "yes"}, "entries[0].flagged_spoofable"),
        ({"created_at": "yesterday"}, "entries[0].created_at"),
        ({"approved_by": {"name": "x"}}, "entries[0].approved_by"),
        ({"version": True}, "entries[0].version"),
        ({"id": -1}, "entries[0].id"),
        ({"unexpected": 1}, "entries[0].unexpected"),
    ],
)
def test_a_wrongly_typed_entry_field_is_a_400_naming_it(conn: Any, extra: dict, field: str) -> None:
    document = portable.export_document(conn, NOW)
    document["entries"] = [{**entry_body(), "status": "active", "expires_at": NOW + 30 * DAY, **extra}]
    assert refused(conn, document).field == field
    assert store.all_entries(conn) == []


@pytest.mark.parametrize(
    ("extra", "field"), [({"exported_at": "now"}, "exported_at"), ({"settings": []}, "settings")]
)
def test_a_wrongly_typed_document_field_is_a_400_naming_it(conn: Any, extra: dict, field: str) -> None:
    document = {**portable.export_document(conn, NOW), **extra}
    assert refused(conn, document).field == field


def test_a_known_preset_id_is_kept(conn: Any) -> None:
    document = portable.export_document(conn, NOW)
    document["entries"] = [
        {**entry_body(), "status": "active", "expires_at": NOW + 30 * DAY, "preset_id": "iac"}
    ]
    summary = portable.import_document(conn, document, user=TUNER1, now_ms=NOW)
    assert len(summary["created"]) == 1
    assert store.get_entry(conn, summary["created"][0])["preset_id"] == "iac"
