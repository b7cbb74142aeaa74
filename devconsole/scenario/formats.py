"""Time stamps as each feed writes them."""

from __future__ import annotations

import datetime as dt


def _utc(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


def iso_seconds(ms: int, zone: str = "Z") -> str:
    return _utc(ms).strftime("%Y-%m-%dT%H:%M:%S") + zone


def iso_fraction(ms: int, digits: int, extra: int, zone: str = "Z") -> str:
    """``digits`` fractional digits: the millisecond, then ``extra`` as sub-millisecond noise."""
    width = digits - 3
    sub = f"{ms % 1000:03d}{extra % 10**width:0{width}d}"
    return f"{_utc(ms).strftime('%Y-%m-%dT%H:%M:%S')}.{sub}{zone}"


def aws_create_date(ms: int) -> str:
    stamp = _utc(ms)
    hour = stamp.hour % 12 or 12
    return f"{stamp:%b} {stamp.day}, {stamp.year}, {hour}:{stamp:%M:%S} {'AM' if stamp.hour < 12 else 'PM'}"
