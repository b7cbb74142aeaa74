"""Azure Activity Log records (Azure Platform, log source type 413)."""

from __future__ import annotations

from ..facts import (
    APPID_AZURE_CLI,
    AZURE_SUBSCRIPTION,
)
from ..formats import iso_fraction
from .base import BuilderBase


class AzureActivityRecords(BuilderBase):
    """Azure Activity Log administrative events."""

    def azure_activity(
        self, time_ms: int, operation: str, caller: str, ip: str, resource: str, result: str = "Success"
    ) -> dict:
        resource_id = (
            f"/SUBSCRIPTIONS/{AZURE_SUBSCRIPTION.upper()}/RESOURCEGROUPS/RG-PROD/PROVIDERS/{resource}"
        )
        record = {
            "time": iso_fraction(time_ms, 7, self.rng.randrange(10_000)),
            "resourceId": resource_id,
            "operationName": operation,
            "category": "Administrative",
            "resultType": result,
            "resultSignature": "Succeeded." if result == "Success" else "Failed.",
            "durationMs": "0",
            "callerIpAddress": ip,
            "correlationId": self.uuid(),
            "identity": {
                "claims": {
                    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn": caller,
                    "appid": APPID_AZURE_CLI,
                }
            },
            "level": "Information",
            "location": "global",
            "properties": {
                "eventCategory": "Administrative",
                "eventDataId": self.uuid(),
                "eventName": "EndRequest",
                "entity": resource_id,
                "message": operation,
            },
        }
        return self.add(record, time_ms)
