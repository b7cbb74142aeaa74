"""Chains and the Azure AD / Office 365 twin merge, on hand-built events."""

from __future__ import annotations

from dataclasses import replace

from app.aql.detection import AWS, AZURE_AD, GCP, OFFICE_365
from app.detection.chains import (
    AWS_USER_CREDENTIAL,
    ENTRA_APP_SP_CREDENTIAL,
    PRIVILEGE_GRANT,
    ChainEvent,
    ChainWindows,
    build_chains,
    chain_severity,
    merge_twins,
)

T0 = 1_780_000_000_000
SEC, MIN, HOUR, DAY = 1000, 60_000, 3_600_000, 86_400_000


def ev(
    key: str,
    t: int,
    platform: str,
    name: str,
    kind: str = "other",
    *,
    actor: str = "alice",
    targets: tuple[str, ...] = (),
    corr: str | None = None,
    creation: bool = True,
    admin: bool = False,
) -> ChainEvent:
    return ChainEvent(
        event_key=key,
        event_time=T0 + t,
        platform=platform,
        event_name=name,
        account_kind=kind,
        actor=actor,
        actor_id=actor,
        target_account=targets[0] if targets else None,
        target_keys=frozenset(targets),
        correlation_id=corr,
        admin_grant=admin,
        detection_id=hash(key) % 1000 if creation else None,
        is_creation=creation,
    )


def test_entra_aadinternals_chain_by_correlation_id_within_60_s() -> None:
    events = [
        ev("app", 0, AZURE_AD, "Add application", "application", actor="x", targets=("evil",), corr="c1"),
        ev("sp", 5 * SEC, AZURE_AD, "Add service principal", "service_principal", actor="y", corr="c1"),
        ev(
            "cred",
            20 * SEC,
            AZURE_AD,
            "Add service principal credentials",
            "credential",
            actor="z",
            corr="c1",
        ),
    ]
    chains = build_chains(events, [])
    assert len(chains) == 1
    assert chains[0].kind == ENTRA_APP_SP_CREDENTIAL
    assert [e.event_key for e in chains[0].events] == ["app", "sp", "cred"]


def test_entra_chain_by_same_initiator_and_not_beyond_60_s() -> None:
    ok = [
        ev("app", 0, AZURE_AD, "Add application", "application"),
        ev("sp", 10 * SEC, AZURE_AD, "Add service principal", "service_principal"),
        ev("cred", 59 * SEC, AZURE_AD, "Add service principal credentials", "credential"),
    ]
    assert [c.kind for c in build_chains(ok, [])] == [ENTRA_APP_SP_CREDENTIAL]
    late = [*ok[:2], ev("cred", 61 * SEC, AZURE_AD, "Add service principal credentials", "credential")]
    assert build_chains(late, []) == []
    other_actor = [
        *ok[:2],
        ev("cred", 30 * SEC, AZURE_AD, "Add service principal credentials", "credential", actor="bob"),
    ]
    assert build_chains(other_actor, []) == []


def test_aws_create_user_then_access_key_and_login_profile() -> None:
    user = ev("u", 0, AWS, "CreateUser", "user", targets=("svc-x",))
    key = ev("k", 30 * SEC, AWS, "CreateAccessKey", targets=("svc-x",), creation=False)
    login = ev("l", 9 * MIN, AWS, "CreateLoginProfile", targets=("svc-x",), creation=False)
    eleven = ev("k2", 11 * MIN, AWS, "CreateAccessKey", targets=("svc-x",), creation=False)
    late = ev("k4", 61 * MIN, AWS, "CreateAccessKey", targets=("svc-x",), creation=False)
    other = ev("k3", MIN, AWS, "CreateAccessKey", targets=("someone-else",), creation=False)
    chains = build_chains([user], [key, login, eleven, late, other])
    assert len(chains) == 1
    assert chains[0].kind == AWS_USER_CREDENTIAL
    assert [e.event_key for e in chains[0].events] == ["u", "k", "l", "k2"]


def test_aws_credential_window_is_a_parameter() -> None:
    user = ev("u", 0, AWS, "CreateUser", "user", targets=("svc-x",))
    eleven = ev("k", 11 * MIN, AWS, "CreateAccessKey", targets=("svc-x",), creation=False)
    assert build_chains([user], [eleven], ChainWindows(aws_credential_ms=10 * MIN)) == []
    assert [c.kind for c in build_chains([user], [eleven], ChainWindows(aws_credential_ms=12 * MIN))] == [
        AWS_USER_CREDENTIAL
    ]


def test_aws_policy_grant_must_be_admin() -> None:
    user = ev("u", 0, AWS, "CreateUser", "user", targets=("svc-x",))
    readonly = ev("p1", HOUR, AWS, "AttachUserPolicy", targets=("svc-x",), creation=False)
    assert build_chains([user], [readonly]) == []
    admin = ev("p2", 23 * HOUR, AWS, "AttachUserPolicy", targets=("svc-x",), creation=False, admin=True)
    chains = build_chains([user], [readonly, admin])
    assert chains[0].kind == PRIVILEGE_GRANT and chains[0].admin
    too_late = ev("p3", 8 * DAY, AWS, "AttachUserPolicy", targets=("svc-x",), creation=False, admin=True)
    assert build_chains([user], [too_late]) == []


