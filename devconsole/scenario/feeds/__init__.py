"""One record builder per feed, each a mixin over the shared ids and clock (``BuilderBase``); ``Builder``
combines them, so a scenario step can write records of any feed from the same seeded RNG."""

from __future__ import annotations

from .azure_activity import AzureActivityRecords
from .base import BuilderBase
from .cloudtrail import CloudTrailRecords
from .entra import EntraRecords
from .gcp import GcpAuditRecords
from .office365 import Office365Records
from .workspace import WorkspaceRecords

__all__ = ["Builder", "BuilderBase"]


class Builder(
    CloudTrailRecords, EntraRecords, Office365Records, GcpAuditRecords, AzureActivityRecords, WorkspaceRecords
):
    """Every feed's records, with ids drawn from one seeded RNG: the same seed gives the same records."""
