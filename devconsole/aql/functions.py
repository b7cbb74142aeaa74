"""AQL functions evaluated in Python, registered as SQLite user functions on the search's connection.

Every function returns None instead of raising (a raising user function aborts the whole SQLite
statement), so odd values in attacker-controlled events can never fail a search.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import ipaddress
import json
import math
import re
import sqlite3
from collections.abc import Callable
from functools import lru_cache
from typing import Any, ClassVar

from devconsole.aql import javaregex, timefmt

_TTL_UNITS = {
    "sec": 1000,
    "second": 1000,
    "min": 60_000,
    "minute": 60_000,
    "hour": 3_600_000,
    "day": 86_400_000,
    "week": 7 * 86_400_000,
    "mon": 30 * 86_400_000,
    "month": 30 * 86_400_000,
    "year": 365 * 86_400_000,
}
_TTL_PART = re.compile(r"(\d+)\s*([a-z]+)")
_TTL_CLOCK = re.compile(r"(\d+):(\d{2}):(\d{2})")


def ttl_ms(text: str | None) -> int | None:
    """Milliseconds of a reference-data ``time_to_live`` such as '30 days', '1 month', '5 minutes' or
    PostgreSQL's '1 mons 2 days 03:00:00'; None for no expiry (NULL or unreadable)."""
    if not text:
        return None
    lowered = text.lower()
    total = 0
    for amount, unit in _TTL_PART.findall(lowered):
        unit = unit.rstrip("s") if unit not in ("s", "secs") else "sec"
        unit = {"secs": "sec", "mins": "min", "hr": "hour", "hrs": "hour"}.get(unit, unit)
        if unit not in _TTL_UNITS:
            continue
        total += int(amount) * _TTL_UNITS[unit]
    clock = _TTL_CLOCK.search(lowered)
    if clock:
        h, m, s = (int(x) for x in clock.groups())
        total += ((h * 60 + m) * 60 + s) * 1000
    return total or None


def _safe(func: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any) -> Any:
        try:
            result = func(*args)
        except Exception:  # see the module docstring
            return None
        if isinstance(result, float) and not math.isfinite(result):
            return None
        if isinstance(result, int) and not isinstance(result, bool) and not -(2**63) <= result < 2**63:
            return None
        return result

    return wrapper


