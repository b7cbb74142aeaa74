#!/usr/bin/env bash
# Reproduces app/static/vendor/{carbon,plex}/ from the npm registry (see README.md next to this script).
# Needs npm, tar and python3. Nothing is installed: each package is fetched with `npm pack` into a temp dir.
set -euo pipefail

CARBON_STYLES=@carbon/styles@1.116.0
PLEX_SANS=@ibm/plex-sans@1.1.0
PLEX_MONO=@ibm/plex-mono@1.1.0

here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$work"
for spec in "$CARBON_STYLES" "$PLEX_SANS" "$PLEX_MONO"; do
  tgz="$(npm pack --silent "$spec" | tail -n 1)"
  dir="${tgz%.tgz}"
  mkdir -p "$dir"
  tar xzf "$tgz" -C "$dir"
done

rm -rf "$here/carbon" "$here/plex"
mkdir -p "$here/carbon" "$here/plex"
cp carbon-styles-1.116.0/package/LICENSE "$here/carbon/LICENSE"
cp ibm-plex-sans-1.1.0/package/LICENSE.txt "$here/plex/LICENSE-plex-sans.txt"
cp ibm-plex-mono-1.1.0/package/LICENSE.txt "$here/plex/LICENSE-plex-mono.txt"

# The prebuilt CSS loads every Plex face from https://1.www.s81c.com/. Keep only the faces the app uses
# (Sans 400 and 600, Mono 400; upright; Latin and symbol subsets), point them at the copies under ../plex/,
# and drop every other @font-face rule so no rule points outside the app.
python3 - "$work" "$here" <<'PY'
import pathlib
import re
import shutil
import sys

work, here = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
css = (work / "carbon-styles-1.116.0/package/css/styles.min.css").read_text(encoding="utf-8")
sources = {
    "IBM Plex Sans": work / "ibm-plex-sans-1.1.0/package/fonts/split/woff2",
    "IBM Plex Mono": work / "ibm-plex-mono-1.1.0/package/fonts/split/woff2",
}
keep_weights = {"IBM Plex Sans": {"400", "600"}, "IBM Plex Mono": {"400"}}
keep_subsets = ("-Latin1.woff2", "-Latin2.woff2", "-Latin3.woff2", "-Pi.woff2")
kept, dropped = [], 0


def rewrite(match: re.Match) -> str:
    global dropped
    rule = match.group(0)
    family = re.search(r"font-family:\"?([^;\"]+)\"?;", rule).group(1)
    weight = re.search(r"font-weight:(\d+)", rule).group(1)
    style = re.search(r"font-style:(\w+)", rule).group(1)
    url = re.search(r"url\(([^)]+)\)", rule).group(1)
    name = url.rsplit("/", 1)[1]
    if (family in keep_weights and weight in keep_weights[family] and style == "normal"
            and name.endswith(keep_subsets)):
        shutil.copyfile(sources[family] / name, here / "plex" / name)
        kept.append(name)
        return rule.replace(url, "../plex/" + name)
    dropped += 1
    return ""


css = re.sub(r"@font-face\{[^}]*\}", rewrite, css)
leftover = re.findall(r"https?://[^\s)\"']+", css)
if leftover:
    sys.exit(f"external URL left in the CSS: {leftover[:3]}")
(here / "carbon/styles.min.css").write_text(css, encoding="utf-8")
print(f"kept {len(kept)} @font-face rules, dropped {dropped}")
PY
