"""The playbook's commands stay one argument per value whatever the log said: checked with a real bash
for POSIX commands and with PowerShell's quoting rules for PowerShell commands."""

from __future__ import annotations

import shlex
import shutil
import subprocess

import pytest

from app.aql.detection import AWS, AZURE_AD, GCP, OFFICE_365
from app.playbook import content
from app.playbook.quoting import POSIX, POWERSHELL, powershell_quote
from app.playbook.render import Subject, fill, raw_values

HOSTILE = [
    "svc_backup",
    "x'; rm -rf ~; echo '",
    "$(touch /tmp/caw-pwned)",
    "`id`",
    'a"b\\c',
    "line1\nline2",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "o\u2019brien",  # a PowerShell single quote in disguise
    "$env:USERPROFILE; Remove-Item -Recurse C:\\",
    "",
]
NOW = 1_764_000_000_000


@pytest.mark.parametrize("value", HOSTILE)
def test_posix_quote_round_trips_through_bash(value: str) -> None:
    bash = shutil.which("bash")
    assert bash is not None
    out = subprocess.run([bash, "-c", "printf '%s' " + shlex.quote(value)], capture_output=True, check=True)
    assert out.stdout.decode() == value


def powershell_unquote(literal: str) -> str:
    """Read a PowerShell verbatim string as PowerShell does: every quote char inside must be doubled."""
    quotes = "'\u2018\u2019\u201a\u201b"
    assert literal[0] == "'" and literal[-1] == "'"
    body, out, i = literal[1:-1], [], 0
    while i < len(body):
        ch = body[i]
        if ch in quotes:
            assert i + 1 < len(body) and body[i + 1] == ch, f"unescaped quote in {literal!r}"
            i += 2
        else:
            i += 1
        out.append(ch)
    return "".join(out)


@pytest.mark.parametrize("value", HOSTILE)
def test_powershell_quote_keeps_every_quote_doubled(value: str) -> None:
    assert powershell_unquote(powershell_quote(value)) == value


def _commands(platform: str):
    for phase in content.PLAYBOOKS[platform].phases:
        for step in phase.steps:
            yield from step.commands


@pytest.mark.parametrize("platform", [AWS, AZURE_AD, OFFICE_365, GCP])
@pytest.mark.parametrize("value", HOSTILE[1:8])
def test_filled_commands_keep_hostile_values_as_one_argument(platform: str, value: str) -> None:
    subject = Subject(platform=platform, actor=value, target=value, target_id=value, event_time_ms=NOW)
    values = raw_values(subject, NOW)
    checked = 0
    for command in _commands(platform):
        filled = fill(command, values)
        if "{{target}}" not in command.template or " | " in command.template:
            continue
        if command.shell == POSIX:
            words = shlex.split(filled.text)
            # "--flag={{target}}" stays one word too.
            assert value in words or any(w.endswith("=" + value) for w in words), filled.text
            checked += 1
        else:
            assert command.shell == POWERSHELL
            assert powershell_quote(value) in filled.text
            checked += 1
    assert checked > 0


def test_missing_values_stay_visible_placeholders() -> None:
    values = raw_values(Subject(), NOW)
    filled = fill(content.Command("aws iam delete-user --user-name {{target}}"), values)
    assert filled.text == "aws iam delete-user --user-name <new-account>"
    assert filled.complete is False


def test_actor_role_and_user_are_read_from_arns() -> None:
    role = raw_values(Subject(actor="arn:aws:sts::111122223333:assumed-role/Deploy'Role/s1"), NOW)
    assert role["actor_role"] == "Deploy'Role"
    user = raw_values(Subject(actor_id="arn:aws:iam::111122223333:user/ops/alice", actor="alice"), NOW)
    assert user["actor_user"] == "alice"
    revoke = next(c for c in _commands(AWS) if "{{actor_role}}" in c.template)
    words = shlex.split(fill(revoke, role).text)
    assert "Deploy'Role" in words


def test_every_step_names_a_source_and_every_platform_has_all_phases() -> None:
    for pb in content.PLAYBOOKS.values():
        assert {p.key for p in pb.phases} == set(content.PHASE_TITLES)
        for phase in pb.phases:
            for step in phase.steps:
                assert step.sources, f"{pb.platform} / {step.title} has no source"
