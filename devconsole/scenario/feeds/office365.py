"""Office 365 Management Activity records (log source type 397)."""

from __future__ import annotations

import json
from typing import Any

from ..facts import (
    TENANT_DOMAIN,
    TENANT_ID,
)
from ..formats import iso_seconds
from .base import BuilderBase


class Office365Records(BuilderBase):
    """Office 365 Management Activity records."""

    def o365(
        self,
        time_ms: int,
        operation: str,
        user_id: str,
        *,
        workload: str = "AzureActiveDirectory",
        record_type: int = 8,
        object_id: str | None = None,
        result: str = "Success",
        actor_ip: str | None = None,
        extra: dict | None = None,
    ) -> dict:
        record: dict[str, Any] = {
            "CreationTime": iso_seconds(time_ms, ""),
            "Id": self.uuid(),
            "Operation": operation,
            "OrganizationId": TENANT_ID,
            "RecordType": record_type,
            "ResultStatus": result,
            "UserKey": f"{self.puid(user_id)}@{TENANT_DOMAIN}",
            "UserType": 0,
            "Version": 1,
            "Workload": workload,
            "ClientIP": "",
            "UserId": user_id,
        }
        if object_id is not None:
            record["ObjectId"] = object_id
        if actor_ip:
            record["ActorIpAddress"] = actor_ip
        if workload == "AzureActiveDirectory":
            record.update(
                {
                    "AzureActiveDirectoryEventType": 1,
                    "Actor": [{"ID": user_id, "Type": 5}, {"ID": self.puid(user_id), "Type": 3}],
                    "ActorContextId": TENANT_ID,
                    "InterSystemsId": self.uuid(),
                    "IntraSystemId": self.uuid(),
                    "SupportTicketId": "",
                    "TargetContextId": TENANT_ID,
                }
            )
        if extra:
            record.update(extra)
        return self.add(record, time_ms)

    def o365_add_user(self, time_ms: int, actor: str, upn: str, display_name: str, actor_ip: str) -> dict:
        oid = self.object_id(upn)
        return self.o365(
            time_ms,
            "Add user.",
            actor,
            object_id=upn,
            actor_ip=actor_ip,
            extra={
                "ModifiedProperties": [
                    {"Name": "AccountEnabled", "NewValue": "[\r\n  true\r\n]", "OldValue": "[]"},
                    {"Name": "DisplayName", "NewValue": json.dumps([display_name]), "OldValue": "[]"},
                    {"Name": "UserPrincipalName", "NewValue": json.dumps([upn]), "OldValue": "[]"},
                ],
                "ExtendedProperties": [{"Name": "extendedAuditEventCategory", "Value": "User"}],
                "Target": [
                    {"ID": f"User_{oid}", "Type": 2},
                    {"ID": oid, "Type": 2},
                    {"ID": "User", "Type": 2},
                    {"ID": upn, "Type": 5},
                ],
            },
        )
