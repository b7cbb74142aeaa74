"""The vendored Carbon CSS and fonts are served by the app alone: no URL outside the app."""

from __future__ import annotations

import re
from pathlib import Path

VENDOR = Path(__file__).resolve().parents[2] / "app" / "static" / "vendor"
CSS = VENDOR / "carbon" / "styles.min.css"


def test_vendored_css_has_no_external_url() -> None:
    css = CSS.read_text(encoding="utf-8")
    assert "cds--data-table" in css  # it is the Carbon v11 bundle, not an empty file
    assert not re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", css, flags=re.IGNORECASE)
    assert "@import" not in css


def test_every_font_url_points_at_a_vendored_file() -> None:
    css = CSS.read_text(encoding="utf-8")
    urls = re.findall(r"url\(([^)]+)\)", css)
    font_urls = [u.strip("'\"") for u in urls if not u.strip("'\"").startswith("data:")]
    assert font_urls, "the Plex @font-face rules were dropped entirely"
    for url in font_urls:
        assert url.startswith("../plex/"), url
        assert (CSS.parent / url).resolve().is_file(), f"{url} is not vendored"


def test_plex_faces_are_declared_for_the_weights_the_app_uses() -> None:
    css = CSS.read_text(encoding="utf-8")
    faces = re.findall(r"@font-face\{([^}]*)\}", css)
    declared = {
        (
            re.search(r"font-family:\"?([^;\"]+)", face).group(1),
            re.search(r"font-weight:(\d+)", face).group(1),
        )
        for face in faces
    }
    assert {("IBM Plex Sans", "400"), ("IBM Plex Sans", "600"), ("IBM Plex Mono", "400")} <= declared


def test_vendor_readme_names_sources_and_licences() -> None:
    readme = (VENDOR / "README.md").read_text(encoding="utf-8")
    sources = (
        "@carbon/styles@1.116.0",
        "@ibm/plex-sans@1.1.0",
        "@ibm/plex-mono@1.1.0",
        "Apache-2.0",
        "OFL-1.1",
    )
    for text in sources:
        assert text in readme
    assert (VENDOR / "carbon" / "LICENSE").is_file()
    assert (VENDOR / "plex" / "LICENSE-plex-sans.txt").is_file()
