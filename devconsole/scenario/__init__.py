"""The scenario data set: a reproducible mix of cloud account attacks, benign provisioning look-alikes,
privilege follow-ons, hostile names and plenty of unrelated events — generated as RAW records, written to
``DIR/scenario/records.jsonl``, ingested through ``devconsole.ingest``, with offenses linking the attack
chains and ``DIR/scenario/manifest.json`` telling tests which event is which.

    python -m devconsole seed --data DIR [--events N] [--seed S]

Reproducible: the same seed, size and ``now`` give byte-identical records (``build_scenario``). Times are
relative to now: unrelated events spread over the last 48 hours, every scenario item within the last 24.
Records have each feed's own shape; values are illustrative and anonymised (documentation IP ranges,
example domains).

Modules: ``feeds`` (one record builder per feed), ``attacks``, ``benign`` and ``noise_samples`` (the items,
with the offenses and chains they form), ``noise`` (unrelated events in bulk), ``generate`` (assembling),
``offenses``, ``manifest`` and ``seeding`` (writing, ingesting, the ``seed`` command).
"""

from __future__ import annotations

from .facts import DEFAULT_EVENTS, DEFAULT_SEED, HOSTILE_CSV, HOSTILE_SQL, HOSTILE_XSS
from .generate import build_scenario
from .model import ChainSpec, EventRef, Item, OffenseSpec, Scenario
from .noise import noise_records, unrelated_records
from .seeding import seed, seed_command, write_records

__all__ = [
    "DEFAULT_EVENTS",
    "DEFAULT_SEED",
    "HOSTILE_CSV",
    "HOSTILE_SQL",
    "HOSTILE_XSS",
    "ChainSpec",
    "EventRef",
    "Item",
    "OffenseSpec",
    "Scenario",
    "build_scenario",
    "noise_records",
    "seed",
    "seed_command",
    "unrelated_records",
    "write_records",
]
