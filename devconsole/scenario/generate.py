"""Assembling the scenario: its items (attacks, benign look-alikes, noise samples, in the order their random
ids are drawn) merged in time order with the bulk of unrelated events."""

from __future__ import annotations

import heapq
import time
from collections.abc import Iterator

from .attacks import attack_items
from .benign import benign_items
from .delivery import delivery_items
from .facts import DEFAULT_EVENTS, DEFAULT_SEED
from .feeds import Builder
from .model import Scenario
from .noise import noise_records
from .noise_samples import noise_samples


def generate(seed: int, events: int, now_ms: int | None) -> tuple[Scenario, Iterator[dict]]:
    """The scenario (its ``records`` holding only the scenario items' records) and a stream of every
    record, items and noise merged in time order."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    builder = Builder(seed, now)
    items, offenses, chains = attack_items(builder)
    items.extend(benign_items(builder, chains))
    items.extend(noise_samples(builder, offenses))
    items.extend(delivery_items(builder))
    interesting = sorted(builder.records, key=lambda r: builder.times[id(r)])
    times = builder.times
    noise = noise_records(builder, max(0, events - len(interesting)))
    merged = heapq.merge(
        ((times[id(r)], 0, n, r) for n, r in enumerate(interesting)),
        ((t, 1, n, r) for n, (t, r) in enumerate(noise)),
    )
    scenario = Scenario(seed, events, builder.now_ms, interesting, items, offenses, chains)
    return scenario, (entry[3] for entry in merged)


def build_scenario(
    seed: int = DEFAULT_SEED, events: int = DEFAULT_EVENTS, now_ms: int | None = None
) -> Scenario:
    """The scenario's records (sorted by event time) and what they mean. Deterministic for (seed, events,
    now_ms). Holds every record in memory: ``seed`` streams instead."""
    scenario, stream = generate(seed, events, now_ms)
    scenario.records = list(stream)
    return scenario
