"""Preset toggles, one per false-positive family (detection-and-tuning.md §3.4).

A preset is off by default. Turning it on takes the organisation's own immutable identities (role ARNs,
service principal object IDs, sync account object IDs) and creates one ordinary allowlist entry per
identity (keyed on ``actor_id`` exactly, narrowed by the preset's platforms and account kinds), so the
entries go through the same approval, expiry, audit and reference-set sync as custom ones.

Candidate identities are suggested from recent detections only on *immutable evidence*, and each
candidate shows it: the AWS service CloudTrail records as the caller (``invokedBy``, which AWS sets and a
client cannot), or a Microsoft first-party application recognised by its well-known application ID
(never by its display name, which any tenant's app can copy). The fingerprints (user agents, initiator
names) are spoofable: they are shown to describe the family and never suggest, let alone key, an entry —
an attacker's app named "Managed Service Identity" or a stolen role sending a Terraform user agent is not
proposed. Presets whose family leaves no immutable trace suggest nothing; the organisation enters its IDs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.tuning.entries import is_placeholder

# Microsoft first-party applications by their application IDs, the same in every tenant. Managed
# identities have no common application ID (each is its own service principal), so they are not here;
# the provisioning app (SyncFabric) is evidence of the HR / directory sync family instead.
SYNC_FABRIC_APP_ID = "00000014-0000-0000-c000-000000000000"
MICROSOFT_FIRST_PARTY_APP_IDS: Mapping[str, str] = {
    "797f4846-ba00-4fd7-ba43-dac1f8f63013": "Windows Azure Service Management API",
    "00000003-0000-0000-c000-000000000000": "Microsoft Graph",
    "00000002-0000-0000-c000-000000000000": "Windows Azure Active Directory",
    "00000002-0000-0ff1-ce00-000000000000": "Office 365 Exchange Online",
    "01fc33a7-78ba-4d2f-a4b7-768e336e890e": "MS-PIM",  # UNCONFIRMED
}


@dataclass(frozen=True)
class Preset:
    id: str
    name: str
    description: str
    platforms: tuple[str, ...]
    identity_label: str  # what to ask the organisation for
    # Fingerprints for suggestions: detection field -> globs (any match suggests the actor).
    fingerprints: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Entries created by the preset only cover these account kinds (None: every kind).
    account_kinds: tuple[str, ...] | None = None
    break_glass: bool = False
    # Which immutable attribute the identities are: the actor's ID, or (service-linked roles) the AWS
    # service CloudTrail records as the caller — set by AWS, so not spoofable by a client.
    identity_field: str = "actor_id"
    # Immutable evidence that suggests a candidate: AWS services recorded as the caller (invokedBy, which
    # CloudTrail keeps in source_ip; "*" any AWS service) and Microsoft application IDs.
    invoked_by: tuple[str, ...] = ()
    app_ids: Mapping[str, str] = field(default_factory=dict)

    def identity_of(self, detection: Mapping[str, Any]) -> str | None:
        if self.identity_field == "source_service":
            value = (detection.get("source_ip") or "").strip().lower()
            return value if value.endswith(".amazonaws.com") else None
        return detection.get("actor_id") or None

    def evidence(self, detection: Mapping[str, Any]) -> list[str]:
        """The immutable evidence that ``detection`` belongs to this preset's family (empty: none)."""
        if detection.get("cloud_platform") not in self.platforms:
            return []
        if self.account_kinds is not None and detection.get("account_kind") not in self.account_kinds:
            return []
        found = []
        caller = (detection.get("source_ip") or "").strip().lower()
        if caller.endswith(".amazonaws.com") and ("*" in self.invoked_by or caller in self.invoked_by):
            found.append(f"invokedBy {caller} (recorded by AWS CloudTrail; a client cannot set it)")
        if self.app_ids:
            app_id = actor_app_id(detection)
            if app_id in self.app_ids:
                found.append(
                    f"application ID {app_id} ({self.app_ids[app_id]}, a Microsoft first-party application)"
                )
        return found

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "platforms": list(self.platforms),
            "identity_label": self.identity_label,
            "fingerprints": {k: list(v) for k, v in self.fingerprints.items()},
            "evidence": {
                "invoked_by": list(self.invoked_by),
                "app_ids": dict(self.app_ids),
            },
            "account_kinds": list(self.account_kinds) if self.account_kinds else None,
            "break_glass": self.break_glass,
            "identity_field": self.identity_field,
        }


