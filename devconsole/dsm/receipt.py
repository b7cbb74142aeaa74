"""When QRadar receives each cloud record: ``starttime`` is the time the event collector received the event,
``devicetime`` the record's own time (CloudTrail ``eventTime``, Entra ``time`` / ``activityDateTime``,
Office 365 ``CreationTime``, Google Cloud ``timestamp``).

Cloud audit feeds reach QRadar late, each by its own path, so ``starttime - devicetime`` is a delay per
platform. ``ReceiptDelays`` draws it per record from a per-log-source-type range — a typical (median)
delay, a floor and a ceiling — deterministically: the same seed and payload always give the same delay.
A record can be given an exact delay by its record id (tests, the scenario's dependent attacks).

``REALISTIC_DELAYS`` follows what the providers document for their delivery paths (all UNCONFIRMED for any
one tenant, they vary with load):

* AWS CloudTrail → S3/SQS: "typically within an average of about 5 minutes", not guaranteed (AWS
  CloudTrail FAQ); the collector's poll adds a minute or two.
* Entra ID audit → Event Hub: a few minutes (Microsoft's reporting latency table: audit logs 2–5 min).
* Office 365 Management Activity API: records "typically" become available 60–90 minutes after the
  event and may take up to 24 hours (Microsoft Purview audit documentation); here 15 min – 6 h, median 60.
* Google Cloud audit → Pub/Sub sink: seconds to a minute or two.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .common import (
    TYPE_AZURE_AD,
    TYPE_AZURE_PLATFORM,
    TYPE_CLOUDTRAIL,
    TYPE_GCP,
    TYPE_GOOGLE_WORKSPACE,
    TYPE_OFFICE_365,
    ParsedEvent,
)

SECOND_MS = 1000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS


@dataclass(frozen=True, slots=True)
class DelayRange:
    """How late one platform's records reach QRadar: at least ``floor_ms``, half of them within
    ``typical_ms``, never more than ``ceiling_ms``."""

    floor_ms: int
    typical_ms: int
    ceiling_ms: int

    def __post_init__(self) -> None:
        if not 0 <= self.floor_ms <= self.typical_ms <= self.ceiling_ms:
            raise ValueError(
                f"a delay range needs 0 <= floor <= typical <= ceiling (got {self.floor_ms}, "
                f"{self.typical_ms}, {self.ceiling_ms} ms)"
            )

    def at(self, fraction: float) -> int:
        """The delay at quantile ``fraction`` (0 ≤ fraction < 1): log-uniform from the floor to the median
        over the lower half, and a tail to the ceiling over the upper half (most records near the median,
        a few near the ceiling)."""
        low, mid, high = (max(v, SECOND_MS) for v in (self.floor_ms, self.typical_ms, self.ceiling_ms))
        if fraction < 0.5:
            share = fraction * 2
            value = math.exp(math.log(low) + (math.log(mid) - math.log(low)) * share)
        else:
            share = ((fraction - 0.5) * 2) ** 3
            value = math.exp(math.log(mid) + (math.log(high) - math.log(mid)) * share)
        return int(min(max(value, self.floor_ms), self.ceiling_ms))


REALISTIC_DELAYS: dict[int, DelayRange] = {
    TYPE_CLOUDTRAIL: DelayRange(1 * MINUTE_MS, 5 * MINUTE_MS, 15 * MINUTE_MS),
    TYPE_AZURE_AD: DelayRange(30 * SECOND_MS, 3 * MINUTE_MS, 15 * MINUTE_MS),
    TYPE_AZURE_PLATFORM: DelayRange(30 * SECOND_MS, 3 * MINUTE_MS, 15 * MINUTE_MS),
    TYPE_OFFICE_365: DelayRange(15 * MINUTE_MS, 60 * MINUTE_MS, 6 * HOUR_MS),
    TYPE_GCP: DelayRange(5 * SECOND_MS, 30 * SECOND_MS, 3 * MINUTE_MS),
    # Google documents Admin console audit events as available within minutes, sometimes hours.
    TYPE_GOOGLE_WORKSPACE: DelayRange(1 * MINUTE_MS, 10 * MINUTE_MS, 2 * HOUR_MS),
}


@dataclass(frozen=True)
class ReceiptDelays:
    """Per-log-source-type receipt delays (``ranges``; a type not listed arrives at once), exact delays by
    record id (``by_record_id``), and ``not_after_ms``: the latest receipt time (a console seeded "now"
    has received nothing after now)."""

    ranges: Mapping[int, DelayRange] = field(default_factory=dict)
    seed: int = 0
    by_record_id: Mapping[str, int] = field(default_factory=dict)
    not_after_ms: int | None = None

    @classmethod
    def realistic(cls, seed: int = 0, **kwargs: Any) -> ReceiptDelays:
        return cls(REALISTIC_DELAYS, seed, **kwargs)

    def delay_ms(self, event: ParsedEvent, payload: bytes) -> int:
        if event.record_id is not None and event.record_id in self.by_record_id:
            return self.by_record_id[event.record_id]
        span = self.ranges.get(event.type_id)
        if span is None:
            return 0
        digest = hashlib.sha256(f"{self.seed}\x1f{event.type_id}\x1f".encode() + payload).digest()
        fraction = int.from_bytes(digest[:8], "big") / 2**64
        return span.at(fraction)

    def received_ms(self, event: ParsedEvent, payload: bytes) -> int:
        """``starttime``: the record's own time plus its delay, never past ``not_after_ms`` and never
        before the record's own time."""
        received = event.time_ms + self.delay_ms(event, payload)
        if self.not_after_ms is not None:
            received = max(event.time_ms, min(received, self.not_after_ms))
        return received


