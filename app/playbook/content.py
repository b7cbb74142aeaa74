"""The response playbook for T1136.003, per platform, with its sources.

Written from the team reference (detection-and-tuning.md §4 "Response playbook", §2 Atomic Red Team,
§1 anchors) — each step names where it comes from. Commands are templates: ``{{name}}`` marks a value
filled from the detection or offense (actor, target …) and quoted for the command's shell by
`app.playbook.render`; everything else in a template is fixed text written here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.aql.detection import AWS, AZURE_AD, GCP, GOOGLE_WORKSPACE, OFFICE_365
from app.playbook.quoting import POSIX, POWERSHELL


@dataclass(frozen=True)
class Source:
    label: str
    url: str | None = None  # None when the source is a repository path rather than a page


@dataclass(frozen=True)
class Command:
    template: str
    shell: str = POSIX
    note: str = ""


@dataclass(frozen=True)
class Step:
    title: str
    text: str
    commands: tuple[Command, ...] = ()
    sources: tuple[Source, ...] = ()


@dataclass(frozen=True)
class Phase:
    key: str
    title: str
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class PlatformPlaybook:
    platform: str
    anchor: str  # HTML id of the platform's section; the fragment links to it
    title: str
    phases: tuple[Phase, ...]
    notes: tuple[str, ...] = field(default=())


# -- sources (detection-and-tuning.md "Sources and versions" and §4) ----------------------------------
ATTACK_T1136_003 = Source(
    "MITRE ATT&CK T1136.003 Create Account: Cloud Account", "https://attack.mitre.org/techniques/T1136/003/"
)
MITRE_DET0319 = Source(
    "MITRE ATT&CK detection strategy DET0319 (AN0899 IdP, AN0900 IaaS)",
    "https://attack.mitre.org/detectionstrategies/DET0319",
)
MITRE_M_T1136 = Source(
    "MITRE ATT&CK mitigations for T1136 (M1032 multi-factor authentication)",
    "https://attack.mitre.org/mitigations/T1136",
)
AWS_SIRG = Source(
    "AWS Security Incident Response Guide: technique and access containment",
    "https://docs.aws.amazon.com/whitepapers/latest/aws-security-incident-response-guide/"
    "technique-access-containment.html",
)
MS_APP_CONSENT = Source(
    "Microsoft incident response playbook: app consent grant (MicrosoftDocs/security, "
    "security-docs/operations/incident-response-playbook-app-consent.md)",
    "https://learn.microsoft.com/en-us/security/operations/incident-response-playbook-app-consent",
)
SPLUNK_SOAR_AWS = Source(
    "Splunk SOAR playbook AWS_IAM_Account_Locking (splunk/security_content, "
    "playbooks/AWS_IAM_Account_Locking.yml)"
)
SPLUNK_SOAR_AZURE = Source(
    "Splunk SOAR playbook Azure_AD_Account_Locking (splunk/security_content, "
    "playbooks/Azure_AD_Account_Locking.yml)"
)
SENTINEL_SP_CHAIN = Source(
    "Microsoft Sentinel rule 'Suspicious Service Principal creation activity' "
    "(Azure/Azure-Sentinel, Solutions/Microsoft Entra ID/Analytic Rules/"
    "SuspiciousServicePrincipalcreationactivity.yaml)"
)
SENTINEL_FP = Source(
    "Microsoft Sentinel: handle false positives (automation-rule exceptions with expiry)",
    "https://learn.microsoft.com/azure/sentinel/false-positives",
)
ELASTIC_ACCESS_KEY = Source(
    "Elastic rule 'AWS IAM User Created Access Keys For Another User' "
    "(elastic/detection-rules, rules/integrations/aws/"
    "persistence_iam_user_created_access_keys_for_another_user.toml)"
)
ELASTIC_LOGIN_PROFILE = Source(
    "Elastic rule 'AWS IAM Login Profile Created or Modified' "
    "(elastic/detection-rules, "
    "rules/integrations/aws/persistence_iam_login_profile_created_or_modified.toml)"
)
ELASTIC_SP = Source(
    "Elastic rule 'Entra ID Service Principal Created' (elastic/detection-rules, "
    "rules/integrations/azure/persistence_entra_id_service_principal_created.toml)"
)
ELASTIC_O365_CONSENT = Source(
    "Elastic rule 'M365 OAuth Illicit Consent Grant by Rare Client and User' "
    "(elastic/detection-rules, rules/integrations/o365/"
    "initial_access_identity_illicit_consent_grant_via_registered_application.toml)"
)
ELASTIC_GCP_SA = Source(
    "Elastic rule 'GCP Service Account Creation' (elastic/detection-rules, "
    "rules/integrations/gcp/persistence_gcp_service_account_created.toml)"
)
SIGMA_BACKDOOR_KEYS = Source(
    "Sigma rule aws_iam_backdoor_users_keys.yml (SigmaHQ/sigma, rules/cloud/aws/cloudtrail/)"
)
ELASTIC_GUEST = Source(
    "Elastic rule 'Entra ID External Guest User Invited' (elastic/detection-rules, "
    "rules/integrations/azure/initial_access_entra_id_external_guest_user_invite.toml)"
)
SIGMA_FEDERATED_DOMAIN = Source(
    "Sigma rule microsoft365_new_federated_domain_added_exchange.yml (SigmaHQ/sigma, rules/cloud/m365/exchange/)"
)
SIGMA_APP_ROLE = Source("Sigma rule azure_app_role_added.yml (SigmaHQ/sigma, rules/cloud/azure/audit_logs/)")
SIGMA_APP_CRED = Source(
    "Sigma rule azure_app_credential_added.yml (SigmaHQ/sigma, rules/cloud/azure/audit_logs/)"
)
O365_SCHEMA = Source(
    "Office 365 Management Activity API schema",
    "https://learn.microsoft.com/en-us/office/office-365-management-api/"
    "office-365-management-activity-api-schema",
)
GCP_AUDIT = Source("Google Cloud IAM audit logging", "https://cloud.google.com/iam/docs/audit-logging")
GCP_SA_KEYS = Source(
    "Google Cloud: best practices for managing service account keys",
    "https://cloud.google.com/iam/docs/best-practices-for-managing-service-account-keys",
)
WORKSPACE_ADMIN_AUDIT = Source(
    "Google Workspace Admin SDK Reports API: admin activity events (user, delegated admin and group settings)",
    "https://developers.google.com/admin-sdk/reports/v1/appendix/activity/admin-user-settings",
)
WORKSPACE_ADMIN_ROLES = Source(
    "Google Workspace Admin Help: pre-built administrator roles",
    "https://support.google.com/a/answer/2405986",
)
GAM_WIKI = Source(
    "GAM (GAM-team/GAM) wiki: users, admins and reports commands", "https://github.com/GAM-team/GAM/wiki"
)
QRADAR_REFSETS = Source(
    "QRadar reference data collections (time_to_live / expiry)",
    "https://www.ibm.com/docs/es/qradar-on-cloud?topic=qradar-creating-reference-data-collections-apis",
)

TRIAGE, CONTAIN, INVESTIGATE, ERADICATE, HARDEN, TUNE = (
    "triage",
    "containment",
    "investigation",
    "eradication",
    "hardening",
    "tuning",
)
PHASE_TITLES = {
    TRIAGE: "Triage",
    CONTAIN: "Containment",
    INVESTIGATE: "Investigation",
    ERADICATE: "Eradication and recovery",
    HARDEN: "Hardening",
    TUNE: "Tuning",
}

# Shared triage steps (who/how, expected?, chain) — detection-and-tuning.md §4 steps 1–3.
_EXPECTED = Step(
    "Is it expected?",
    "Match the creation to a change ticket, a pipeline run or an allowlist entry. A break-glass account: "
    "call its owner. No match → treat as malicious until shown otherwise.",
    sources=(
        Source("Elastic false-positive guidance (rule notes)"),
        Source(
            "Sentinel rule 'Account created or deleted by non-approved user' "
            "(Azure/Azure-Sentinel, Solutions/Microsoft Entra ID/Analytic Rules/"
            "AccountCreatedDeletedByNonApprovedUser.yaml)"
        ),
    ),
)


def _tuning_step(platform_text: str) -> Step:
    return Step(
        "Benign true positive → allowlist entry",
        "Add an allowlist entry keyed on the initiator's immutable ID (" + platform_text + "), with a "
        "justification, an expiry and an approver; preview how many past detections it would have "
        "suppressed before saving. Source CIDR and user agent are optional narrowing conditions only — a "
        "user agent is set by the client and never enough on its own. Never allowlist CloudShell or "
        "S3 Browser.",
        sources=(
            SENTINEL_FP,
            QRADAR_REFSETS,
            Source("Elastic detection-rules PR #4228 / #6589 (user agents are unreliable)"),
        ),
    )


AWS_PLAYBOOK = PlatformPlaybook(
    AWS,
    "platform-aws",
    "AWS (IAM, CloudTrail)",
    (
        Phase(
            TRIAGE,
            PHASE_TITLES[TRIAGE],
            (
                Step(
                    "Who created it, and how",
                    "Read userIdentity (type, arn, sessionContext.sessionIssuer.arn), "
                    "sessionContext.attributes.mfaAuthenticated, sourceIPAddress, userAgent and region of the "
                    "creation event. An EC2 instance role, Lambda execution role or CloudShell as the creator "
                    "is "
                    "a strong signal.",
                    (
                        Command("aws iam get-user --user-name {{target}}"),
                        Command(
                            "aws cloudtrail lookup-events --max-results 50 --lookup-attributes "
                            "{{ct_lookup_target}}",
                            note="CloudTrail events naming the new user (90 days)",
                        ),
                    ),
                    (MITRE_DET0319, ATTACK_T1136_003),
                ),
                _EXPECTED,
                Step(
                    "Chain check (±24 h)",
                    "CreateUser → AttachUserPolicy / PutUserPolicy / AddUserToGroup → CreateAccessKey / "
                    "CreateLoginProfile → first use of the new AKIA key or a ConsoleLogin. Any second step "
                    "raises confidence; run the hunting queries below.",
                    (
                        Command("aws iam list-access-keys --user-name {{target}}"),
                        Command("aws iam list-attached-user-policies --user-name {{target}}"),
                        Command("aws iam list-user-policies --user-name {{target}}"),
                        Command("aws iam list-groups-for-user --user-name {{target}}"),
                    ),
                    (MITRE_DET0319, ELASTIC_ACCESS_KEY, ELASTIC_LOGIN_PROFILE),
                ),
            ),
        ),
        Phase(
            CONTAIN,
            PHASE_TITLES[CONTAIN],
            (
                Step(
                    "Kill the new identity's credentials",
                    "Deactivate (then, after evidence capture, delete) its access keys, delete its console "
                    "password and attach an explicit deny-all inline policy so nothing it holds still works.",
                    (
                        Command(
                            "aws iam update-access-key --user-name {{target}} --access-key-id <AKIA-key-id> "
                            "--status Inactive",
                            note="once per key listed by list-access-keys",
                        ),
                        Command("aws iam delete-login-profile --user-name {{target}}"),
                        Command(
                            "aws iam put-user-policy --user-name {{target}} --policy-name "
                            "cloud-account-watch-deny-all --policy-document "
                            '\'{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*",'
                            '"Resource":"*"}]}\''
                        ),
                    ),
                    (AWS_SIRG, SPLUNK_SOAR_AWS),
                ),
                Step(
                    "Remove privileges",
                    "Detach managed policies, delete inline policies and remove group memberships; if roles "
                    "were "
                    "created too, check their trust policies for external account principals.",
                    (
                        Command(
                            "aws iam detach-user-policy --user-name {{target}} --policy-arn <policy-arn>"
                        ),
                        Command(
                            "aws iam remove-user-from-group --user-name {{target}} --group-name <group-name>"
                        ),
                    ),
                    (AWS_SIRG,),
                ),
                Step(
                    "Contain the creator too",
                    "The initiating principal is compromised until shown otherwise: rotate or deactivate its "
                    "keys; for a role, revoke its active sessions (deny tokens issued before now).",
                    (
                        Command(
                            "aws iam list-access-keys --user-name {{actor_user}}",
                            note="when the creator is an IAM user",
                        ),
                        Command(
                            "aws iam put-role-policy --role-name {{actor_role}} --policy-name "
                            "AWSRevokeOlderSessions --policy-document "
                            '\'{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*",'
                            '"Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":'
                            '"{{now_iso}}"}}}]}\'',
                            note="when the creator is an assumed role",
                        ),
                    ),
                    (
                        AWS_SIRG,
                        Source(
                            "Elastic investigation guides ('Reset passwords or delete API keys… "
                            "check if "
                            "unauthorized new users were created')"
                        ),
                    ),
                ),
            ),
        ),
        Phase(
            INVESTIGATE,
            PHASE_TITLES[INVESTIGATE],
            (
                Step(
                    "Hunt follow-on persistence",
                    "CreateAccessKey, Create/UpdateLoginProfile, Attach/Put user and role policies, "
                    "CreateRole/UpdateAssumeRolePolicy, CreatePolicyVersion/SetDefaultPolicyVersion, "
                    "CreateVirtualMFADevice, SAML/OIDC providers, and GetCallerIdentity/ConsoleLogin by the new "
                    "identity. The hunting queries below run these through QRadar.",
                    (
                        Command(
                            "aws cloudtrail lookup-events --max-results 50 --lookup-attributes "
                            "{{ct_lookup_actor}}",
                            note="everything the creator did (CloudTrail, 90 days)",
                        ),
                    ),
                    (SIGMA_BACKDOOR_KEYS, ELASTIC_ACCESS_KEY, MITRE_DET0319),
                ),
                Step(
                    "Scope all identities",
                    "List every user and key created in the window; check when each key was last used.",
                    (
                        Command("aws iam generate-credential-report"),
                        Command("aws iam get-credential-report --query Content --output text | base64 -d"),
                        Command("aws iam get-access-key-last-used --access-key-id <AKIA-key-id>"),
                    ),
                    (AWS_SIRG,),
                ),
                Step(
                    "Identity Center and Organizations",
                    "An Identity Center user or group (eventSource sso-directory / identitystore) signs in "
                    "through the access portal to every account an account assignment (sso "
                    "CreateAccountAssignment, principalId = its ID) gives it; list its assignments and the "
                    "permission set's policies. A new or invited Organizations member account comes with an "
                    "OrganizationAccountAccessRole: check who can assume it.",
                    (
                        Command(
                            "aws identitystore list-users --identity-store-id <d-store-id> "
                            "--filters AttributePath=UserName,AttributeValue={{target}}"
                        ),
                        Command(
                            "aws sso-admin list-account-assignments-for-principal --instance-arn "
                            "<instance-arn> --principal-type USER --principal-id <user-id>"
                        ),
                        Command(
                            "aws sso-admin list-managed-policies-in-permission-set --instance-arn "
                            "<instance-arn> --permission-set-arn <permission-set-arn>"
                        ),
                        Command(
                            "aws organizations list-accounts --query 'Accounts[].[Id,Name,Status,JoinedTimestamp]'"
                        ),
                    ),
                    (AWS_SIRG, MITRE_DET0319),
                ),
                Step(
                    "Service users, own keys and MFA context",
                    "A 'Service user (not IAM)' is a login of its service (Transfer Family SFTP, ElastiCache "
                    "or MemoryDB RBAC, Amazon MQ broker), not an AWS identity: check the server or cluster it "
                    "was added to. An 'Access key (own, rotation)' was made by the user for itself; a key for "
                    "another user is the classic backdoor. MFA enrolments are shown in the chain as context: "
                    "an MFA device on an identity created minutes earlier is the attacker's.",
                    (
                        Command("aws transfer list-users --server-id <s-server-id>"),
                        Command("aws iam list-access-keys --user-name {{target}}"),
                        Command("aws iam list-mfa-devices --user-name {{target}}"),
                    ),
                    (ELASTIC_ACCESS_KEY, AWS_SIRG),
                ),
            ),
        ),
        Phase(
            ERADICATE,
            PHASE_TITLES[ERADICATE],
            (
                Step(
                    "Delete the rogue identity after evidence capture",
                    "Delete keys, login profile, inline policies, attached policies, group memberships and MFA "
                    "devices, then the user. Restore changed policies; re-enable the creator only after the "
                    "root "
                    "cause is fixed.",
                    (
                        Command(
                            "aws iam delete-access-key --user-name {{target}} --access-key-id <AKIA-key-id>"
                        ),
                        Command(
                            "aws iam delete-user-policy --user-name {{target}} --policy-name "
                            "cloud-account-watch-deny-all"
                        ),
                        Command("aws iam delete-user --user-name {{target}}"),
                    ),
                    (AWS_SIRG,),
                ),
            ),
        ),
        Phase(
            HARDEN,
            PHASE_TITLES[HARDEN],
            (
                Step(
                    "Limit who can create identities",
                    "MFA for every principal that can create accounts (M1032); only the provisioning pipeline "
                    "role may call iam:CreateUser (an SCP guardrail — a design idea, not from a source); "
                    "restrict the IAM plane by aws:SourceIp / VPC endpoint conditions; review users and roles "
                    "periodically.",
                    (Command("aws iam list-users --query 'Users[].[UserName,CreateDate]' --output table"),),
                    (MITRE_M_T1136, ATTACK_T1136_003),
                ),
            ),
        ),
        Phase(
            TUNE,
            PHASE_TITLES[TUNE],
            (
                _tuning_step(
                    "the pipeline's sessionContext.sessionIssuer.arn, not the session name; "
                    "CreateServiceLinkedRole by invokedBy"
                ),
            ),
        ),
    ),
)

_MG_CONNECT = Command(
    "Connect-MgGraph -Scopes 'User.ReadWrite.All','Application.ReadWrite.All',"
    "'AuditLog.Read.All','RoleManagement.ReadWrite.Directory'",
    POWERSHELL,
)

AZURE_PLAYBOOK = PlatformPlaybook(
    AZURE_AD,
    "platform-azure-ad",
    "Entra ID (Azure AD)",
    (
        Phase(
            TRIAGE,
            PHASE_TITLES[TRIAGE],
            (
                Step(
                    "Who created it, and how",
                    "Read initiatedBy.user (UPN, object id, IP) or initiatedBy.app (servicePrincipalId), the "
                    "User-Agent in additionalDetails and the correlationId shared by sibling events. A user "
                    "creating a service principal and immediately adding credentials is the AADInternals / "
                    "Sentinel chain pattern.",
                    (
                        _MG_CONNECT,
                        Command(
                            "Get-MgUser -UserId {{target}} -Property "
                            "Id,UserPrincipalName,DisplayName,AccountEnabled,CreatedDateTime,UserType | "
                            "Format-List",
                            POWERSHELL,
                        ),
                        Command("az ad user show --id {{target}}"),
                    ),
                    (MITRE_DET0319, ELASTIC_SP),
                ),
                _EXPECTED,
                Step(
                    "Chain check (±24 h)",
                    "Add user / service principal → Add member to role / app role assignment / consent → "
                    "service principal credentials → sign-in → delete.",
                    (
                        Command("Get-MgUserMemberOf -UserId {{target}} -All", POWERSHELL),
                        Command("Get-MgUserAppRoleAssignment -UserId {{target}} -All", POWERSHELL),
                    ),
                    (SENTINEL_SP_CHAIN, MITRE_DET0319),
                ),
            ),
        ),
        Phase(
            CONTAIN,
            PHASE_TITLES[CONTAIN],
            (
                Step(
                    "Disable the new identity and revoke its sessions",
                    "Set accountEnabled=false and revoke refresh tokens; for a service principal, disable it "
                    "and "
                    "remove its passwordCredentials / keyCredentials.",
                    (
                        Command("Update-MgUser -UserId {{target}} -AccountEnabled:$false", POWERSHELL),
                        Command("Revoke-MgUserSignInSession -UserId {{target}}", POWERSHELL),
                        Command("az ad user update --id {{target}} --account-enabled false"),
                        Command(
                            "Update-MgServicePrincipal -ServicePrincipalId {{target_id}} "
                            "-AccountEnabled:$false",
                            POWERSHELL,
                            note="when a service principal was created (object id)",
                        ),
                        Command("az ad sp credential list --id {{target_id}}"),
                        Command("az ad sp credential delete --id {{target_id}} --key-id <key-id>"),
                    ),
                    (MS_APP_CONSENT, SPLUNK_SOAR_AZURE),
                ),
                Step(
                    "Remove privileges",
                    "Remove directory role assignments (including eligible PIM assignments), app role "
                    "assignments and OAuth2 permission grants; block re-consent.",
                    (
                        Command(
                            "Get-MgRoleManagementDirectoryRoleAssignment -All | Where-Object "
                            "{ $_.PrincipalId -eq {{target_id}} }",
                            POWERSHELL,
                        ),
                        Command(
                            "Remove-MgRoleManagementDirectoryRoleAssignment -UnifiedRoleAssignmentId "
                            "<assignment-id>",
                            POWERSHELL,
                        ),
                    ),
                    (MS_APP_CONSENT, SIGMA_APP_ROLE),
                ),
                Step(
                    "Contain the creator too",
                    "Revoke the initiating admin's sessions and reset its credentials.",
                    (Command("Revoke-MgUserSignInSession -UserId {{actor}}", POWERSHELL),),
                    (Source("Elastic investigation guides"),),
                ),
                Step(
                    "Undo persistence that is not an account",
                    "Guest invited or synchronized from another tenant: remove the user and review the inbound "
                    "cross-tenant synchronization partners. Owner added: remove the owner from the application "
                    "or service principal. Federated identity credential: remove it (it lets an outside token "
                    "issuer sign in as the application). Domain added, verified or federated (the AADInternals "
                    "backdoor): a federated domain lets its issuer sign in as any of its users — set it back to "
                    "managed authentication, or remove an unknown domain, before anything else.",
                    (
                        Command("Get-MgDomainFederationConfiguration -DomainId {{target}}", POWERSHELL),
                        Command(
                            "Update-MgDomain -DomainId {{target}} -AuthenticationType Managed",
                            POWERSHELL,
                            note="for a domain federated without a change ticket",
                        ),
                        Command(
                            "Get-MgApplicationFederatedIdentityCredential -ApplicationId {{target_id}}",
                            POWERSHELL,
                            note="the application's object id",
                        ),
                        Command(
                            "Remove-MgApplicationOwnerByRef -ApplicationId <app-object-id> "
                            "-DirectoryObjectId {{target_id}}",
                            POWERSHELL,
                            note="the owner the detection names",
                        ),
                        Command("Get-MgPolicyCrossTenantAccessPolicyPartner -All", POWERSHELL),
                    ),
                    (ELASTIC_GUEST, SIGMA_FEDERATED_DOMAIN),
                ),
            ),
        ),
        Phase(
            INVESTIGATE,
            PHASE_TITLES[INVESTIGATE],
            (
                Step(
                    "Hunt follow-on persistence",
                    "Add (eligible) member to role, app role assignments, consent / delegated permission "
                    "grants, "
                    "service principal credentials, 'Update application – Certificates and secrets management', "
                    "owners added, security info registered, password resets, guest invitations, federation and "
                    "domain changes.",
                    (
                        Command(
                            "$actor = {{actor}}; Get-MgAuditLogDirectoryAudit -All -Filter "
                            '"activityDateTime ge {{since_iso}}" | Where-Object '
                            "{ $_.InitiatedBy.User.UserPrincipalName -eq $actor } | "
                            "Select-Object ActivityDateTime,ActivityDisplayName,CorrelationId",
                            POWERSHELL,
                            note="the creator's directory changes since the creation",
                        ),
                    ),
                    (SENTINEL_SP_CHAIN, SIGMA_APP_CRED, SIGMA_APP_ROLE),
                ),
                Step(
                    "Scope all identities",
                    "List users, service principals and applications created in the window; review consent "
                    "grants.",
                    (
                        Command(
                            "Get-MgUser -All -Property Id,UserPrincipalName,CreatedDateTime | Where-Object "
                            "{ $_.CreatedDateTime -ge (Get-Date).AddDays(-2) }",
                            POWERSHELL,
                        ),
                        Command("Get-MgOauth2PermissionGrant -All", POWERSHELL),
                    ),
                    (MS_APP_CONSENT,),
                ),
            ),
        ),
        Phase(
            ERADICATE,
            PHASE_TITLES[ERADICATE],
            (
                Step(
                    "Delete the rogue identity after evidence capture",
                    "Deleted users stay restorable for 30 days; re-enable accounts only after the root cause is "
                    "fixed.",
                    (
                        Command("Remove-MgUser -UserId {{target}}", POWERSHELL),
                        Command("az ad user delete --id {{target}}"),
                        Command(
                            "Remove-MgServicePrincipal -ServicePrincipalId {{target_id}}",
                            POWERSHELL,
                            note="for a service principal",
                        ),
                    ),
                    (MS_APP_CONSENT,),
                ),
            ),
        ),
        Phase(
            HARDEN,
            PHASE_TITLES[HARDEN],
            (
                Step(
                    "Limit who can create identities",
                    "MFA for admins (M1032); PIM just-in-time for roles that can create users and apps; stop "
                    "ordinary users registering applications; Conditional Access on admin portals; periodic "
                    "access reviews.",
                    (
                        Command(
                            "Update-MgPolicyAuthorizationPolicy -DefaultUserRolePermissions "
                            "@{ AllowedToCreateApps = $false }",
                            POWERSHELL,
                        ),
                    ),
                    (MITRE_M_T1136, ATTACK_T1136_003),
                ),
            ),
        ),
        Phase(
            TUNE,
            PHASE_TITLES[TUNE],
            (
                _tuning_step(
                    "the initiator's object id or servicePrincipalId — never its display name; the "
                    "Microsoft first-party initiators ship as an editable preset"
                ),
            ),
        ),
    ),
)

OFFICE_PLAYBOOK = PlatformPlaybook(
    OFFICE_365,
    "platform-office-365",
    "Office 365 (Unified Audit Log)",
    (
        Phase(
            TRIAGE,
            PHASE_TITLES[TRIAGE],
            (
                Step(
                    "Who created it, and how",
                    "UserId is the actor, ObjectId the new account; Actor[]/Target[] carry IDs. The same "
                    "creation usually also appears in Entra ID audit logs — the app shows it as 'also seen in'.",
                    (
                        Command("Connect-ExchangeOnline", POWERSHELL),
                        Command(
                            "Search-UnifiedAuditLog -StartDate {{since_date}} -EndDate {{until_date}} -UserIds "
                            "{{actor}} -ResultSize 5000 | Select-Object CreationDate,Operations,UserIds",
                            POWERSHELL,
                        ),
                    ),
                    (O365_SCHEMA, MITRE_DET0319),
                ),
                _EXPECTED,
            ),
        ),
        Phase(
            CONTAIN,
            PHASE_TITLES[CONTAIN],
            (
                Step(
                    "Disable the account and revoke sessions",
                    "The account lives in Entra ID: contain it there (see the Entra ID section).",
                    (
                        _MG_CONNECT,
                        Command("Update-MgUser -UserId {{target}} -AccountEnabled:$false", POWERSHELL),
                        Command("Revoke-MgUserSignInSession -UserId {{target}}", POWERSHELL),
                    ),
                    (MS_APP_CONSENT, SPLUNK_SOAR_AZURE),
                ),
                Step(
                    "Remove mailbox persistence",
                    "Inbox rules and forwarding set by or for the new account keep data flowing out.",
                    (
                        Command("Get-InboxRule -Mailbox {{target}}", POWERSHELL),
                        Command(
                            "Get-Mailbox -Identity {{target}} | Select-Object "
                            "ForwardingSmtpAddress,DeliverToMailboxAndForward",
                            POWERSHELL,
                        ),
                        Command(
                            "Set-Mailbox -Identity {{target}} -ForwardingSmtpAddress $null "
                            "-DeliverToMailboxAndForward $false",
                            POWERSHELL,
                        ),
                    ),
                    (Source("Public post-AiTM persistence hunting lists (attribution UNCONFIRMED)"),),
                ),
            ),
        ),
        Phase(
            INVESTIGATE,
            PHASE_TITLES[INVESTIGATE],
            (
                Step(
                    "Hunt follow-on persistence",
                    "Consent to application., Add member to role., Add app role assignment grant to user., "
                    "service principal credentials, New-InboxRule, Set-Mailbox forwarding.",
                    (
                        Command(
                            "Search-UnifiedAuditLog -StartDate {{since_date}} -EndDate {{until_date}} "
                            "-ObjectIds {{target}} -ResultSize 5000",
                            POWERSHELL,
                        ),
                    ),
                    (ELASTIC_O365_CONSENT, O365_SCHEMA),
                ),
            ),
        ),
        Phase(
            ERADICATE,
            PHASE_TITLES[ERADICATE],
            (
                Step(
                    "Delete the rogue account after evidence capture",
                    "Export the mailbox and audit records first if the account was used.",
                    (Command("Remove-MgUser -UserId {{target}}", POWERSHELL),),
                    (MS_APP_CONSENT,),
                ),
            ),
        ),
        Phase(
            HARDEN,
            PHASE_TITLES[HARDEN],
            (
                Step(
                    "Consent and admin hardening",
                    "Require admin consent workflow for applications, MFA for admins (M1032), keep the Unified "
                    "Audit Log enabled.",
                    (
                        Command(
                            "Get-AdminAuditLogConfig | Format-List UnifiedAuditLogIngestionEnabled",
                            POWERSHELL,
                        ),
                    ),
                    (MS_APP_CONSENT, MITRE_M_T1136),
                ),
            ),
        ),
        Phase(
            TUNE,
            PHASE_TITLES[TUNE],
            (_tuning_step("the actor's object id; de-duplicate against the Entra ID copy of the event"),),
        ),
    ),
)

GCP_PLAYBOOK = PlatformPlaybook(
    GCP,
    "platform-gcp",
    "Google Cloud (IAM, Cloud Audit Logs)",
    (
        Phase(
            TRIAGE,
            PHASE_TITLES[TRIAGE],
            (
                Step(
                    "Who created it, and how",
                    "protoPayload.authenticationInfo.principalEmail is the actor, the new service account is in "
                    "the resource name; check callerIp and userAgent.",
                    (
                        Command("gcloud iam service-accounts describe {{target}}"),
                        Command(
                            "gcloud iam service-accounts keys list --iam-account={{target}} --managed-by=user"
                        ),
                    ),
                    (GCP_AUDIT, ELASTIC_GCP_SA),
                ),
                Step(
                    "Who may act as it, and what it was granted",
                    "A SetIAMPolicy on the service account itself (google.iam.admin.v1.SetIAMPolicy) says who "
                    "may impersonate it (token creator) or manage its keys; a project, folder or organization "
                    "SetIamPolicy says what it may do. Read the change in serviceData.policyDelta (bindingDeltas "
                    "with action ADD), not request.policy, which lists every existing binding.",
                    (Command("gcloud iam service-accounts get-iam-policy {{target}}"),),
                    (GCP_AUDIT,),
                ),
                _EXPECTED,
            ),
        ),
        Phase(
            CONTAIN,
            PHASE_TITLES[CONTAIN],
            (
                Step(
                    "Disable the service account and its keys",
                    "Disabling stops every key and token of the account at once; disable user-managed keys "
                    "individually when the account must keep running.",
                    (
                        Command("gcloud iam service-accounts disable {{target}}"),
                        Command("gcloud iam service-accounts keys disable <key-id> --iam-account={{target}}"),
                    ),
                    (GCP_SA_KEYS,),
                ),
                Step(
                    "Remove privileges",
                    "Remove the account's role bindings on projects, folders and the organization.",
                    (
                        Command(
                            "gcloud projects get-iam-policy <project-id> --flatten=bindings[].members "
                            "--filter={{gcp_member_filter}} --format='table(bindings.role)'"
                        ),
                        Command(
                            "gcloud projects remove-iam-policy-binding <project-id> "
                            "--member={{gcp_member}} --role=<role>"
                        ),
                    ),
                    (GCP_AUDIT,),
                ),
            ),
        ),
        Phase(
            INVESTIGATE,
            PHASE_TITLES[INVESTIGATE],
            (
                Step(
                    "Hunt follow-on persistence",
                    "Key creation or upload, SetIamPolicy bindings, custom roles, and token minting "
                    "(GenerateAccessToken, SignBlob, SignJwt) for the new account.",
                    (
                        Command(
                            "gcloud logging read {{gcp_log_filter_actor}} --freshness=2d --limit=200",
                            note="the creator's Admin Activity audit entries",
                        ),
                        Command(
                            "gcloud logging read {{gcp_log_filter_target}} --freshness=2d --limit=200",
                            note="entries naming the new account",
                        ),
                    ),
                    (GCP_AUDIT,),
                ),
            ),
        ),
        Phase(
            ERADICATE,
            PHASE_TITLES[ERADICATE],
            (
                Step(
                    "Delete the rogue account after evidence capture",
                    "Deleted service accounts can be undeleted for 30 days.",
                    (
                        Command("gcloud iam service-accounts keys delete <key-id> --iam-account={{target}}"),
                        Command("gcloud iam service-accounts delete {{target}}"),
                    ),
                    (GCP_SA_KEYS,),
                ),
            ),
        ),
        Phase(
            HARDEN,
            PHASE_TITLES[HARDEN],
            (
                Step(
                    "Restrict service account and key creation",
                    "Enforce the organization policy constraints that block user-managed keys (and, where "
                    "possible, service account creation outside pipelines).",
                    (
                        Command(
                            "gcloud resource-manager org-policies enable-enforce "
                            "iam.disableServiceAccountKeyCreation --organization=<org-id>"
                        ),
                    ),
                    (GCP_SA_KEYS, MITRE_M_T1136),
                ),
            ),
        ),
        Phase(TUNE, PHASE_TITLES[TUNE], (_tuning_step("the pipeline's principalEmail"),)),
    ),
)

WORKSPACE_PLAYBOOK = PlatformPlaybook(
    GOOGLE_WORKSPACE,
    "platform-google-workspace",
    "Google Workspace / Cloud Identity (Admin console audit)",
    (
        Phase(
            TRIAGE,
            PHASE_TITLES[TRIAGE],
            (
                Step(
                    "Who created it, and what it holds",
                    "actor.email is the admin who created the user (USER_EMAIL); check ipAddress and whether "
                    "the user was then made super admin (GRANT_ADMIN_PRIVILEGE), given an admin role "
                    "(ASSIGN_ROLE) or added to an admin group.",
                    (
                        Command(
                            "gam info user {{target}}",
                            note="GAM; the Admin console's user page shows the same",
                        ),
                        Command("gam print admins user {{target}}"),
                    ),
                    (WORKSPACE_ADMIN_AUDIT, GAM_WIKI),
                ),
                _EXPECTED,
            ),
        ),
        Phase(
            CONTAIN,
            PHASE_TITLES[CONTAIN],
            (
                Step(
                    "Suspend the user and end its sessions",
                    "Suspending blocks sign-in; signing out and resetting sign-in cookies ends open sessions. "
                    "Remove its admin role assignments (role assignment IDs from the list above).",
                    (
                        Command("gam update user {{target}} suspended on"),
                        Command("gam user {{target}} signout"),
                        Command("gam delete admin <role-assignment-id>"),
                    ),
                    (WORKSPACE_ADMIN_ROLES, GAM_WIKI),
                ),
            ),
        ),
        Phase(
            INVESTIGATE,
            PHASE_TITLES[INVESTIGATE],
            (
                Step(
                    "Hunt follow-on persistence",
                    "Admin roles and admin groups, custom roles (CREATE_ROLE, ADD_PRIVILEGE), passwords set by "
                    "an admin, 2-Step Verification turned off and domain-wide delegation "
                    "(AUTHORIZE_API_CLIENT_ACCESS) by the creator or for the new user.",
                    (
                        Command(
                            "gam report admin user {{actor}} start {{since_date}} end {{until_date}}",
                            note="the creator's admin activity",
                        ),
                        Command(
                            "gam report login user {{target}} start {{since_date}}",
                            note="the new user's sign-ins",
                        ),
                    ),
                    (WORKSPACE_ADMIN_AUDIT, GAM_WIKI),
                ),
            ),
        ),
        Phase(
            ERADICATE,
            PHASE_TITLES[ERADICATE],
            (
                Step(
                    "Delete the rogue user after evidence capture",
                    "Transfer or export its data first if needed; a deleted user can be restored for 20 days.",
                    (Command("gam delete user {{target}}"),),
                    (GAM_WIKI,),
                ),
            ),
        ),
        Phase(
            HARDEN,
            PHASE_TITLES[HARDEN],
            (
                Step(
                    "Fewer super admins, alerting on admin grants",
                    "Keep super admin to a few break-glass accounts with security keys; delegate narrower "
                    "admin roles; alert on GRANT_ADMIN_PRIVILEGE and ASSIGN_ROLE (this app chains them to the "
                    "creation).",
                    sources=(WORKSPACE_ADMIN_ROLES, MITRE_M_T1136),
                ),
            ),
        ),
        Phase(TUNE, PHASE_TITLES[TUNE], (_tuning_step("the provisioning admin's e-mail or profileId"),)),
    ),
)

PLAYBOOKS: dict[str, PlatformPlaybook] = {
    p.platform: p for p in (AWS_PLAYBOOK, AZURE_PLAYBOOK, OFFICE_PLAYBOOK, GCP_PLAYBOOK, WORKSPACE_PLAYBOOK)
}


def anchor_for(platform: str) -> str:
    """HTML id of a platform's playbook section ('' when unknown)."""
    pb = PLAYBOOKS.get(platform)
    return pb.anchor if pb else ""