def _dig(value: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def actor_app_id(detection: Mapping[str, Any]) -> str | None:
    """The application ID of the app that acted (``initiatedBy.app.appId`` of an Entra audit payload,
    written by Microsoft), lower-cased; None when a user acted or the ID is absent. The ``AppId``
    additional detail is not used: for a user it names the client the user ran, not who acted."""
    payload = detection.get("payload")
    if not isinstance(payload, str) or "{" not in payload:
        return None
    try:
        record = json.loads(payload[payload.index("{") :])
    except ValueError:
        return None
    body = _dig(record, "properties") if isinstance(_dig(record, "properties"), Mapping) else record
    if _dig(body, "initiatedBy", "user"):
        return None
    app_id = _dig(body, "initiatedBy", "app", "appId")
    return app_id.strip().lower() if isinstance(app_id, str) and app_id.strip() else None


# Display names of the family (shown in the description; never evidence).
_MICROSOFT_FIRST_PARTY = (
    "Managed Service Identity",
    "Microsoft Azure AD Internal - Jit Provisioning",
    "AAD App Management",
    "Windows Azure Service Management API",
    "Power Virtual Agents Service",
    "MS-PIM",
)

PRESETS: tuple[Preset, ...] = (
    Preset(
        id="iac",
        name="Infrastructure as code (Terraform, OpenTofu, Pulumi, CloudFormation, Service Catalog)",
        description="Pipelines that create IAM users, roles and service accounts from code. Allowlist the "
        "pipeline's role ARN / service account, not its user agent.",
        platforms=("AWS", "GCP", "Azure AD"),
        identity_label="Pipeline role ARNs (arn:aws:iam::<account>:role/<name>), GCP service account emails, "
        "or Entra service principal object IDs",
        fingerprints={
            "user_agent": (
                "*Terraform/*",
                "*terraform-provider-*",
                "*OpenTofu/*",
                "*pulumi*",
                "*cloudformation.amazonaws.com*",
                "*servicecatalog.amazonaws.com*",
            ),
            "source_ip": ("cloudformation.amazonaws.com", "servicecatalog.amazonaws.com"),
        },
        invoked_by=("cloudformation.amazonaws.com", "servicecatalog.amazonaws.com"),
    ),
    Preset(
        id="config_management",
        name="Configuration management (Ansible, Puppet)",
        description="Ansible amazon.aws / azure.azcollection and Puppet runs that provision accounts.",
        platforms=("AWS", "GCP", "Azure AD"),
        identity_label="Automation role ARNs, service account emails or service principal object IDs",
        fingerprints={
            # Ansible appends "Ansible/<core version>" to the botocore UA; Puppet's UA is UNCONFIRMED.
            "user_agent": ("*Ansible/*", "*ansible*", "*puppet*", "*aws-sdk-ruby*"),
        },
    ),
    Preset(
        id="aws_service_linked_roles",
        name="AWS service-linked roles created by AWS services",
        description="CreateServiceLinkedRole called by an AWS service on your behalf (invokedBy).",
        platforms=("AWS",),
        identity_label="The AWS services (service principals such as autoscaling.amazonaws.com) allowed "
        "to create their own service-linked roles",
        fingerprints={
            "user_agent": ("*.amazonaws.com", "AWS Internal"),
            "source_ip": ("*.amazonaws.com",),
            "account_kind": ("service_linked_role",),
        },
        account_kinds=("service_linked_role",),
        identity_field="source_service",
        invoked_by=("*",),
    ),
    Preset(
        id="hr_directory_sync",
        name="HR provisioning and directory sync (Entra Connect, Cloud Sync, Workday, SuccessFactors)",
        description="Directory synchronisation accounts and inbound HR provisioning that create users for "
        "new hires. Allowlist the sync account's object ID or the provisioning app's service "
        "principal ID, never its UPN or display name.",
        platforms=("Azure AD", "Office 365"),
        identity_label="Sync account object IDs / provisioning service principal IDs (GUIDs)",
        fingerprints={
            # Entra Connect's Sync_<SERVER>_<hex>@ UPN and Cloud Sync's account name are UNCONFIRMED.
            "actor": (
                "Sync_*",
                "On-Premises Directory Synchronization Service Account",
                "ADToAADSyncServiceAccount*",
                "Microsoft Azure AD Connect*",
                "*Workday*",
                "*SuccessFactors*",
                "Microsoft.Azure.SyncFabric",
                "*Provisioning*",
            ),
            "user_agent": ("*SyncFabric*", "*Workday*", "*SuccessFactors*"),
        },
        account_kinds=("user",),
        app_ids={SYNC_FABRIC_APP_ID: "Microsoft.Azure.SyncFabric"},
    ),
    Preset(
        id="microsoft_first_party",
        name="Microsoft first-party identities (Managed Service Identity, JIT provisioning, …)",
        description="Microsoft's own service principals acting in your tenant: "
        + ", ".join(_MICROSOFT_FIRST_PARTY)
        + ".",
        platforms=("Azure AD", "Office 365"),
        identity_label="The service principal object IDs of these first-party apps in your tenant",
        fingerprints={"actor": _MICROSOFT_FIRST_PARTY},
        app_ids=MICROSOFT_FIRST_PARTY_APP_IDS,
    ),
    Preset(
        id="break_glass",
        name="Break-glass procedure",
        description="Emergency access accounts used during an incident. Entries expire within 24 hours and "
        "need a ticket reference.",
        platforms=("AWS", "Azure AD", "Office 365", "GCP", "Google Workspace"),
        identity_label="Break-glass account object IDs / role ARNs",
        fingerprints={"actor": ("*break*glass*", "*emergency*"), "actor_id": ("*break*glass*",)},
        break_glass=True,
    ),
    Preset(
        id="workspace_provisioning",
        name="Google Workspace provisioning (HR onboarding admins, Google Cloud Directory Sync)",
        description="Admin accounts and directory sync that create Google Workspace users for new hires. "
        "Allowlist the provisioning admin's e-mail or profile ID; admin grants to the new users stay visible.",
        platforms=("Google Workspace",),
        identity_label="Provisioning admin e-mails or profile IDs",
        # Google Cloud Directory Sync runs as an admin account an organisation names itself: names only.
        fingerprints={"actor": ("*gcds*", "*directory*sync*", "*onboarding*", "*people-ops*")},
        account_kinds=("workspace_user",),
    ),
)

PRESETS_BY_ID: dict[str, Preset] = {p.id: p for p in PRESETS}


def suggest_candidates(
    preset: Preset, detections: Iterable[Mapping[str, Any]], limit: int = 20
) -> list[dict[str, Any]]:
    """Actor identities seen in ``detections`` with immutable evidence of the preset's family, most
    frequent first; each lists its ``evidence``. Spoofable fingerprints never suggest anyone."""
    found: dict[str, dict[str, Any]] = {}
    for detection in detections:
        identity = preset.identity_of(detection)
        if not identity or is_placeholder(identity):
            continue
        evidence = preset.evidence(detection)
        if not evidence:
            continue
        candidate = found.setdefault(
            identity,
            {
                "identity": identity,
                "actor_id": detection.get("actor_id"),
                "actor": detection.get("actor"),
                "platform": detection.get("cloud_platform"),
                "detections": 0,
                "evidence": [],
                "example_user_agent": detection.get("user_agent"),
                "last_seen": 0,
            },
        )
        candidate["detections"] += 1
        candidate["last_seen"] = max(candidate["last_seen"], int(detection.get("event_time") or 0))
        for item in evidence:
            if item not in candidate["evidence"]:
                candidate["evidence"].append(item)
    ranked = sorted(found.values(), key=lambda c: (-c["detections"], c["identity"]))
    return ranked[:limit]


def entry_payloads(
    preset: Preset, identities: list[str], *, justification: str, expires_at: Any, ticket: str | None = None
) -> list[dict[str, Any]]:
    """The entry bodies turning ``preset`` on creates: one exact-identity entry per identity."""
    payloads = []
    for identity in identities:
        payload: dict[str, Any] = {
            "name": f"{preset.name.split(' (')[0]}: {identity}"[:200],
            "platforms": list(preset.platforms),
            preset.identity_field: identity,
            "justification": justification,
            "expires_at": expires_at,
            "break_glass": preset.break_glass,
        }
        if ticket:
            payload["ticket"] = ticket
        if preset.account_kinds and len(preset.account_kinds) == 1:
            payload["target_type"] = preset.account_kinds[0]
        payloads.append(payload)
    return payloads
