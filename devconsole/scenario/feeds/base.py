"""What every feed's record builder shares: one seeded RNG for ids, the scenario's clock, the kept records."""

from __future__ import annotations

import random
import uuid

from ..facts import HOUR_MS


class BuilderBase:
    """Ids and times drawn from one seeded RNG, so the same seed gives the same records; every feed's
    records are added through ``add``."""

    def __init__(self, seed: int, now_ms: int) -> None:
        self.rng = random.Random(seed)
        self.now_ms = now_ms - now_ms % 1000
        self.records: list[dict] = []
        self.times: dict[int, int] = {}  # id(record) -> event time (ms), for sorting
        # id(record) -> exact receipt delay (ms) of a record an attack's meaning depends on; every other
        # record gets its platform's realistic delay (devconsole.dsm.receipt) at ingest
        self.delays: dict[int, int] = {}
        self.keep = True  # False while streaming bulk noise: records are yielded, not kept
        self._aws_ids: dict[str, str] = {}
        self._entra_ids: dict[str, str] = {}
        self._puids: dict[str, str] = {}

    # ids ---------------------------------------------------------------------------------------------
    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def hexstr(self, n: int) -> str:
        return "".join(self.rng.choice("0123456789abcdef") for _ in range(n))

    def upper_id(self, prefix: str, n: int = 16) -> str:
        return prefix + "".join(self.rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(n))

    def aws_principal(self, arn: str, prefix: str) -> str:
        if arn not in self._aws_ids:
            self._aws_ids[arn] = self.upper_id(prefix, 17)
        return self._aws_ids[arn]

    def object_id(self, name: str) -> str:
        """A stable Entra object id per name (user UPN, app or service principal)."""
        if name not in self._entra_ids:
            self._entra_ids[name] = self.uuid()
        return self._entra_ids[name]

    def puid(self, upn: str) -> str:
        if upn not in self._puids:
            self._puids[upn] = "1003" + self.hexstr(12).upper()
        return self._puids[upn]

    def at(self, hours_ago: float) -> int:
        """A whole-second time ``hours_ago`` before now, with up to ±5 minutes of jitter."""
        jitter = self.rng.randint(-300, 300) * 1000
        return self.now_ms - int(hours_ago * HOUR_MS) + jitter

    def arrives_after(self, record: dict, delay_ms: int) -> dict:
        """QRadar receives ``record`` exactly ``delay_ms`` after its own time."""
        self.delays[id(record)] = delay_ms
        return record

    def add(self, record: dict, time_ms: int) -> dict:
        if self.keep:
            self.records.append(record)
            self.times[id(record)] = time_ms
        return record
