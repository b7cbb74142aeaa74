"""Shared JSON API plumbing: bodies checked against their published schemas (unknown fields named), types,
offense ids, paging and sorting; every request body the OpenAPI document publishes is the one its view
checks."""

from __future__ import annotations

import pytest

from app.api import ApiError, Body, json_body, paging
from app.api.parsing import offense_id

EXAMPLE = Body(
    "Example",
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["note"],
        "properties": {
            "note": {"type": "string"},
            "days": {"type": "integer", "minimum": 1},
            "enabled": {"type": "boolean"},
            "expiry": {"type": "integer", "nullable": True},
            "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}},
            "window": {
                "type": "object",
                "additionalProperties": False,
                "required": ["start"],
                "properties": {"start": {"type": "string"}},
            },
        },
    },
)


def parse(app, body, schema=EXAMPLE):
    with app.test_request_context("/", method="POST", json=body):
        return json_body(schema)


def test_known_fields_pass(offline_app):
    body = {"note": "<script>x</script>", "days": 3, "enabled": False, "expiry": None, "tags": ["b"]}
    assert parse(offline_app, body) == body


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"note": "x", "admin": True, "zzz": 1}, "unknown_field", "admin"),
        ({"note": "x", "days": "3"}, "bad_field", "days"),
        ({"note": "x", "days": True}, "bad_field", "days"),  # a bool is not a whole number here
        ({"note": "x", "days": 3.0}, "bad_field", "days"),  # nor is a number with a fraction part
        ({"note": "x", "days": 0}, "bad_field", "days"),
        ({"note": "x", "enabled": 1}, "bad_field", "enabled"),
        ({"note": "x", "expiry": "tomorrow"}, "bad_field", "expiry"),
        ({"note": "x", "tags": ["a", "c"]}, "bad_field", "tags"),  # the message says tags[1]
        ({"note": "x", "window": {}}, "missing_field", "window.start"),
        ({"note": "x", "window": {"start": "1", "end": "2"}}, "unknown_field", "window.end"),
        ({"note": None}, "bad_field", "note"),
        ({}, "missing_field", "note"),
        ({"zzz": 1}, "unknown_field", "zzz"),  # named before the "note is required" the typo causes
        ({"note": "x", "window": {"zz": 1}}, "unknown_field", "window.zz"),
        ({"note": "x", "days": 2**64}, "bad_field", "days"),  # beyond SQLite's integers, before the schema
    ],
)
def test_bad_bodies_name_the_field(offline_app, body, code, field):
    with pytest.raises(ApiError) as info:
        parse(offline_app, body)
    assert (info.value.status, info.value.code, info.value.field) == (400, code, field)
    assert field.split(".")[-1] in info.value.message
    if field == "tags":
        assert info.value.message.startswith("tags[1] must be one of")
    if field == "admin":
        assert "admin, zzz" in info.value.message


def test_non_object_and_non_json_bodies(offline_app):
    with pytest.raises(ApiError) as info:
        parse(offline_app, [1, 2])
    assert info.value.code == "bad_json"
    with offline_app.test_request_context("/", method="POST", data="a=1"), pytest.raises(ApiError) as info:
        json_body(EXAMPLE)
    assert info.value.status == 415


@pytest.mark.parametrize("raw", ["0", "-1", "x", "²", "2147483648", "99999999999", "", " 1 2"])
def test_bad_offense_ids_are_400_naming_the_field(raw):
    with pytest.raises(ApiError) as info:
        offense_id(raw, "offense")
    assert (info.value.status, info.value.code, info.value.field) == (400, "bad_offense_id", "offense")


def test_offense_ids_in_range_pass():
    assert offense_id(" 42 ", "offense") == 42 and offense_id("2147483647", "offense") == 2**31 - 1


def test_every_published_request_body_is_the_schema_its_view_checks(offline_app):
    """The document's request bodies are named components that are `Body` declarations; the views read
    them with json_body(body), so the schema a client sees is the one enforced (no inline copies)."""
    from app.api.openapi import build_document
    from app.api.schema import json_schema

    document = build_document("t", "1", __import__("app").FEATURES)
    schemas = document["components"]["schemas"]
    bodies = 0
    for path_item in document["paths"].values():
        for operation in path_item.values():
            if "requestBody" not in operation:
                continue
            ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            name = ref.rsplit("/", 1)[1]
            json_schema(schemas[name])  # a self-contained OpenAPI schema a validator compiles
            bodies += 1
    assert bodies >= 14


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