# -- investigation guide (detection-and-tuning.md §4 triage; DET0319 mutable elements) ----------------
INVESTIGATION_GUIDE: tuple[tuple[str, str], ...] = (
    (
        "Who",
        "Creator's immutable ID (role ARN / object id / servicePrincipalId / principalEmail), not its "
        "display name or session name. Is it a person, a pipeline or a first-party service?",
    ),
    (
        "How",
        "Source IP, user agent (CLI, console, SDK, CloudShell, S3 Browser, AADInternals), MFA on the "
        "session, region — the elements DET0319 calls mutable; compare with the creator's usual values.",
    ),
    (
        "What",
        "User, service principal, application, role, service account or credential? Service identities "
        "and credentials last longer and are watched less.",
    ),
    (
        "Expected?",
        "Change ticket, pipeline run, HR onboarding, break-glass — or an allowlist entry that "
        "should have matched.",
    ),
    (
        "Chain",
        "Privilege, credential or consent within 24 h (an administrator grant up to 7 days later: the "
        "escalation memory setting), and first use of the new identity: the chain badge in the app and "
        "the hunting queries.",
    ),
    ("Scope", "Other identities created by the same actor in the window; the creator's other activity."),
)

ATTACK_LINKS: tuple[tuple[str, str, str], ...] = (
    ("T1136.003", "Create Account: Cloud Account", "https://attack.mitre.org/techniques/T1136/003/"),
    (
        "T1098.001",
        "Account Manipulation: Additional Cloud Credentials",
        "https://attack.mitre.org/techniques/T1098/001/",
    ),
    (
        "T1098.002",
        "Account Manipulation: Additional Email Delegate Permissions",
        "https://attack.mitre.org/techniques/T1098/002/",
    ),
    (
        "T1098.003",
        "Account Manipulation: Additional Cloud Roles",
        "https://attack.mitre.org/techniques/T1098/003/",
    ),
    ("T1078.004", "Valid Accounts: Cloud Accounts", "https://attack.mitre.org/techniques/T1078/004/"),
)

FALSE_POSITIVES: tuple[tuple[str, str], ...] = (
    (
        "Provisioning pipelines (Terraform, CloudFormation, Pulumi, Ansible, Puppet)",
        "Allowlist the pipeline's role ARN (sessionContext.sessionIssuer.arn) plus its source CIDR / VPC "
        "endpoint; a user-agent regex only as an extra condition.",
    ),
    (
        "HR-driven provisioning and directory sync (Workday/SuccessFactors, Entra Connect, Cloud Sync)",
        "Allowlist the provisioning service principal or sync account by object id / servicePrincipalId.",
    ),
    (
        "Break-glass and emergency access",
        "Time-boxed entry (24 h or less) with the ticket id and an approver.",
    ),
    (
        "Microsoft first-party initiators and AWS service-linked roles",
        "Shipped as presets: Managed Service Identity, Microsoft Azure AD Internal - Jit Provisioning, "
        "AAD App Management, Windows Azure Service Management API, Power Virtual Agents Service; "
        "CreateServiceLinkedRole invoked by an AWS service.",
    ),
)
