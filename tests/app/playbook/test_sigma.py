"""The portable Sigma rule passes sigma-cli's `sigma check` (validation issues fail the check).

pySigma 1.x downloads MITRE ATT&CK / D3FEND data for its two tag validators and this machine has no
internet, so exactly those two are excluded; the ATT&CK tags are checked here against the known IDs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from app.playbook.views import SIGMA_PATH

SIGMA = Path(sys.executable).with_name("sigma")
CHECK = ["check", "--fail-on-error", "--fail-on-issues", "-x", "attacktag", "-x", "d3_fendtag"]


def sigma_check(path: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    assert SIGMA.exists(), "sigma-cli is not installed in the venv (requirements/dev.txt)"
    return subprocess.run(
        [str(SIGMA), *CHECK, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )


def test_sigma_check_passes(tmp_path: Path) -> None:
    result = sigma_check(SIGMA_PATH, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No validation issues found" in result.stdout


def test_sigma_check_fails_a_broken_copy(tmp_path: Path) -> None:
    # The same check must be able to fail: a rule without its condition and with a bad level.
    broken = tmp_path / "cloud_account_creation_broken.yml"
    text = SIGMA_PATH.read_text().replace("    condition: selection\n", "", 1)
    broken.write_text(text)
    result = sigma_check(broken, tmp_path)
    assert result.returncode != 0


def test_rules_cover_every_platform_and_tag_t1136_003() -> None:
    docs = list(yaml.safe_load_all(SIGMA_PATH.read_text()))
    assert {(d["logsource"]["product"], d["logsource"]["service"]) for d in docs} == {
        ("aws", "cloudtrail"),
        ("azure", "auditlogs"),
        ("m365", "audit"),
        ("gcp", "gcp.audit"),
        ("gcp", "google_workspace.admin"),
    }
    known = {"attack.t1136.003", "attack.t1098.001", "attack.t1098.003"}
    for d in docs:
        assert d["tags"][0] == "attack.persistence" and set(d["tags"][1:]) <= known, d["title"]
    # Account creations tag T1136.003; the key made for another user is T1098.001; the Google admin grants
    # that follow a creation are T1098.003.
    by_title = {d["title"]: d for d in docs}
    assert by_title["AWS Access Key Created for Another IAM User"]["tags"] == [
        "attack.persistence",
        "attack.t1098.001",
    ]
    for title in (
        "Privileged Role Granted in Google Cloud IAM",
        "Admin Privilege Granted in Google Workspace",
    ):
        assert by_title[title]["tags"] == ["attack.persistence", "attack.t1098.003"]
    assert sum("attack.t1136.003" in d["tags"] for d in docs) == len(docs) - 3
    assert len({d["id"] for d in docs}) == len(docs)


def test_aws_rules_tell_services_apart_by_event_source() -> None:
    docs = {d["title"]: d["detection"] for d in yaml.safe_load_all(SIGMA_PATH.read_text())}
    identity_center = docs["Cloud Account Created in AWS IAM Identity Center"]
    assert identity_center["selection_identity_store"]["eventSource"] == [
        "sso-directory.amazonaws.com",
        "identitystore.amazonaws.com",
    ]
    assert docs["Cloud Account Created in AWS IAM"]["selection"]["eventSource"] == "iam.amazonaws.com"
    assert "iam.amazonaws.com" not in docs["AWS Service User Created Outside IAM"]["selection"]["eventSource"]
    own_key = docs["AWS Access Key Created for Another IAM User"]["filter_main_own_key"]
    assert own_key == {"requestParameters.userName|fieldref": "userIdentity.userName"}


def test_playbook_serves_the_rule_for_download(offline_client) -> None:
    response = offline_client.get("/playbook/sigma/cloud_account_creation.yml")
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.data == SIGMA_PATH.read_bytes()