def test_escalation_memory_keeps_admin_grants_for_days_and_other_grants_for_the_privilege_window() -> None:
    user = ev("u", 0, AZURE_AD, "Add user", "user", targets=("new@contoso.com",))
    reader = ev("r", 25 * HOUR, AZURE_AD, "Add member to role", targets=("new@contoso.com",), creation=False)
    assert build_chains([user], [reader]) == []  # not an administrator role: the 24 h window
    admin = ev(
        "a", 3 * DAY, AZURE_AD, "Add member to role", targets=("new@contoso.com",), creation=False, admin=True
    )
    chains = build_chains([user], [reader, admin])
    assert [e.event_key for e in chains[0].events] == ["u", "a"] and chains[0].admin
    assert build_chains([user], [admin], ChainWindows(escalation_ms=2 * DAY)) == []
    assert build_chains([user], [admin], ChainWindows(escalation_ms=0, privilege_ms=4 * DAY)) != []


def test_overlapping_chains_merge_into_one_with_all_kinds() -> None:
    user = ev("u", 0, AWS, "CreateUser", "user", targets=("svc-x",))
    key = ev("k", 30 * SEC, AWS, "CreateAccessKey", targets=("svc-x",), creation=False)
    grant = ev("g", 2 * HOUR, AWS, "AttachUserPolicy", targets=("svc-x",), creation=False, admin=True)
    chains = build_chains([user], [grant, key])
    assert len(chains) == 1
    assert chains[0].kind == AWS_USER_CREDENTIAL
    assert chains[0].kinds == [AWS_USER_CREDENTIAL, PRIVILEGE_GRANT]
    assert [e.event_key for e in chains[0].events] == ["u", "k", "g"]
    severity, confidence = chain_severity(7, chains[0])
    assert severity == 10 and confidence == "high"


def test_entra_user_then_role_grant_and_o365_grant_twin_counted_once() -> None:
    user = ev("u", 0, AZURE_AD, "Add user", "user", targets=("new@contoso.com", "oid-1"))
    grant = ev(
        "g", HOUR, AZURE_AD, "Add member to role", targets=("new@contoso.com",), creation=False, corr="c9"
    )
    grant_twin = ev(
        "g365",
        HOUR + 2 * SEC,
        OFFICE_365,
        "Add member to role.",
        targets=("new@contoso.com",),
        creation=False,
        corr="c9",
    )
    chains = build_chains([user], [grant, grant_twin])
    assert [e.event_key for e in chains[0].events] == ["u", "g"]
    assert chains[0].kind == PRIVILEGE_GRANT


def test_gcp_admin_binding_after_service_account() -> None:
    sa = ev(
        "sa",
        0,
        GCP,
        "google.iam.admin.v1.CreateServiceAccount",
        "service_account",
        targets=("sa@p.iam.gserviceaccount.com",),
    )
    grant = ev(
        "b", MIN, GCP, "SetIamPolicy", targets=("sa@p.iam.gserviceaccount.com",), creation=False, admin=True
    )
    assert [c.kind for c in build_chains([sa], [grant])] == [PRIVILEGE_GRANT]


def test_chain_key_is_stable_as_the_chain_grows() -> None:
    user = ev("u", 0, AWS, "CreateUser", "user", targets=("svc-x",))
    key = ev("k", 30 * SEC, AWS, "CreateAccessKey", targets=("svc-x",), creation=False)
    grant = ev("g", 2 * HOUR, AWS, "AttachUserPolicy", targets=("svc-x",), creation=False, admin=True)
    assert build_chains([user], [key])[0].key == build_chains([user], [key, grant])[0].key


def test_twin_merge_by_correlation_or_target() -> None:
    aad = ev("a", 0, AZURE_AD, "Add user", "user", targets=("df00@contoso.com",), corr="c1")
    o365 = ev("o", 3 * SEC, OFFICE_365, "Add user.", "user", targets=("df00@contoso.com",), corr="c1")
    other_corr = ev("o2", 3 * SEC, OFFICE_365, "Add user.", "user", targets=("df00@contoso.com",), corr="c2")
    kept, twins = merge_twins([aad, o365, other_corr])
    assert [e.event_key for e in kept] == ["a", "o2"]
    assert twins == {"o": aad}  # one twin per Azure AD event
    assert merge_twins([aad, other_corr])[1] == {"o2": aad}  # a differing O365 ID does not rule it out
    no_corr = ev("o3", 10 * SEC, OFFICE_365, "Add User.", "user", targets=("df00@contoso.com",))
    assert merge_twins([aad, no_corr])[1] == {"o3": aad}
    # Receipt times only: Office 365's copy may arrive hours later (the twin window, 6 h by default).
    late = ev("o4", 40 * MIN, OFFICE_365, "Add user.", "user", targets=("df00@contoso.com",))
    assert merge_twins([aad, late])[1] == {"o4": aad}
    far = ev("o4", 7 * HOUR, OFFICE_365, "Add user.", "user", targets=("df00@contoso.com",))
    assert merge_twins([aad, far])[1] == {}
    assert merge_twins([aad, late], window_ms=30 * MIN)[1] == {}
    # Both own times known: the same change logged twice differs by clock skew only.
    own = replace(aad, received_time=aad.event_time + 2 * MIN)
    own_late = replace(late, received_time=late.event_time + HOUR)
    assert merge_twins([own, own_late])[1] == {}
    own_copy = replace(late, event_time=aad.event_time + 2 * SEC, received_time=aad.event_time + 40 * MIN)
    assert merge_twins([own, own_copy])[1] == {"o4": own}
    other_op = ev(
        "o5", SEC, OFFICE_365, "Add service principal.", "service_principal", targets=("df00@contoso.com",)
    )
    assert merge_twins([aad, other_op])[1] == {}
