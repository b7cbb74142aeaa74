"""Which Entra ID grants make an identity an administrator: directory roles by role template ID, and
dangerous Microsoft Graph application permissions by app role ID or value.

Role template IDs are the same in every tenant (Microsoft's "Microsoft Entra built-in roles" list), while a
role's display name can differ (localised portals, a custom role named like a built-in one). So a grant is
judged by its template ID; the display name is only a fallback when an event carries no template ID, and
then it must equal a built-in privileged role's name (never a substring: "Badminton Club Admins" is not
an administrator role).

IDs marked UNCONFIRMED are from memory of Microsoft's list and not checked against it here; the values
(permission names, role names) match regardless.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Built-in roles that can take over the tenant or its identities (Microsoft labels them PRIVILEGED).
PRIVILEGED_ROLE_TEMPLATES: dict[str, str] = {
    "62e90394-69f5-4237-9190-012177145e10": "Global Administrator",
    "e8611ab8-c189-46e8-94e1-60213ab1f814": "Privileged Role Administrator",
    "7be44c8a-adaf-4e2a-84d6-ab2649e08a13": "Privileged Authentication Administrator",
    "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3": "Application Administrator",
    "158c047a-c907-4556-b7ef-446551a6b5f7": "Cloud Application Administrator",
    "fe930be7-5e62-47db-91af-98c3a49a38b1": "User Administrator",
    "8ac3fc64-6eca-42ea-9e69-59f4c7b60eb2": "Hybrid Identity Administrator",
    "194ae4cb-b126-40b2-bd5b-6091b380977d": "Security Administrator",
    "29232cdf-9323-42fd-ade2-1d097af3e4de": "Exchange Administrator",
    "f28a1f50-f6e7-4571-818b-6a12f2af6b6c": "SharePoint Administrator",
    "c4e39bd9-1100-46d3-8c65-fb160da0071f": "Authentication Administrator",
    "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9": "Conditional Access Administrator",
    "3a2c62db-5318-420d-8d74-23affee5d9d5": "Intune Administrator",
    "729827e3-9c14-49f7-bb1b-9608f156bbb8": "Helpdesk Administrator",
    "966707d0-3269-4727-9be2-8c3a10f19b9d": "Password Administrator",
    "9360feb5-f418-4baa-8175-e2a00bac4301": "Directory Writers",
    "d29b2b05-8046-44ba-8758-1e26182fcf32": "Directory Synchronization Accounts",
    # UNCONFIRMED IDs:
    "8329153b-31d0-4727-b945-745eb3bc5f31": "Domain Name Administrator",
    "be2f45a1-457d-42af-a067-6ec1fa63bc45": "External Identity Provider Administrator",
    "e00e864a-17c5-4a4b-9c06-f5b95a8d5bd8": "Partner Tier2 Support",
}

# Built-in roles that are known and not privileged (documentation; anything not privileged is not admin).
NON_PRIVILEGED_ROLE_TEMPLATES: dict[str, str] = {
    "f2ef992c-3afb-46b9-b7cf-a126ee74c451": "Global Reader",
    "790c1fb9-7f7d-4f88-86a1-ef1f95c05c1b": "Message Center Reader",
    "4a5d8f65-41da-4de4-8968-e035b65339cf": "Reports Reader",
    "b0f54661-2d74-4c50-afa3-1ec803f12efe": "Billing Administrator",
    "5f2222b1-57c3-48ba-8ad5-d4759f1fde6f": "Security Operator",
}

_PRIVILEGED_ROLE_NAMES = frozenset(n.lower() for n in PRIVILEGED_ROLE_TEMPLATES.values()) | {
    "company administrator"  # Global Administrator's name in MSOnline / older audit records
}

# Microsoft Graph application permissions (app roles) that let an application make itself, or anyone,
# an administrator: granted to a service principal they are an admin grant.
DANGEROUS_APP_PERMISSIONS: dict[str, str] = {
    "9e3f62cf-ca93-4989-b6ce-bf83c28f9fe8": "RoleManagement.ReadWrite.Directory",
    "06b708a9-e830-4db3-a914-8e69da51d44f": "AppRoleAssignment.ReadWrite.All",
    "1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9": "Application.ReadWrite.All",
    "19dbc75e-c2e2-444c-a770-ec69d8559fc7": "Directory.ReadWrite.All",
    # UNCONFIRMED IDs:
    "18a4783c-866b-4cc7-a460-3d5e5662c884": "Application.ReadWrite.OwnedBy",
    "741f803b-c850-494e-b5df-cde7c675a1ca": "User.ReadWrite.All",
    "7e05723c-0bb0-42da-be95-ae9f08a6e53c": "Domain.ReadWrite.All",
    "01c0a623-fc9b-48e9-b794-0756f8e8f067": "Policy.ReadWrite.ConditionalAccess",
    "50483e42-d915-4231-9639-7fdb7fd190e5": "UserAuthenticationMethod.ReadWrite.All",
}
_DANGEROUS_VALUES = frozenset(v.lower() for v in DANGEROUS_APP_PERMISSIONS.values())

_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _clean(value: str | None) -> str:
    # Audit values arrive JSON-quoted ('"Global Administrator"') or as one-element arrays ('["…"]').
    return (value or "").strip().strip('[]"\r\n ').strip().lower()


def role_is_privileged(template_id: str | None, display_name: str | None) -> bool:
    """A directory role grant is an admin grant: by template ID when the event has one, else by the exact
    display name of a privileged built-in role."""
    found = _GUID.search(_clean(template_id))
    if found:
        return found.group(0) in PRIVILEGED_ROLE_TEMPLATES
    return _clean(display_name) in _PRIVILEGED_ROLE_NAMES


def role_name_for(template_id: str | None) -> str | None:
    found = _GUID.search(_clean(template_id))
    if not found:
        return None
    return PRIVILEGED_ROLE_TEMPLATES.get(found.group(0)) or NON_PRIVILEGED_ROLE_TEMPLATES.get(found.group(0))


def permission_is_dangerous(values: Iterable[str | None]) -> bool:
    """Whether any app role ID or permission value (or a space/comma-separated scope list holding one) is a
    dangerous application permission."""
    for value in values:
        text = _clean(value)
        if not text:
            continue
        if any(g in DANGEROUS_APP_PERMISSIONS for g in _GUID.findall(text)):
            return True
        if any(word in _DANGEROUS_VALUES for word in re.split(r"[\s,;:\"\[\]]+", text)):
            return True
    return False
