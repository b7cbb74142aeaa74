"""Google Cloud audit log records (log source type 449)."""

from __future__ import annotations

from typing import Any

from ..facts import (
    GCP_PROJECT,
)
from ..formats import iso_fraction
from .base import BuilderBase


class GcpAuditRecords(BuilderBase):
    """Google Cloud audit log entries."""

    def gcp(
        self,
        time_ms: int,
        method: str,
        principal: str,
        ip: str,
        user_agent: str,
        *,
        service: str = "iam.googleapis.com",
        resource_name: str = f"projects/{GCP_PROJECT}",
        request: dict | None = None,
        response: dict | None = None,
        permission: str = "",
        denied: bool = False,
        log: str = "activity",
        resource_type: str = "service_account",
        service_data: dict | None = None,
    ) -> dict:
        extra = self.rng.randrange(1_000_000)
        proto: dict[str, Any] = {
            "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
            "status": {"code": 7, "message": f"Permission '{permission}' denied on resource"}
            if denied
            else {},
            "authenticationInfo": {"principalEmail": principal},
            "requestMetadata": {
                "callerIp": ip,
                "callerSuppliedUserAgent": user_agent,
                "requestAttributes": {"time": iso_fraction(time_ms, 9, extra), "auth": {}},
                "destinationAttributes": {},
            },
            "serviceName": service,
            "methodName": method,
            "authorizationInfo": [
                {
                    "resource": resource_name,
                    "permission": permission,
                    "granted": not denied,
                    "resourceAttributes": {},
                }
            ],
            "resourceName": resource_name,
        }
        if request is not None:
            proto["request"] = request
        if service_data is not None:
            proto["serviceData"] = service_data
        if response is not None and not denied:
            proto["response"] = response
        record = {
            "protoPayload": proto,
            "insertId": self.hexstr(12),
            "resource": {"type": resource_type, "labels": {"project_id": GCP_PROJECT}},
            "timestamp": iso_fraction(time_ms, 9, extra),
            "severity": "ERROR" if denied else "NOTICE",
            "logName": f"projects/{GCP_PROJECT}/logs/cloudaudit.googleapis.com%2F{log}",
            "receiveTimestamp": iso_fraction(time_ms + 180, 9, extra),
        }
        return self.add(record, time_ms)
