"""Assembling the scenario: its items (attacks, benign look-alikes, noise samples, in the order their random
ids are drawn) merged in time order with the bulk of unrelated events."""

from __future__ import annotations

import heapq
import time
from collections.abc import Iterator

from .attacks import attack_items
from .aws_coverage import aws_coverage_items
from .benign import benign_items
from .delivery import delivery_items
from .entra_families import entra_family_items
from .facts import DEFAULT_EVENTS, DEFAULT_SEED
from .feeds import Builder
from .google import google_items
from .model import Scenario
from .noise import noise_records
from .noise_samples import noise_samples

AWS_COVERAGE_SEED_OFFSET = 12


def generate(seed: int, events: int, now_ms: int | None) -> tuple[Scenario, Iterator[dict]]:
    """The scenario (its ``records`` holding only the scenario items' records) and a stream of every
    record, items and noise merged in time order."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    builder = Builder(seed, now)
    items, offenses, chains = attack_items(builder)
    items.extend(benign_items(builder, chains))
    items.extend(noise_samples(builder, offenses))
    items.extend(entra_family_items(builder, chains))
    # AWS coverage items draw from a builder of their own: the items above keep their ids.
    aws = Builder(seed + AWS_COVERAGE_SEED_OFFSET, now)
    aws_items, aws_chains = aws_coverage_items(aws)
    items.extend(aws_items)
    chains.extend(aws_chains)
    builder.records.extend(aws.records)
    builder.times.update(aws.times)
    items.extend(google_items(builder, chains))
    items.extend(delivery_items(builder))
    interesting = sorted(builder.records, key=lambda r: builder.times[id(r)])
    times = builder.times
    noise = noise_records(builder, max(0, events - len(interesting)))
    merged = heapq.merge(
        ((times[id(r)], 0, n, r) for n, r in enumerate(interesting)),
        ((t, 1, n, r) for n, (t, r) in enumerate(noise)),
    )
    scenario = Scenario(seed, events, builder.now_ms, interesting, items, offenses, chains, builder.delays)
    return scenario, (entry[3] for entry in merged)


def build_scenario(
    seed: int = DEFAULT_SEED, events: int = DEFAULT_EVENTS, now_ms: int | None = None
) -> Scenario:
    """The scenario's records (sorted by event time) and what they mean. Deterministic for (seed, events,
    now_ms). Holds every record in memory: ``seed`` streams instead."""
    scenario, stream = generate(seed, events, now_ms)
    scenario.records = list(stream)
    return scenario
