"""Quoting of attacker-controlled values for the playbook's copy-paste commands.

Actor and target names come from logs, so a command filled with them must stay one argument whatever
they contain (`'; rm -rf ~`, `$(...)`, backticks, newlines). POSIX shells (aws, az, gcloud in bash) use
`shlex.quote`; PowerShell (Microsoft Graph PowerShell, Exchange Online) uses single-quoted strings, in
which only a single quote is special — but PowerShell also treats the typographic quotes U+2018, U+2019,
U+201A and U+201B as single quotes, so each of those is doubled as well.
"""

from __future__ import annotations

import shlex

POSIX, POWERSHELL = "posix", "powershell"
SHELLS = (POSIX, POWERSHELL)

# PowerShell's single-quote characters (about_Quoting_Rules; the language spec's single-quote-character).
_PS_SINGLE_QUOTES = ("'", "\u2018", "\u2019", "\u201a", "\u201b")


def posix_quote(value: str) -> str:
    """One POSIX shell word whose value is exactly ``value``."""
    return shlex.quote(value)


def powershell_quote(value: str) -> str:
    """A PowerShell verbatim (single-quoted) string whose value is exactly ``value``."""
    out = []
    for ch in value:
        out.append(ch + ch if ch in _PS_SINGLE_QUOTES else ch)
    return "'" + "".join(out) + "'"


def quote(value: str, shell: str) -> str:
    if shell == POSIX:
        return posix_quote(value)
    if shell == POWERSHELL:
        return powershell_quote(value)
    raise ValueError(f"unknown shell {shell!r}")


def logging_filter_string(value: str) -> str:
    """A double-quoted string for a Google Cloud Logging query (backslash and double quote escaped)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
