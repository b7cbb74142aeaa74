"""The QID records the dev console's DSMs ship: every event name their maps know, per log source type.

A QRadar console holds a QID record for each event its DSMs map, whether or not such an event ever
arrived (``GET /api/data_classification/qid_records``); names no map knows get a record on first sight
(`DsmMapper.qid_for`). `declare_catalogue` writes the records of this catalogue that the store lacks;
the server does it at start, so a console that has never seen, say, ``CreateLoginProfile`` still answers
for it. The names follow each source's own spelling (CloudTrail ``eventName``, Entra ``operationName``
with its en dash, Office 365 ``Operation`` with its trailing period, GCP ``methodName``); which names
QRadar's real DSMs give their QIDs is UNCONFIRMED (README of this package).
"""

from __future__ import annotations

from ..store import EventStore
from . import azure_platform, cloudtrail, gcp, workspace
from .common import (
    MICROSOFT_OPERATIONS,
    TYPE_AZURE_AD,
    TYPE_AZURE_PLATFORM,
    TYPE_CLOUDTRAIL,
    TYPE_GCP,
    TYPE_GOOGLE_WORKSPACE,
    TYPE_OFFICE_365,
    ActionClass,
)

# Microsoft spellings where capitalising the first letter of the normalized name is not the real one.
_MICROSOFT_SPELLINGS = {
    "update application - certificates and secrets management": (
        "Update application \u2013 Certificates and secrets management"
    ),
}
# Office 365 operations of other workloads (no Entra twin): their own spelling, no trailing period.
_OFFICE_365_OPERATIONS = {
    "userloggedin": "UserLoggedIn",
    "userloginfailed": "UserLoginFailed",
    "fileaccessed": "FileAccessed",
    "filedownloaded": "FileDownloaded",
    "filepreviewed": "FilePreviewed",
    "mailitemsaccessed": "MailItemsAccessed",
    "searchqueryperformed": "SearchQueryPerformed",
}
# Entra operations with no Office 365 twin (sign-ins are not in the Unified Audit Log's AAD workload).
_ENTRA_ONLY = {"sign-in activity"}
# GCP methods whose methodName is not ``google.iam.admin.v1.<verb>``: the project's (Resource Manager's)
# SetIamPolicy, and the service-account-level one of the IAM admin API.
_GCP_METHODS = {
    "SetIamPolicy": (
        "SetIamPolicy",
        "google.iam.admin.v1.SetIAMPolicy",
        "google.cloud.resourcemanager.v3.Projects.SetIamPolicy",
        "google.cloud.resourcemanager.v3.Folders.SetIamPolicy",
        "google.cloud.resourcemanager.v3.Organizations.SetIamPolicy",
        "google.iam.v1.IAMPolicy.SetIamPolicy",
    )
}
# Azure Activity operations (log source type 413) the detection asks for: a managed identity's federated
# identity credential.
_AZURE_PLATFORM_OPERATIONS = (
    "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write",
)


def _microsoft_spelling(key: str) -> str:
    return _MICROSOFT_SPELLINGS.get(key) or key[:1].upper() + key[1:]


def catalogue() -> dict[int, dict[str, ActionClass]]:
    """QID name → action class, per log source type."""
    out: dict[int, dict[str, ActionClass]] = {
        TYPE_CLOUDTRAIL: dict(cloudtrail.EVENT_ACTIONS),
        TYPE_AZURE_AD: {},
        TYPE_OFFICE_365: {},
        TYPE_GCP: {},
        TYPE_GOOGLE_WORKSPACE: dict(workspace.EVENT_ACTIONS),
        TYPE_AZURE_PLATFORM: {op: azure_platform.action_for(op) for op in _AZURE_PLATFORM_OPERATIONS},
    }
    for key, action in MICROSOFT_OPERATIONS.items():
        if key in _OFFICE_365_OPERATIONS:
            out[TYPE_OFFICE_365][_OFFICE_365_OPERATIONS[key]] = action
            continue
        name = _microsoft_spelling(key)
        out[TYPE_AZURE_AD][name] = action
        if key not in _ENTRA_ONLY:
            out[TYPE_OFFICE_365][name + "."] = action
    for verb, action in gcp.VERB_ACTIONS.items():
        for method in _GCP_METHODS.get(verb, (f"google.iam.admin.v1.{verb}",)):
            out[TYPE_GCP][method] = action
    return out


def declare_catalogue(store: EventStore) -> int:
    """Write the catalogue's QID records the store lacks (existing QIDs keep their numbers); returns how
    many were added."""
    with store.connect(readonly=True) as conn:
        known = {(t, n) for t, n in conn.execute("SELECT log_source_type_id, name FROM qid_records")}
        types = {row[0] for row in conn.execute("SELECT id FROM log_source_types")}
    added = 0
    for type_id, names in catalogue().items():
        if type_id not in types:
            continue
        for name, action in names.items():
            if (type_id, name) in known:
                continue
            store.ensure_category(action.category_id, action.category_name, action.high_level_id)
            store.ensure_qid(
                type_id,
                name,
                action.category_id,
                description=f"{name} (DSM catalogue)",
                severity=action.severity,
            )
            added += 1
    return added
