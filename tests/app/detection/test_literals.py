"""Every value reaching AQL is an escaped, typed literal: hostile strings cannot change the query."""

from __future__ import annotations

import pytest

from app.aql import literals as lit

HOSTILE = [
    "' OR 1=1 --",
    "x' UNION SELECT * FROM flows LAST 99 DAYS --",
    "O'Brien",
    "''",
    "<script>alert(1)</script>",
    "%_\\",
    "Ünïcødé 🙂 – en dash",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_string_literal_doubles_quotes_and_round_trips(value: str) -> None:
    text = lit.string(value)
    assert text.startswith("'") and text.endswith("'")
    inner = text[1:-1]
    # No lone quote survives inside: every ' is part of a '' pair, so the literal cannot end early.
    assert "'" not in inner.replace("''", "")
    assert inner.replace("''", "'") == value


@pytest.mark.parametrize("value", ["a\x00b", "line\nbreak", "cr\rx", "\x1b[31m"])
def test_string_literal_refuses_control_characters(value: str) -> None:
    with pytest.raises(lit.AqlLiteralError):
        lit.string(value)


@pytest.mark.parametrize("value", [1, None, b"bytes", ["x"]])
def test_string_literal_refuses_non_strings(value: object) -> None:
    with pytest.raises(lit.AqlLiteralError):
        lit.string(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [True, 1.5, "3", "3 OR 1=1", None])
def test_integer_refuses_anything_but_int(value: object) -> None:
    with pytest.raises(lit.AqlLiteralError):
        lit.integer(value)  # type: ignore[arg-type]


def test_integer_bounds() -> None:
    assert lit.integer(3, minimum=0, maximum=10) == "3"
    with pytest.raises(lit.AqlLiteralError):
        lit.integer(11, minimum=0, maximum=10)
    with pytest.raises(lit.AqlLiteralError):
        lit.epoch_ms(-1)


@pytest.mark.parametrize(
    "name", ["Account Name", "Target Username", "AWS-Event Source", "User Agent (custom)"]
)
def test_identifier_quotes_property_names(name: str) -> None:
    assert lit.identifier(name) == f'"{name}"'


@pytest.mark.parametrize(
    "name", ['Account" , payload AS "x', "a\nb", "", "x" * 200, "'quoted'", "back\\slash"]
)
def test_identifier_refuses_names_that_could_escape_quotes(name: str) -> None:
    with pytest.raises(lit.AqlLiteralError):
        lit.identifier(name)


def test_lists_render_and_refuse_empty() -> None:
    assert lit.integer_list([347, 445]) == "(347, 445)"
    assert lit.string_list(["a'b", "c"]) == "('a''b', 'c')"
    with pytest.raises(lit.AqlLiteralError):
        lit.integer_list([])
    with pytest.raises(lit.AqlLiteralError):
        lit.string_list([])


def test_time_clause_widens_to_whole_minutes_in_utc() -> None:
    # 2023-11-14 22:13:20.123 UTC .. 22:18:20.001 UTC
    clause = lit.time_clause(1_700_000_000_123, 1_700_000_300_001)
    assert clause == "START '2023-11-14 22:13Z' STOP '2023-11-14 22:19Z'"
    # A window inside one minute still spans a whole minute (STOP is exclusive).
    assert lit.time_clause(1_700_000_000_000, 1_700_000_001_000) == (
        "START '2023-11-14 22:13Z' STOP '2023-11-14 22:14Z'"
    )
    # On a minute boundary STOP stays there: [22:13:00, 22:14:00) covers every event before it.
    assert lit.time_clause(1_699_999_980_000, 1_700_000_040_000) == (
        "START '2023-11-14 22:13Z' STOP '2023-11-14 22:14Z'"
    )
    with pytest.raises(lit.AqlLiteralError):
        lit.time_clause(5_000, 5_000)
