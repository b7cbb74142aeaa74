"""Time in AQL: the START/STOP literal formats, PARSEDATETIME's relative phrases, and DATEFORMAT's
Java ``SimpleDateFormat`` patterns, all in epoch milliseconds.

Times without a zone are read in the console's time zone (``tz``; None = this machine's local zone),
as QRadar reads them in the console's zone. DATEFORMAT formats in the same zone.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from functools import lru_cache

# The documented START/STOP formats (reference §1.3), each optionally followed by 'Z' for UTC.
TIME_FORMATS: tuple[tuple[str, str], ...] = (
    ("yyyy-MM-dd HH:mm", "%Y-%m-%d %H:%M"),
    ("yyyy-MM-dd HH:mm:ss", "%Y-%m-%d %H:%M:%S"),
    ("yyyy/MM/dd HH:mm:ss", "%Y/%m/%d %H:%M:%S"),
    ("yyyy/MM/dd-HH:mm:ss", "%Y/%m/%d-%H:%M:%S"),
    ("yyyy:MM:dd-HH:mm:ss", "%Y:%m:%d-%H:%M:%S"),
)
FORMAT_NAMES = ", ".join(name for name, _ in TIME_FORMATS)

_UNIT_MS = {
    "second": 1000,
    "minute": 60_000,
    "hour": 3_600_000,
    "day": 86_400_000,
    "week": 7 * 86_400_000,
    "month": 30 * 86_400_000,
    "year": 365 * 86_400_000,
}
_RELATIVE = re.compile(r"^\s*(\d{1,9})\s*(second|minute|hour|day|week|month|year)s?\s+ago\s*$", re.I)


def to_datetime(ms: int | float, tz: dt.tzinfo | None) -> dt.datetime:
    if tz is None:
        return dt.datetime.fromtimestamp(ms / 1000).astimezone()
    return dt.datetime.fromtimestamp(ms / 1000, tz)


def parse_time_literal(text: str, tz: dt.tzinfo | None) -> int:
    """Epoch ms of a START/STOP string: a documented format (optional trailing Z = UTC) or epoch ms digits.

    Raises ValueError when it is neither.
    """
    value = text.strip()
    if re.fullmatch(r"\d{9,15}", value):
        return int(value)
    utc = False
    if value[-1:] in ("Z", "z"):
        utc = True
        value = value[:-1].rstrip()
    for _name, fmt in TIME_FORMATS:
        try:
            parsed = dt.datetime.strptime(value, fmt)
        except ValueError:
            continue
        if utc:
            parsed = parsed.replace(tzinfo=dt.UTC)
        elif tz is not None:
            parsed = parsed.replace(tzinfo=tz)
        return int(parsed.timestamp() * 1000)  # naive -> this machine's local zone
    raise ValueError(text)


def parse_datetime_phrase(text: str, now_ms: int, tz: dt.tzinfo | None) -> int:
    """PARSEDATETIME: 'now', 'N <unit>[s] ago' (seconds .. years; a month is 30 days, a year 365), or a
    START/STOP literal. Raises ValueError otherwise."""
    value = text.strip()
    if value.lower() == "now":
        return now_ms
    match = _RELATIVE.match(value)
    if match:
        return now_ms - int(match.group(1)) * _UNIT_MS[match.group(2).lower()]
    return parse_time_literal(value, tz)


# --- DATEFORMAT: Java SimpleDateFormat -----------------------------------------------------------------

_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def _num(value: int, count: int) -> str:
    return str(value).zfill(count)


def _offset(d: dt.datetime, count: int, iso: bool) -> str:
    delta = d.utcoffset() or dt.timedelta(0)
    minutes = int(delta.total_seconds() // 60)
    if iso and minutes == 0:
        return "Z"
    sign = "+" if minutes >= 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    if iso and count == 1:
        return f"{sign}{hours:02d}"
    if iso and count >= 3:
        return f"{sign}{hours:02d}:{mins:02d}"
    return f"{sign}{hours:02d}{mins:02d}"


def _field(letter: str, count: int) -> Callable[[dt.datetime], str]:
    if letter in "yY":
        return (lambda d: _num(d.year % 100, 2)) if count == 2 else (lambda d: _num(d.year, count))
    if letter in "ML":
        if count >= 4:
            return lambda d: _MONTHS[d.month - 1]
        if count == 3:
            return lambda d: _MONTHS[d.month - 1][:3]
        return lambda d: _num(d.month, count)
    simple: dict[str, Callable[[dt.datetime], int]] = {
        "d": lambda d: d.day,
        "D": lambda d: d.timetuple().tm_yday,
        "H": lambda d: d.hour,
        "k": lambda d: d.hour or 24,
        "K": lambda d: d.hour % 12,
        "h": lambda d: d.hour % 12 or 12,
        "m": lambda d: d.minute,
        "s": lambda d: d.second,
        "S": lambda d: d.microsecond // 1000,
        "u": lambda d: d.isoweekday(),
        "w": lambda d: d.isocalendar()[1],
        "F": lambda d: (d.day - 1) // 7 + 1,
    }
    if letter in simple:
        getter = simple[letter]
        return lambda d: _num(getter(d), count)
    if letter == "E":
        return (lambda d: _DAYS[d.weekday()]) if count >= 4 else (lambda d: _DAYS[d.weekday()][:3])
    if letter == "a":
        return lambda d: "AM" if d.hour < 12 else "PM"
    if letter == "G":
        return lambda d: "AD"
    if letter == "z":
        return lambda d: d.tzname() or _offset(d, 4, False)
    if letter == "Z":
        return lambda d: _offset(d, count, False)
    if letter == "X":
        return lambda d: _offset(d, count, True)
    raise ValueError(f'Illegal pattern character "{letter}"')


@lru_cache(maxsize=256)
def compile_java_pattern(pattern: str) -> Callable[[dt.datetime], str]:
    """A formatter for a Java SimpleDateFormat pattern; ValueError for an illegal pattern."""
    parts: list[Callable[[dt.datetime], str] | str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "'":
            if i + 1 < n and pattern[i + 1] == "'":
                parts.append("'")
                i += 2
                continue
            end = i + 1
            literal = []
            while True:
                if end >= n:
                    raise ValueError("Unterminated quote in date pattern")
                if pattern[end] == "'":
                    if end + 1 < n and pattern[end + 1] == "'":
                        literal.append("'")
                        end += 2
                        continue
                    break
                literal.append(pattern[end])
                end += 1
            parts.append("".join(literal))
            i = end + 1
        elif ("a" <= ch <= "z") or ("A" <= ch <= "Z"):
            j = i
            while j < n and pattern[j] == ch:
                j += 1
            parts.append(_field(ch, j - i))
            i = j
        else:
            parts.append(ch)
            i += 1

    def fmt(d: dt.datetime) -> str:
        return "".join(p if isinstance(p, str) else p(d) for p in parts)

    return fmt


def dateformat(ms: int | float, pattern: str, tz: dt.tzinfo | None) -> str:
    return compile_java_pattern(pattern)(to_datetime(ms, tz))
