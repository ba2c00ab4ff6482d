"""The documentation site builds with ``mkdocs build --strict`` (no broken link, no page left out of the nav),
and the README stays short."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def test_the_readme_is_at_most_10_kib():
    assert (ROOT / "README.md").stat().st_size <= 10_240


def test_the_site_builds_strictly(tmp_path):
    pytest.importorskip("material", reason="the docs extra (mkdocs-material) is not installed")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"), "-d", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    rules = (tmp_path / "rules" / "index.html").read_text("utf-8")
    manifest = (tmp_path / "layers" / "index.html").read_text("utf-8")
    # The field tables come from the shipped schemas: a field and its description reach the page.
    assert "the spatial test between the footprint and the layer's features" in rules
    assert "schema-table" not in rules
    assert "schema-table" not in manifest
    assert re.search(r"<code>class_field</code></td>\s*<td>string</td>", manifest)
    # The five-minute tutorial is the README's section, included whole.
    assert "Read the answer." in (tmp_path / "getting-started" / "index.html").read_text("utf-8")


def test_every_page_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text("utf-8")
    pages = {p.name for p in (ROOT / "docs").glob("*.md")}
    assert pages == set(re.findall(r":\s*([\w-]+\.md)$", nav, re.M))
