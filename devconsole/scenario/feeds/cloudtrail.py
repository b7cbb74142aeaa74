"""AWS CloudTrail records (log source type 347)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from ..facts import (
    ADMIN_POLICY_ARN,
    AWS_ACCOUNT,
    HOUR_MS,
)
from ..formats import aws_create_date, iso_seconds
from .base import BuilderBase


class CloudTrailRecords(BuilderBase):
    """IAM identities and CloudTrail management events."""

    def iam_user(self, name: str, account: str = AWS_ACCOUNT) -> dict:
        arn = f"arn:aws:iam::{account}:user/{name}"
        return {
            "type": "IAMUser",
            "principalId": self.aws_principal(arn, "AIDA"),
            "arn": arn,
            "accountId": account,
            "accessKeyId": self.upper_id("AKIA"),
            "userName": name,
        }

    def assumed_role(
        self,
        role: str,
        session: str,
        *,
        mfa: bool = False,
        invoked_by: str | None = None,
        account: str = AWS_ACCOUNT,
    ) -> dict:
        role_arn = f"arn:aws:iam::{account}:role/{role}"
        role_id = self.aws_principal(role_arn, "AROA")
        identity = {
            "type": "AssumedRole",
            "principalId": f"{role_id}:{session}",
            "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{session}",
            "accountId": account,
            "accessKeyId": self.upper_id("ASIA"),
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": role_id,
                    "arn": role_arn,
                    "accountId": account,
                    "userName": role,
                },
                "attributes": {
                    "creationDate": iso_seconds(self.now_ms - 20 * HOUR_MS),
                    "mfaAuthenticated": "true" if mfa else "false",
                },
            },
        }
        if invoked_by:
            identity["invokedBy"] = invoked_by
        return identity

    def cloudtrail(
        self,
        time_ms: int,
        name: str,
        identity: dict,
        ip: str,
        user_agent: str,
        *,
        source: str = "iam.amazonaws.com",
        request: dict | None = None,
        response: dict | None = None,
        error: tuple[str, str] | None = None,
        read_only: bool = False,
        region: str = "us-east-1",
        account: str = AWS_ACCOUNT,
    ) -> dict:
        record: dict[str, Any] = {
            "eventVersion": "1.10",
            "userIdentity": identity,
            "eventTime": iso_seconds(time_ms),
            "eventSource": source,
            "eventName": name,
            "awsRegion": region,
            "sourceIPAddress": ip,
            "userAgent": user_agent,
            "requestParameters": request,
            "responseElements": None if error else response,
            "requestID": self.uuid(),
            "eventID": self.uuid(),
            "readOnly": read_only,
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": account,
            "eventCategory": "Management",
            "tlsDetails": {
                "tlsVersion": "TLSv1.3",
                "cipherSuite": "TLS_AES_128_GCM_SHA256",
                "clientProvidedHostHeader": source,
            },
        }
        if error:
            record["errorCode"], record["errorMessage"] = error
        return self.add(record, time_ms)

    def create_user(self, time_ms: int, identity: dict, ip: str, ua: str, user_name: str, **kw: Any) -> dict:
        arn = f"arn:aws:iam::{AWS_ACCOUNT}:user/{user_name}"
        response = {
            "user": {
                "path": "/",
                "userName": user_name,
                "userId": self.aws_principal(arn, "AIDA"),
                "arn": arn,
                "createDate": aws_create_date(time_ms),
            }
        }
        return self.cloudtrail(
            time_ms,
            "CreateUser",
            identity,
            ip,
            ua,
            request={"userName": user_name, "path": "/"},
            response=response,
            **kw,
        )

    def create_access_key(self, time_ms: int, identity: dict, ip: str, ua: str, user_name: str) -> dict:
        response = {
            "accessKey": {
                "accessKeyId": self.upper_id("AKIA"),
                "status": "Active",
                "userName": user_name,
                "createDate": aws_create_date(time_ms),
            }
        }
        return self.cloudtrail(
            time_ms, "CreateAccessKey", identity, ip, ua, request={"userName": user_name}, response=response
        )

    def create_login_profile(self, time_ms: int, identity: dict, ip: str, ua: str, user_name: str) -> dict:
        response = {
            "loginProfile": {
                "userName": user_name,
                "createDate": aws_create_date(time_ms),
                "passwordResetRequired": False,
            }
        }
        return self.cloudtrail(
            time_ms,
            "CreateLoginProfile",
            identity,
            ip,
            ua,
            request={"userName": user_name, "passwordResetRequired": False},
            response=response,
        )

    def attach_user_policy(self, time_ms: int, identity: dict, ip: str, ua: str, user_name: str) -> dict:
        return self.cloudtrail(
            time_ms,
            "AttachUserPolicy",
            identity,
            ip,
            ua,
            request={"userName": user_name, "policyArn": ADMIN_POLICY_ARN},
        )

    def create_role(
        self, time_ms: int, identity: dict, ip: str, ua: str, role_name: str, trusted_service: str
    ) -> dict:
        document = json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": trusted_service}, "Action": "sts:AssumeRole"}
                ],
            }
        )
        arn = f"arn:aws:iam::{AWS_ACCOUNT}:role/{role_name}"
        response = {
            "role": {
                "path": "/",
                "roleName": role_name,
                "roleId": self.aws_principal(arn, "AROA"),
                "arn": arn,
                "createDate": aws_create_date(time_ms),
                "assumeRolePolicyDocument": quote(document),
            }
        }
        return self.cloudtrail(
            time_ms,
            "CreateRole",
            identity,
            ip,
            ua,
            request={"roleName": role_name, "path": "/", "assumeRolePolicyDocument": quote(document)},
            response=response,
        )