def load_receipt_delays(spec: str, *, seed: int = 0) -> ReceiptDelays | None:
    """``none`` (None: ``starttime`` = the record's own time), ``realistic`` or a JSON file::

        {"seed": 7, "types": {"397": {"floor_s": 900, "typical_s": 3600, "ceiling_s": 21600}},
         "records": {"<record id>": 2400}, "realistic": true, "not_after_ms": 1796328004000}

    ``types`` replace (or, with ``realistic``, extend) the realistic ranges; ``records`` are exact delays
    in seconds by the record's id (CloudTrail ``eventID``, Entra ``properties.id``, Office 365 ``Id``,
    Google ``insertId``); ``not_after_ms`` the latest receipt time. Raises ValueError naming the problem.
    """
    if spec == "none":
        return None
    if spec == "realistic":
        return ReceiptDelays.realistic(seed)
    try:
        config = json.loads(Path(spec).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read receipt delays {spec!r}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ValueError(f"receipt delays {spec!r} is not JSON: {exc}") from None
    if not isinstance(config, dict):
        raise ValueError(f"receipt delays {spec!r} must hold a JSON object")
    ranges: dict[int, DelayRange] = dict(REALISTIC_DELAYS) if config.get("realistic") else {}
    for type_id, span in (config.get("types") or {}).items():
        try:
            ranges[int(type_id)] = DelayRange(
                int(span["floor_s"] * SECOND_MS),
                int(span["typical_s"] * SECOND_MS),
                int(span["ceiling_s"] * SECOND_MS),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(
                f"receipt delays: types.{type_id} needs floor_s <= typical_s <= ceiling_s ({exc})"
            ) from None
    by_record: dict[str, int] = {}
    for record_id, seconds in (config.get("records") or {}).items():
        if not isinstance(seconds, int | float) or seconds < 0:
            raise ValueError(f"receipt delays: records.{record_id} must be a number of seconds >= 0")
        by_record[str(record_id)] = int(seconds * SECOND_MS)
    not_after = config.get("not_after_ms")
    if not_after is not None and not isinstance(not_after, int):
        raise ValueError("receipt delays: not_after_ms must be epoch milliseconds")
    return ReceiptDelays(ranges, int(config.get("seed", seed)), by_record, not_after)


def receipt_config(receipt: ReceiptDelays) -> dict[str, Any]:
    """``receipt`` as the JSON ``load_receipt_delays`` reads back (the same delays for the same records)."""
    return {
        "seed": receipt.seed,
        "types": {
            str(type_id): {
                "floor_s": span.floor_ms / SECOND_MS,
                "typical_s": span.typical_ms / SECOND_MS,
                "ceiling_s": span.ceiling_ms / SECOND_MS,
            }
            for type_id, span in sorted(receipt.ranges.items())
        },
        "records": {record_id: ms / SECOND_MS for record_id, ms in sorted(receipt.by_record_id.items())},
        "not_after_ms": receipt.not_after_ms,
    }
