"""Shared JSON API plumbing: strict bodies (unknown fields named), types, paging and sorting."""

from __future__ import annotations

import pytest

from app.api import ApiError, json_body, paging


def parse(app, body, **kwargs):
    with app.test_request_context("/", method="POST", json=body):
        return json_body(**kwargs)


FIELDS = {"note": str, "days": int, "enabled": bool, "expiry": (int, type(None))}


def test_known_fields_pass(offline_app):
    body = {"note": "<script>x</script>", "days": 3, "enabled": False, "expiry": None}
    assert parse(offline_app, body, fields=FIELDS) == body


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"note": "x", "admin": True, "zzz": 1}, "unknown_field", "admin"),
        ({"note": "x", "days": "3"}, "bad_field", "days"),
        ({"note": "x", "days": True}, "bad_field", "days"),  # a bool is not a whole number here
        ({"note": "x", "enabled": 1}, "bad_field", "enabled"),
        ({"note": "x", "expiry": "tomorrow"}, "bad_field", "expiry"),
        ({"note": None}, "missing_field", "note"),
    ],
)
def test_bad_bodies_name_the_field(offline_app, body, code, field):
    with pytest.raises(ApiError) as info:
        parse(offline_app, body, fields=FIELDS, required=("note",))
    assert (info.value.status, info.value.code, info.value.field) == (400, code, field)
    if code == "unknown_field":
        assert "admin, zzz" in info.value.message


def test_non_object_and_non_json_bodies(offline_app):
    with pytest.raises(ApiError) as info:
        parse(offline_app, [1, 2])
    assert info.value.code == "bad_json"
    with offline_app.test_request_context("/", method="POST", data="a=1"), pytest.raises(ApiError) as info:
        json_body()
    assert info.value.status == 415


def test_paging_parameters(offline_app):
    with offline_app.test_request_context("/?limit=10&offset=20&sort=-event_time"):
        page = paging(sort_fields=("event_time", "actor"))
        assert (page.limit, page.offset, page.sort, page.descending) == (10, 20, "event_time", True)
        columns = {"event_time": "d.event_time", "actor": "d.actor"}
        assert page.order_by(columns, "d.id") == "d.event_time DESC"
    with offline_app.test_request_context("/"):
        page = paging(default_limit=25, default_sort="actor", sort_fields=("actor",))
        assert (page.limit, page.offset, page.sort, page.descending) == (25, 0, "actor", False)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=100000", "limit"),
        ("limit=ten", "limit"),
        ("offset=-1", "offset"),
        ("sort=payload;DROP TABLE x", "sort"),
    ],
)
def test_bad_paging_is_400_naming_the_parameter(offline_app, query, field):
    with offline_app.test_request_context(f"/?{query}"), pytest.raises(ApiError) as info:
        paging(sort_fields=("event_time",))
    assert (info.value.status, info.value.field) == (400, field)
