"""Google Workspace admin activity records (Admin SDK Reports API, log source type 442)."""

from __future__ import annotations

from ..formats import iso_seconds
from .base import BuilderBase

WORKSPACE_CUSTOMER = "C03az79cb"


class WorkspaceRecords(BuilderBase):
    """Admin-application activities as ``activities.list`` returns them."""

    def workspace_profile_id(self, email: str) -> str:
        """The actor's stable Google profile ID (what the detection keys the actor on)."""
        ids: dict[str, str] = self.__dict__.setdefault("_workspace_profiles", {})
        if email not in ids:
            ids[email] = str(self.rng.randrange(10**20, 10**21))
        return ids[email]

    def workspace(
        self,
        time_ms: int,
        event_name: str,
        event_type: str,
        actor: str,
        ip: str,
        parameters: dict[str, str],
    ) -> dict:
        record = {
            "kind": "admin#reports#activity",
            "id": {
                "time": iso_seconds(time_ms, zone="") + f".{time_ms % 1000:03d}Z",
                "uniqueQualifier": str(-self.rng.randrange(10**18, 10**19)),
                "applicationName": "admin",
                "customerId": WORKSPACE_CUSTOMER,
            },
            "etag": '"' + self.hexstr(27) + '"',
            "actor": {
                "callerType": "USER",
                "email": actor,
                "profileId": self.workspace_profile_id(actor),
            },
            "ipAddress": ip,
            "events": [
                {
                    "type": event_type,
                    "name": event_name,
                    "parameters": [{"name": k, "value": v} for k, v in parameters.items()],
                }
            ],
        }
        return self.add(record, time_ms)
