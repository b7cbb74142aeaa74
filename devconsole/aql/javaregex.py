"""MATCHES / IMATCHES: Java regular expressions run with Python's ``re``.

Java's ``String.matches`` semantics: the pattern must match the whole value (``re.fullmatch``).
Translated: named groups ``(?<name>..)``, ``\\Q..\\E`` quoting, the POSIX ``\\p{..}`` classes and ``\\h``.
Other Java-only constructs are rejected rather than guessed.

Limits (documented in the engine's README section): SQLite user functions cannot be interrupted per
call, so a catastrophically backtracking pattern could hang a search. As a guard, patterns with nested
unbounded quantifiers (``(a+)+``, ``(.*)*``, ``(\\w+\\s?)+``) and patterns longer than
``MAX_PATTERN_CHARS`` are refused, and values longer than ``MAX_SUBJECT_CHARS`` are matched only on
their first ``MAX_SUBJECT_CHARS`` characters. Overlapping alternations under a quantifier
(``(a|a)*``) are not detected.
"""

from __future__ import annotations

import re
from functools import lru_cache

try:  # the stdlib's own regex parser (private, but stable in 3.11+) drives the backtracking guard
    from re import _constants as _sre_constants
    from re import _parser as _sre_parse
except ImportError:  # pragma: no cover - other Python versions
    _sre_parse = None
    _sre_constants = None

MAX_PATTERN_CHARS = 2000
MAX_SUBJECT_CHARS = 1_000_000

_POSIX = {
    "Lower": "a-z",
    "Upper": "A-Z",
    "ASCII": "\\x00-\\x7f",
    "Alpha": "a-zA-Z",
    "Digit": "0-9",
    "Alnum": "a-zA-Z0-9",
    "Punct": "!-/:-@\\[-`{-~",
    "Graph": "!-~",
    "Print": " -~",
    "Blank": " \\t",
    "Cntrl": "\\x00-\\x1f\\x7f",
    "XDigit": "0-9a-fA-F",
    "Space": " \\t\\n\\x0b\\f\\r",
    "L": "^\\W\\d_",
    "IsAlphabetic": "^\\W\\d_",
    "N": "\\d",
    "IsDigit": "\\d",
}


def _translate(pattern: str) -> str:
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        ch = pattern[i]
        if ch == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            if nxt == "Q":
                end = pattern.find("\\E", i + 2)
                literal = pattern[i + 2 :] if end < 0 else pattern[i + 2 : end]
                out.append(re.escape(literal))
                i = n if end < 0 else end + 2
                continue
            if nxt in "pP" and i + 2 < n and pattern[i + 2] == "{":
                end = pattern.find("}", i + 3)
                name = pattern[i + 3 : end] if end > 0 else ""
                name = name[2:] if name.startswith("Is") and name not in _POSIX else name
                if name not in _POSIX:
                    raise ValueError(f"unsupported character class \\{nxt}{{{name}}}")
                body = _POSIX[name]
                negate = nxt == "P"
                if body.startswith("^"):  # already a negated class body
                    body, negate = body[1:], not negate
                if in_class:
                    if negate:
                        raise ValueError("negated \\P{..} inside a character class is not supported")
                    out.append(body)
                else:
                    out.append(f"[{'^' if negate else ''}{body}]")
                i = end + 1
                continue
            if nxt == "h":
                out.append("[ \\t\\xa0]" if not in_class else " \\t\\xa0")
                i += 2
                continue
            if nxt == "z":
                out.append("\\Z")
                i += 2
                continue
            if nxt == "Z":
                out.append("(?=\\n?\\Z)")
                i += 2
                continue
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
            elif ch == "[":
                raise ValueError("nested character classes (Java unions) are not supported")
            out.append(ch)
            i += 1
            continue
        if ch == "[":
            in_class = True
            out.append(ch)
            # a leading ] or ^] is literal, as in Java
            j = i + 1
            if j < n and pattern[j] == "^":
                out.append("^")
                j += 1
            if j < n and pattern[j] == "]":
                out.append("\\]")
                j += 1
            i = j
            continue
        if pattern.startswith("(?<", i) and i + 3 < n and pattern[i + 3] not in "=!":
            out.append("(?P<")
            i += 3
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _nested_unbounded(parsed, inside_repeat: bool) -> bool:
    """True if an unbounded repeat occurs inside another repeat (star height > 1)."""
    repeats = (_sre_constants.MAX_REPEAT, _sre_constants.MIN_REPEAT, _sre_constants.POSSESSIVE_REPEAT)
    maxrepeat = _sre_constants.MAXREPEAT
    for op, av in parsed:
        if op in repeats:
            _low, high, sub = av
            unbounded = high == maxrepeat or high > 100
            if op == _sre_constants.POSSESSIVE_REPEAT:
                unbounded = False  # possessive quantifiers never backtrack
            if unbounded and inside_repeat:
                return True
            if _nested_unbounded(sub, inside_repeat or unbounded):
                return True
        elif op == _sre_constants.SUBPATTERN:
            if _nested_unbounded(av[-1], inside_repeat):
                return True
        elif op == _sre_constants.BRANCH:
            if any(_nested_unbounded(b, inside_repeat) for b in av[1]):
                return True
        elif op in (_sre_constants.ASSERT, _sre_constants.ASSERT_NOT):
            if _nested_unbounded(av[1], inside_repeat):
                return True
        elif op == getattr(_sre_constants, "ATOMIC_GROUP", None):
            continue
    return False


@lru_cache(maxsize=512)
def compile_java_regex(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    """The compiled Python regex for a Java pattern; ValueError if invalid, unsupported or unsafe."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise ValueError(f"the pattern is longer than {MAX_PATTERN_CHARS} characters")
    translated = _translate(pattern)
    flags = re.IGNORECASE if ignore_case else 0
    try:
        compiled = re.compile(translated, flags)
    except (re.error, OverflowError, RecursionError) as exc:
        raise ValueError(f"invalid regular expression: {exc}") from None
    if _sre_parse is not None:
        try:
            parsed = _sre_parse.parse(translated, flags)
        except Exception:  # the compile above succeeded; a parser hiccup must not reject the pattern
            parsed = None
        if parsed is not None and _nested_unbounded(parsed, False):
            raise ValueError(
                "the pattern nests unbounded quantifiers (e.g. (a+)+), which can backtrack catastrophically;"
                " the dev console refuses it"
            )
    return compiled


def matches(value: str, pattern: str, ignore_case: bool) -> bool:
    return compile_java_regex(pattern, ignore_case).fullmatch(value[:MAX_SUBJECT_CHARS]) is not None
