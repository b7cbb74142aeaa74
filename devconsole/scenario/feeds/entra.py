"""Entra ID audit and sign-in records, diagnostic settings / Event Hub shape (log source type 445)."""

from __future__ import annotations

import json
from typing import Any

from ..facts import (
    GLOBAL_ADMIN_TEMPLATE_ID,
    TENANT_ID,
    UA_BROWSER,
)
from ..formats import iso_fraction
from .base import BuilderBase


class EntraRecords(BuilderBase):
    """Entra ID audit records (initiators, targets) and sign-ins."""

    def user_initiator(self, upn: str, ip: str | None) -> dict:
        return {
            "user": {
                "id": self.object_id(upn),
                "displayName": None,
                "userPrincipalName": upn,
                "ipAddress": ip,
                "roles": [],
            }
        }

    def app_initiator(self, name: str, app_id: str | None = None) -> dict:
        return {
            "app": {
                "appId": app_id,
                "displayName": name,
                "servicePrincipalId": self.object_id(name),
                "servicePrincipalName": None,
            }
        }

    def user_target(self, upn: str, display_name: str, *, member_type: str = "Member") -> dict:
        return {
            "id": self.object_id(upn),
            "displayName": display_name,
            "type": "User",
            "userPrincipalName": upn,
            "administrativeUnits": [],
            "modifiedProperties": [
                {"displayName": "AccountEnabled", "oldValue": None, "newValue": "[true]"},
                {"displayName": "DisplayName", "oldValue": None, "newValue": json.dumps([display_name])},
                {"displayName": "UserPrincipalName", "oldValue": None, "newValue": json.dumps([upn])},
                {"displayName": "UserType", "oldValue": None, "newValue": json.dumps([member_type])},
            ],
        }

    def entra_audit(
        self,
        time_ms: int,
        operation: str,
        *,
        category: str,
        initiated_by: dict,
        targets: list[dict],
        result: str = "success",
        result_reason: str = "",
        correlation_id: str | None = None,
        user_agent: str | None = None,
        app_id: str | None = None,
        logged_by: str = "Core Directory",
        operation_type: str = "Add",
    ) -> dict:
        correlation = correlation_id or self.uuid()
        extra = self.rng.randrange(10_000)
        details = []
        if user_agent:
            details.append({"key": "User-Agent", "value": user_agent})
        if app_id:
            details.append({"key": "AppId", "value": app_id})
        user = initiated_by.get("user") or {}
        app = initiated_by.get("app") or {}
        record = {
            "time": iso_fraction(time_ms, 7, extra),
            "resourceId": f"/tenants/{TENANT_ID}/providers/Microsoft.aadiam",
            "operationName": operation,
            "operationVersion": "1.0",
            "category": "AuditLogs",
            "tenantId": TENANT_ID,
            "resultSignature": "None",
            "durationMs": 0,
            "callerIpAddress": user.get("ipAddress"),
            "correlationId": correlation,
            "identity": user.get("userPrincipalName") or app.get("displayName"),
            "Level": 4,
            "properties": {
                "id": f"Directory_{correlation}_{self.hexstr(5).upper()}_{self.rng.randrange(10**8)}",
                "category": category,
                "correlationId": correlation,
                "result": result,
                "resultReason": result_reason,
                "activityDisplayName": operation,
                "activityDateTime": iso_fraction(time_ms, 7, extra, "+00:00"),
                "loggedByService": logged_by,
                "operationType": operation_type,
                "initiatedBy": initiated_by,
                "targetResources": targets,
                "additionalDetails": details,
            },
        }
        return self.add(record, time_ms)

    def entra_add_user(
        self, time_ms: int, actor: str, actor_ip: str | None, upn: str, display_name: str, **kw: Any
    ) -> dict:
        """An Entra "Add user" audit record: the user ``actor`` (from ``actor_ip``) creates ``upn``."""
        return self._entra_user_management(time_ms, "Add user", actor, actor_ip, upn, display_name, **kw)

    def entra_delete_user(
        self, time_ms: int, actor: str, actor_ip: str | None, upn: str, display_name: str, **kw: Any
    ) -> dict:
        """An Entra "Delete user" audit record (a test's cleanup)."""
        return self._entra_user_management(
            time_ms, "Delete user", actor, actor_ip, upn, display_name, operation_type="Delete", **kw
        )

    def _entra_user_management(
        self,
        time_ms: int,
        operation: str,
        actor: str,
        actor_ip: str | None,
        upn: str,
        display_name: str,
        **kw: Any,
    ) -> dict:
        return self.entra_audit(
            time_ms,
            operation,
            category="UserManagement",
            initiated_by=self.user_initiator(actor, actor_ip),
            targets=[self.user_target(upn, display_name)],
            **kw,
        )

    def entra_global_admin_grant(
        self, time_ms: int, actor: str, actor_ip: str, upn: str, display_name: str, user_agent: str
    ) -> dict:
        """An Entra "Add member to role" audit record: ``actor`` makes ``upn`` Global Administrator."""
        member = self.user_target(upn, display_name)
        member["modifiedProperties"] = [
            {"displayName": "Role.DisplayName", "oldValue": None, "newValue": '"Global Administrator"'},
            {
                "displayName": "Role.TemplateId",
                "oldValue": None,
                "newValue": json.dumps(GLOBAL_ADMIN_TEMPLATE_ID),
            },
        ]
        role = {
            "id": self.object_id("role:Global Administrator"),
            "displayName": "Global Administrator",
            "type": "Role",
        }
        return self.entra_audit(
            time_ms,
            "Add member to role",
            category="RoleManagement",
            initiated_by=self.user_initiator(actor, actor_ip),
            targets=[member, role],
            user_agent=user_agent,
            operation_type="Assign",
        )

    def entra_signin(
        self,
        time_ms: int,
        upn: str,
        ip: str,
        *,
        error_code: int = 0,
        app: str = "Office 365 Exchange Online",
        user_agent: str = UA_BROWSER,
    ) -> dict:
        failure = {
            0: "",
            50126: "Invalid username or password or Invalid on-premise username or password.",
            50053: "Account is locked.",
            50074: "Strong Authentication is required.",
        }
        record = {
            "time": iso_fraction(time_ms, 7, self.rng.randrange(10_000)),
            "resourceId": f"/tenants/{TENANT_ID}/providers/Microsoft.aadiam",
            "operationName": "Sign-in activity",
            "operationVersion": "1.0",
            "category": "SignInLogs",
            "tenantId": TENANT_ID,
            "resultType": str(error_code),
            "resultSignature": "SUCCESS" if error_code == 0 else "None",
            "resultDescription": failure.get(error_code, ""),
            "durationMs": 0,
            "callerIpAddress": ip,
            "correlationId": self.uuid(),
            "identity": upn.split("@", 1)[0],
            "Level": 4,
            "location": "US",
            "properties": {
                "id": self.uuid(),
                "createdDateTime": iso_fraction(time_ms, 7, 0, "+00:00"),
                "userDisplayName": upn.split("@", 1)[0],
                "userPrincipalName": upn,
                "userId": self.object_id(upn),
                "appId": self.object_id(app),
                "appDisplayName": app,
                "ipAddress": ip,
                "clientAppUsed": "Browser",
                "userAgent": user_agent,
                "status": {"errorCode": error_code, "failureReason": failure.get(error_code, "Other.")},
                "isInteractive": True,
            },
        }
        return self.add(record, time_ms)
