"""Preset toggles, one per false-positive family (detection-and-tuning.md §3.4).

A preset is off by default. Turning it on takes the organisation's own immutable identities (role ARNs,
service principal object IDs, sync account object IDs) and creates one ordinary allowlist entry per
identity (keyed on ``actor_id`` exactly, narrowed by the preset's platforms and account kinds), so the
entries go through the same approval, expiry, audit and reference-set sync as custom ones.

The fingerprints below (user agents, initiator names, invoking services) are *spoofable* and are used only
to suggest candidate identities from recent detections — never as an allowlist key. Strings marked
UNCONFIRMED in the reference are guesses; they only affect suggestions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.tuning.matcher import Glob


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

    def identity_of(self, detection: Mapping[str, Any]) -> str | None:
        if self.identity_field == "source_service":
            value = (detection.get("source_ip") or "").strip().lower()
            return value if value.endswith(".amazonaws.com") else None
        return detection.get("actor_id") or None

    def fingerprint_hits(self, detection: Mapping[str, Any]) -> list[str]:
        """Which fingerprints a detection shows ("user_agent: *Terraform/*"), for explaining a suggestion."""
        if detection.get("cloud_platform") not in self.platforms:
            return []
        if self.account_kinds is not None and detection.get("account_kind") not in self.account_kinds:
            return []
        hits = []
        for field_name, globs in self.fingerprints.items():
            for pattern in globs:
                if _GLOBS.setdefault(pattern, Glob(pattern)).matches(detection.get(field_name)):
                    hits.append(f"{field_name}: {pattern}")
        return hits

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "platforms": list(self.platforms),
            "identity_label": self.identity_label,
            "fingerprints": {k: list(v) for k, v in self.fingerprints.items()},
            "account_kinds": list(self.account_kinds) if self.account_kinds else None,
            "break_glass": self.break_glass,
            "identity_field": self.identity_field,
        }


_GLOBS: dict[str, Glob] = {}

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
    ),
    Preset(
        id="break_glass",
        name="Break-glass procedure",
        description="Emergency access accounts used during an incident. Entries expire within 24 hours and "
        "need a ticket reference.",
        platforms=("AWS", "Azure AD", "Office 365", "GCP"),
        identity_label="Break-glass account object IDs / role ARNs",
        fingerprints={"actor": ("*break*glass*", "*emergency*"), "actor_id": ("*break*glass*",)},
        break_glass=True,
    ),
)

PRESETS_BY_ID: dict[str, Preset] = {p.id: p for p in PRESETS}


def suggest_candidates(
    preset: Preset, detections: Iterable[Mapping[str, Any]], limit: int = 20
) -> list[dict[str, Any]]:
    """Actor identities seen in ``detections`` that show the preset's fingerprints, most frequent first."""
    found: dict[str, dict[str, Any]] = {}
    for detection in detections:
        identity = preset.identity_of(detection)
        if not identity:
            continue
        hits = preset.fingerprint_hits(detection)
        if not hits:
            continue
        candidate = found.setdefault(
            identity,
            {
                "identity": identity,
                "actor_id": detection.get("actor_id"),
                "actor": detection.get("actor"),
                "platform": detection.get("cloud_platform"),
                "detections": 0,
                "fingerprints": [],
                "example_user_agent": detection.get("user_agent"),
                "last_seen": 0,
            },
        )
        candidate["detections"] += 1
        candidate["last_seen"] = max(candidate["last_seen"], int(detection.get("event_time") or 0))
        for hit in hits:
            if hit not in candidate["fingerprints"]:
                candidate["fingerprints"].append(hit)
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