def to_text(value: Any) -> str | None:
    """STR(): text of a value (payload bytes decoded as UTF-8, invalid bytes replaced)."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return repr(value)
    return str(value)


def to_long(value: Any) -> int | None:
    """LONG(): integers, numeric text, and IPv4 addresses (as their 32-bit number, per IBM's LONG docs)."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, (int, float)):
        return int(value)
    text = str(value).strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return int(ipaddress.IPv4Address(text))
    except ValueError:
        pass
    return int(float(text))


def to_double(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return float(value)


@lru_cache(maxsize=256)
def like_regex(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    """LIKE pattern (``%`` any run, ``_`` one character, no escape character) as a regex."""
    body = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def like_to_glob(pattern: str) -> str:
    """A case-sensitive LIKE pattern as an equivalent SQLite GLOB pattern."""
    out = []
    for c in pattern:
        if c == "%":
            out.append("*")
        elif c == "_":
            out.append("?")
        elif c in "*?[":
            out.append(f"[{c}]")
        else:
            out.append(c)
    return "".join(out)


@lru_cache(maxsize=256)
def parse_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text.strip(), strict=False)


def in_cidr(cidr: Any, ip: Any) -> bool | None:
    if cidr is None or ip is None:
        return None
    network = parse_network(str(cidr))
    try:
        address = ipaddress.ip_address(str(ip).strip())
    except ValueError:
        return False
    return address.version == network.version and address in network


class _First:
    """FIRST(x): x of the earliest row (by the order key, starttime on events; ties: the first seen)."""

    def __init__(self) -> None:
        self.value: Any = None
        self.key: Any = None
        self.seen = False

    def _better(self, key: Any) -> bool:
        return key is not None and (self.key is None or key < self.key)

    def step(self, value: Any, key: Any) -> None:
        if not self.seen or self._better(key):
            self.value, self.key, self.seen = value, key, True

    def finalize(self) -> Any:
        return self.value


class _Last(_First):
    """LAST(x): x of the latest row (by the order key; ties, or no key: the last seen)."""

    def _better(self, key: Any) -> bool:
        return key is None or self.key is None or key >= self.key


# --- TEXT SEARCH ----------------------------------------------------------------------------------
# The payload's full-text search: words and "quoted phrases", combined with AND / OR / NOT (upper case)
# and parentheses; adjacent terms must all match. A term matches case-insensitively where it is not
# part of a longer word (letters and digits on either side); `*` inside a term stands for any run of
# word characters. QRadar's full-text index tokenizes differently in places (UNCONFIRMED).
MAX_TEXT_SEARCH_DEPTH = 50
_TEXT_TOKEN = re.compile(r'\s*(?:(\()|(\))|"((?:[^"\\]|\\.)*)"|([^\s()"]+))')


def _term_regex(term: str) -> re.Pattern[str]:
    body = r"\w*".join(re.escape(part) for part in term.split("*"))
    return re.compile(rf"(?<![0-9A-Za-z]){body}(?![0-9A-Za-z])", re.IGNORECASE)


@lru_cache(maxsize=256)
def compile_text_search(query: str) -> Callable[[str], bool]:
    """A predicate over payload text for a TEXT SEARCH string; ValueError naming the problem."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = query.strip()
    while pos < len(text):
        match = _TEXT_TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise ValueError(f"unbalanced quote at character {pos + 1}")
        pos = match.end()
        if match.group(1):
            tokens.append(("(", "("))
        elif match.group(2):
            tokens.append((")", ")"))
        elif match.group(3) is not None:
            phrase = re.sub(r"\\(.)", r"\1", match.group(3))
            if not phrase.strip():
                raise ValueError("an empty quoted phrase")
            tokens.append(("term", phrase))
        else:
            word = match.group(4)
            tokens.append((word, word) if word in ("AND", "OR", "NOT") else ("term", word))
        while pos < len(text) and text[pos].isspace():
            pos += 1
    if not tokens:
        raise ValueError("no search terms")
    depth = 0
    for kind, _value in tokens:
        depth += (kind == "(") - (kind == ")")
        if depth > MAX_TEXT_SEARCH_DEPTH:
            raise ValueError(f"parentheses nested deeper than {MAX_TEXT_SEARCH_DEPTH}")
    index = 0

    def peek() -> str | None:
        return tokens[index][0] if index < len(tokens) else None

    def take() -> tuple[str, str]:
        nonlocal index
        index += 1
        return tokens[index - 1]

    def parse_or() -> Callable[[str], bool]:
        parts = [parse_and()]
        while peek() == "OR":
            take()
            parts.append(parse_and())
        return parts[0] if len(parts) == 1 else (lambda s: any(p(s) for p in parts))

    def parse_and() -> Callable[[str], bool]:
        parts = [parse_not()]
        while peek() in ("AND", "NOT", "term", "("):
            if peek() == "AND":
                take()
            parts.append(parse_not())
        return parts[0] if len(parts) == 1 else (lambda s: all(p(s) for p in parts))

    def parse_not() -> Callable[[str], bool]:
        if peek() == "NOT":
            take()
            inner = parse_not()
            return lambda s: not inner(s)
        return parse_atom()

    def parse_atom() -> Callable[[str], bool]:
        kind, value = take() if index < len(tokens) else ("end", "")
        if kind == "(":
            inner = parse_or()
            if peek() != ")":
                raise ValueError("a '(' without its ')'")
            take()
            return inner
        if kind == "term":
            regex = _term_regex(value)
            return lambda s: regex.search(s) is not None
        raise ValueError(f"expected a search term, found {'the end' if kind == 'end' else repr(value)}")

    predicate = parse_or()
    if index != len(tokens):
        raise ValueError(f"unexpected {tokens[index][1]!r}")
    return predicate


def text_search(payload: Any, query: Any) -> bool | None:
    if payload is None or query is None:
        return False if payload is None else None
    return compile_text_search(to_text(query))(to_text(payload)[:1_000_000])


# --- event fields computed from others ----------------------------------------------------------------
# This console's network hierarchy: QRadar's default one (the RFC 1918 ranges), plus loopback and
# link-local addresses. Everything else is remote.
LOCAL_NETWORKS: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = (
    (ipaddress.ip_network("10.0.0.0/8"), "Net-10-172-192.Net_10_0_0_0"),
    (ipaddress.ip_network("172.16.0.0/12"), "Net-10-172-192.Net_172_16_0_0"),
    (ipaddress.ip_network("192.168.0.0/16"), "Net-10-172-192.Net_192_168_0_0"),
    (ipaddress.ip_network("127.0.0.0/8"), "loopback"),
    (ipaddress.ip_network("169.254.0.0/16"), "link-local"),
    (ipaddress.ip_network("::1/128"), "loopback"),
    (ipaddress.ip_network("fe80::/10"), "link-local"),
    (ipaddress.ip_network("fc00::/7"), "unique-local"),
)


def local_network(ip: Any) -> str | None:
    """The network hierarchy name of a local address; None for a remote, missing or unreadable one."""
    if ip is None:
        return None
    try:
        address = ipaddress.ip_address(str(ip))
    except ValueError:
        return None
    for network, name in LOCAL_NETWORKS:
        if address.version == network.version and address in network:
            return name
    return None


def event_direction(source: Any, destination: Any) -> str:
    """QRadar's eventdirection: L2L, L2R, R2L or R2R from whether each address is in the network
    hierarchy; a missing address counts as remote (UNCONFIRMED)."""
    return ("L" if local_network(source) else "R") + "2" + ("L" if local_network(destination) else "R")


# IANA protocol numbers -> the names PROTOCOLNAME returns (QRadar's exact spellings are UNCONFIRMED).
PROTOCOL_NAMES: dict[int, str] = {
    0: "HOPOPT", 1: "ICMP", 2: "IGMP", 4: "IPv4", 6: "TCP", 17: "UDP", 41: "IPv6", 47: "GRE", 50: "ESP",
    51: "AH", 58: "IPv6-ICMP", 89: "OSPF", 132: "SCTP", 255: "Reserved",
}  # fmt: skip


def protocol_name(value: Any) -> str | None:
    number = to_long(value)
    return None if number is None else PROTOCOL_NAMES.get(number)


class Runtime:
    """The per-search state behind the registered functions: lookup tables and reference data, read
    lazily from the search's own connection, and the search's ``now`` and time zone."""

    def __init__(self, conn: sqlite3.Connection, now_ms: int, tz: dt.tzinfo | None) -> None:
        self.conn = conn
        self.now_ms = now_ms
        self.tz = tz
        self._lookups: dict[str, dict[int, str]] = {}
        self._sets: dict[str, tuple[str, set[Any], list[Any]] | None] = {}
        self._maps: dict[str, tuple[str, dict[str, str]] | None] = {}

    # -- name lookups ---------------------------------------------------------------------------
    _LOOKUP_SQL: ClassVar[dict[str, str]] = {
        "qidname": "SELECT qid, name FROM qid_records",
        "qiddescription": "SELECT qid, description FROM qid_records",
        "categoryname": "SELECT id, name FROM categories",
        "logsourcename": "SELECT id, name FROM log_sources",
        "logsourcetypename": "SELECT id, name FROM log_source_types",
    }

    def rule_name(self, value: Any) -> str | None:
        """RULENAME: the name of a rule id, or the names of a creeventlist (JSON array of ids) joined by
        ", " (how QRadar renders a list here is UNCONFIRMED)."""
        names = self._lookups.get("rulename")
        if names is None:
            names = dict(self.conn.execute("SELECT id, name FROM rules").fetchall())
            self._lookups["rulename"] = names
        if isinstance(value, str) and value.startswith("["):
            found = [names.get(to_long(item)) for item in sorted(json.loads(value), key=str)]
            return ", ".join(name for name in found if name) or None
        number = to_long(value)
        return None if number is None else names.get(number)

    def _lookup(self, table: str) -> Callable[[Any], Any]:
        def lookup(key: Any) -> Any:
            names = self._lookups.get(table)
            if names is None:
                names = dict(self.conn.execute(self._LOOKUP_SQL[table]).fetchall())
                self._lookups[table] = names
            if (isinstance(key, float) and key.is_integer()) or (
                isinstance(key, str) and key.strip().lstrip("-").isdigit()
            ):
                key = int(key)
            return names.get(key)

        return lookup

    # -- reference data -------------------------------------------------------------------------
    def _live(self, ttl: str | None, timeout_type: str, first_seen: int, last_seen: int) -> bool:
        span = ttl_ms(ttl)
        if span is None:
            return True
        basis = first_seen if timeout_type == "FIRST_SEEN" else last_seen
        return basis + span > self.now_ms

    def _load_set(self, name: str) -> tuple[str, set[Any], list[Any]] | None:
        if name not in self._sets:
            meta = self.conn.execute(
                "SELECT element_type, timeout_type, time_to_live FROM reference_sets WHERE name = ?", (name,)
            ).fetchone()
            if meta is None:
                self._sets[name] = None
            else:
                element_type, timeout_type, ttl = meta
                rows = self.conn.execute(
                    "SELECT value, first_seen, last_seen FROM reference_set_values WHERE set_name = ?",
                    (name,),
                ).fetchall()
                values: set[Any] = set()
                networks: list[Any] = []
                for value, first_seen, last_seen in rows:
                    if not self._live(ttl, timeout_type, first_seen, last_seen):
                        continue
                    key = self._set_key(element_type, value)
                    if key is not None:
                        values.add(key)
                    if element_type == "CIDR":
                        with contextlib.suppress(ValueError):
                            networks.append(parse_network(value))
                self._sets[name] = (element_type, values, networks)
        return self._sets[name]

    @staticmethod
    def _set_key(element_type: str, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if element_type == "ALNIC":
            return str(value).casefold()
        if element_type in ("NUM", "PORT", "DATE"):
            try:
                number = float(value)
            except (TypeError, ValueError):
                return None
            return int(number) if number.is_integer() else number
        if element_type == "IP":
            try:
                return str(ipaddress.ip_address(str(value).strip()))
            except ValueError:
                return str(value)
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)

    def set_contains(self, name: Any, value: Any) -> bool | None:
        if value is None:
            return False
        loaded = self._load_set(str(name))
        if loaded is None:
            return False  # an unknown set contains nothing (QRadar's behaviour here is UNCONFIRMED)
        element_type, values, networks = loaded
        key = self._set_key(element_type, value)
        if key in values:
            return True
        if element_type == "CIDR":
            return any(in_cidr(str(net), value) for net in networks)
        return False

    def map_value(self, name: Any, key: Any, _domain: Any = None) -> Any:
        if key is None:
            return None
        name = str(name)
        if name not in self._maps:
            meta = self.conn.execute(
                "SELECT element_type, timeout_type, time_to_live FROM reference_maps WHERE name = ?", (name,)
            ).fetchone()
            if meta is None:
                self._maps[name] = None
            else:
                element_type, timeout_type, ttl = meta
                rows = self.conn.execute(
                    "SELECT key, value, first_seen, last_seen FROM reference_map_values WHERE map_name = ?",
                    (name,),
                ).fetchall()
                live = {
                    self._map_key(element_type, k): v
                    for k, v, first, last in rows
                    if self._live(ttl, timeout_type, first, last)
                }
                self._maps[name] = (element_type, live)
        loaded = self._maps[name]
        if loaded is None:
            return None
        element_type, live = loaded
        return live.get(self._map_key(element_type, key))

    def _load_keyed(self, table: str, values_table: str, name: str, columns: str) -> Any:
        """Meta and live rows of a map of sets or a reference table (cached per search)."""
        cache_key = f"{table}:{name}"
        if cache_key not in self._maps:
            meta = self.conn.execute(
                f"SELECT element_type, timeout_type, time_to_live FROM {table} WHERE name = ?", (name,)
            ).fetchone()
            if meta is None:
                self._maps[cache_key] = None
            else:
                element_type, timeout_type, ttl = meta
                name_column = "table_name" if table == "reference_tables" else "map_name"
                rows = self.conn.execute(
                    f"SELECT {columns}, first_seen, last_seen FROM {values_table} WHERE {name_column} = ?",
                    (name,),
                ).fetchall()
                live = [row[:-2] for row in rows if self._live(ttl, timeout_type, row[-2], row[-1])]
                self._maps[cache_key] = (element_type, live)
        return self._maps[cache_key]

    def map_of_sets_contains(self, name: Any, key: Any, value: Any) -> bool:
        """REFERENCEMAPSETCONTAINS('map of sets', key, value): whether the key's set holds the value."""
        if key is None or value is None:
            return False
        loaded = self._load_keyed(
            "reference_maps_of_sets", "reference_map_of_sets_values", str(name), "key, value"
        )
        if loaded is None:
            return False  # an unknown map of sets contains nothing (UNCONFIRMED, as for sets)
        element_type, live = loaded
        wanted_key, wanted = self._map_key("ALN", key), self._set_key(element_type, value)
        return any(k == wanted_key and self._set_key(element_type, v) == wanted for k, v in live)

    def table_value(self, name: Any, column: Any, key: Any, _domain: Any = None) -> Any:
        """REFERENCETABLE('table', 'inner key', outer key): the value stored there, or NULL."""
        if key is None or column is None:
            return None
        loaded = self._load_keyed(
            "reference_tables", "reference_table_values", str(name), "outer_key, inner_key, value"
        )
        if loaded is None:
            return None
        _element_type, live = loaded
        outer, inner = self._map_key("ALN", key), str(column)
        return next((v for o, i, v in live if o == outer and i == inner), None)

    @staticmethod
    def _map_key(element_type: str, key: Any) -> str:
        if isinstance(key, bytes):
            key = key.decode("utf-8", "replace")
        if isinstance(key, float) and key.is_integer():
            key = int(key)
        text = str(key)
        return text.casefold() if element_type == "ALNIC" else text

    # -- registration ---------------------------------------------------------------------------
    def register(self) -> None:
        conn = self.conn
        tz = self.tz
        det = {"deterministic": True}
        for table in self._LOOKUP_SQL:
            conn.create_function(f"aql_{table}", 1, _safe(self._lookup(table)), **det)
        conn.create_function(
            "aql_dateformat",
            2,
            _safe(
                lambda ms, pattern: (
                    None if ms is None or pattern is None else timefmt.dateformat(float(ms), str(pattern), tz)
                )
            ),
            **det,
        )
        conn.create_function(
            "aql_parsedatetime",
            1,
            _safe(
                lambda text: (
                    None if text is None else timefmt.parse_datetime_phrase(str(text), self.now_ms, tz)
                )
            ),
            **det,
        )
        conn.create_function(
            "aql_lower", 1, _safe(lambda s: None if s is None else to_text(s).lower()), **det
        )
        conn.create_function(
            "aql_upper", 1, _safe(lambda s: None if s is None else to_text(s).upper()), **det
        )
        conn.create_function("aql_str", 1, _safe(to_text), **det)
        conn.create_function("aql_utf8", 1, _safe(to_text), **det)
        conn.create_function("aql_long", 1, _safe(to_long), **det)
        conn.create_function("aql_double", 1, _safe(to_double), **det)
        conn.create_function(
            "aql_base64",
            1,
            _safe(
                lambda v: (
                    None
                    if v is None
                    else base64.b64encode(v if isinstance(v, bytes) else to_text(v).encode("utf-8")).decode(
                        "ascii"
                    )
                )
            ),
            **det,
        )
        conn.create_function("aql_strlen", 1, _safe(lambda s: None if s is None else len(to_text(s))), **det)
        conn.create_function(
            "aql_concat",
            -1,
            _safe(lambda *parts: "".join(to_text(p) for p in parts if p is not None)),
            **det,
        )
        conn.create_function(
            "aql_like",
            3,
            _safe(
                lambda v, p, ci: (
                    None
                    if v is None or p is None
                    else like_regex(to_text(p), bool(ci)).fullmatch(to_text(v)) is not None
                )
            ),
            **det,
        )
        conn.create_function(
            "aql_matches",
            3,
            _safe(
                lambda v, p, ci: (
                    None if v is None or p is None else javaregex.matches(to_text(v), to_text(p), bool(ci))
                )
            ),
            **det,
        )
        conn.create_function("aql_incidr", 2, _safe(in_cidr), **det)
        conn.create_function("aql_textsearch", 2, _safe(text_search), **det)
        conn.create_function("aql_eventdirection", 2, _safe(event_direction), **det)
        conn.create_function("aql_protocolname", 1, _safe(protocol_name), **det)
        conn.create_function("aql_rulename", 1, _safe(self.rule_name), **det)
        conn.create_function(
            "aql_pow",
            2,
            _safe(lambda a, b: None if a is None or b is None else math.pow(float(a), float(b))),
            **det,
        )
        conn.create_function("aql_refsetcontains", 2, _safe(self.set_contains), **det)
        conn.create_function("aql_referencemap", -1, _safe(self.map_value), **det)
        conn.create_function("aql_refmapsetcontains", 3, _safe(self.map_of_sets_contains), **det)
        conn.create_function("aql_referencetable", -1, _safe(self.table_value), **det)
        conn.create_aggregate("aql_first", 2, _First)
        conn.create_aggregate("aql_last", 2, _Last)
