"""Hostile values for the reliability tests (hostile content and AQL injection).

``HOSTILE_PAYLOADS`` — what an attacker who controls a cloud audit record can put in any field the app
shows: XSS (every script-running payload sets ``window.__pwned`` to its own number, so a browser test can
tell whether and which one ran even when it opens no dialog), HTML, spreadsheet formulas, Unicode tricks
and very long values.

``AQL_INJECTIONS`` — strings that would change an AQL query's structure if pasted in unescaped.
"""

from __future__ import annotations

from dataclasses import dataclass

CANARY = "__pwned"


@dataclass(frozen=True)
class Payload:
    key: str
    kind: str  # xss | html | csv | unicode | long
    value: str


def _xss(n: int, template: str) -> Payload:
    return Payload(f"xss{n:02d}", "xss", template.replace("PWN", f"window.{CANARY}={n}"))


_XSS_TEMPLATES = (
    "<script>PWN;alert(1)</script>",
    "<img src=x onerror=PWN>",
    "<svg onload=PWN>",
    "<svg><script>PWN</script></svg>",
    '"><img src=x onerror=PWN>',
    "'><img src=x onerror=PWN>",
    "</script><script>PWN</script>",
    "javascript:PWN",
    '" onmouseover="PWN" autofocus onfocus="PWN" x="',
    "' onfocus='PWN' autofocus='",
    "{{constructor.constructor('PWN')()}}",
    "${PWN}",
    '<iframe srcdoc="<script>parent.PWN</script>"></iframe>',
    "<details open ontoggle=PWN>",
    "<body onload=PWN>",
    '<a href="javascript:PWN">open</a>',
    "<math><mtext><table><mglyph><style><img src=x onerror=PWN>",
    "<input autofocus onfocus=PWN>",
    '<object data="javascript:PWN"></object>',
    '<meta http-equiv="refresh" content="0;url=javascript:PWN">',
    "<scr<script>ipt>PWN</scr</script>ipt>",
    "<img src=x onerror=eval(atob('B64'))>",
    "--><script>PWN</script><!--",
    "]]><script>PWN</script>",
    '<noscript><p title="</noscript><img src=x onerror=PWN>">',
    "<video><source onerror=PWN></video>",
    "<form><button formaction=javascript:PWN>go</button></form>",
    "data:text/html,<script>PWN</script>",
    "<textarea></textarea><img src=x onerror=PWN>",
    "<title></title><img src=x onerror=PWN>",
    "<style></style><img src=x onerror=PWN>",
    "&lt;img src=x onerror=PWN&gt;",
    "\\u003cimg src=x onerror=PWN\\u003e",
    '<img src=x onerror="PWN"//',
    "`;PWN;`",
    "');PWN;//",
    '");PWN;//',
    "<svg><animate onbegin=PWN attributeName=x dur=1s>",
)


def _xss_payloads() -> list[Payload]:
    import base64

    out = []
    for i, template in enumerate(_XSS_TEMPLATES, start=1):
        if "B64" in template:
            code = base64.b64encode(f"window.{CANARY}={i}".encode()).decode()
            template = template.replace("B64", code)
        out.append(_xss(i, template))
    return out


HOSTILE_PAYLOADS: tuple[Payload, ...] = (
    *_xss_payloads(),
    # HTML that is not script but would wreck the page if parsed.
    Payload("html01", "html", "<b>bold</b><i>italic</i><u>under</u>"),
    Payload("html02", "html", '<h1 style="font-size:400px">HUGE</h1>'),
    Payload(
        "html03", "html", '<div style="position:fixed;inset:0;background:red;z-index:99999">overlay</div>'
    ),
    Payload("html04", "html", "<plaintext>"),
    Payload("html05", "html", "<table><tr><td>cell</td></tr></table></table></div></td></tr>"),
    # Spreadsheet formulas (CSV injection).
    Payload("csv01", "csv", "=1+1"),
    Payload("csv02", "csv", "+1+1"),
    Payload("csv03", "csv", "-2+3"),
    Payload("csv04", "csv", "@SUM(1+1)"),
    Payload("csv05", "csv", "\t=1+1"),
    Payload("csv06", "csv", "\r=1+1"),
    Payload("csv07", "csv", '=HYPERLINK("http://127.0.0.1/leak?x="&A1,"Open report")'),
    Payload("csv08", "csv", "=cmd|' /C calc'!A0"),
    Payload("csv09", "csv", "@SUM(1+9)*cmd|' /C calc'!A0"),
    Payload("csv10", "csv", '=IMPORTXML(CONCAT("http://127.0.0.1/?v=",A1),"//a")'),
    Payload("csv11", "csv", "-cmd|'/C powershell'!A0"),
    # Unicode: bidi overrides, zero-width characters, homoglyphs of admin names, combining marks.
    Payload("uni01", "unicode", "admin\u202egnp.exe"),
    Payload("uni02", "unicode", "\u202eadministrator"),
    Payload("uni03", "unicode", "ad\u200dmin\u200b@contoso.com"),
    Payload("uni04", "unicode", "\ufeffadmin"),
    Payload("uni05", "unicode", "\u0430dmin@contoso.com"),  # Cyrillic a
    Payload("uni06", "unicode", "adm\u0456nistrator"),  # Cyrillic i
    Payload("uni07", "unicode", "a" + "\u0301\u0336\u0335" * 150),
    Payload("uni08", "unicode", "\u2066admin\u2069\u2067root\u2069"),
    Payload("uni09", "unicode", "\U0001d41a\U0001d41d\U0001d426\U0001d422\U0001d427"),
    Payload("uni10", "unicode", "\U0001f468\u200d\U0001f469\u200d\U0001f467 family"),
    # Very long values (10 KB+), with and without break opportunities.
    Payload("long01", "long", "A" * 12_000),
    Payload("long02", "long", "<b>x</b>" * 1_600),
    Payload("long03", "long", "y" * 10_240 + "<img src=x onerror=window.__pwned=999>"),
    Payload("long04", "long", "word " * 2_400),
)

# Payload values that the app may legitimately refuse to put into AQL (control characters: AQL has no
# documented escape for them) — the hunting queries leave such a value out rather than mis-quote it.
CONTROL_CHARS = frozenset(chr(c) for c in [*range(0x00, 0x09), *range(0x0A, 0x20), 0x7F])


def has_control(value: str) -> bool:
    return any(c in CONTROL_CHARS for c in value)


AQL_INJECTIONS: tuple[str, ...] = (
    "' OR 1=1 --",
    "' OR '1'='1",
    "'); DROP TABLE events; --",
    "x' UNION SELECT * FROM flows --",
    "' OR username ILIKE '%",
    "'",
    "''",
    "'''",
    '"',
    '""',
    'a"b',
    '" OR 1=1 --',
    "\\",
    "\\'",
    "x\\' OR 1=1 --",
    "LAST 999 DAYS",
    "' LAST 999 DAYS --",
    "' START '2000-01-01 00:00' STOP '2099-01-01 00:00",
    "') OR (1=1",
    "%",
    "_",
    "*",
    "/* */",
    "-- comment",
    "a\nb' OR 1=1",
    "a\rb",
    "a\x00b",
    "a\x7f",
    "\u2019 OR 1=1 --",
    "\u02bc OR \u02bc1\u02bc=\u02bc1",
    "\uff07 OR 1=1 --",
    "\u201c OR 1=1 --",
    "tab\there",
    "'" * 401,
    "x" * 20_000 + "' OR 1=1 --",
)
