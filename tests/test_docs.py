"""The README and docs/ pages: relative links reach real files and headings, and the README starts with its commands."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
pytestmark = pytest.mark.skipif(not PAGES[0].is_file(), reason="no README.md beside the tests (an installed copy)")
LINK = re.compile(r"\[[^\]]+\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    in_code = False
    out = set()
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            out.add(_slug(line.lstrip("#")))
    return out


def _links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # code blocks and spans hold no links
    text = re.sub(r"`[^`\n]*`", "", text)
    return [t for t in LINK.findall(text) if not t.startswith(("http://", "https://", "mailto:"))]


def test_the_slug_follows_githubs_rule():
    assert _slug(" Measured with `graphdiff bench` (2 CPU cores, no GPU)") == \
        "measured-with-graphdiff-bench-2-cpu-cores-no-gpu"
    assert _slug(" Sampling speed: `--compile` and worker processes") == "sampling-speed---compile-and-worker-processes"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_reach_files_and_headings(page):
    assert page.exists()
    broken = []
    for target in _links(page):
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no file {dest}")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {dest.name}")
    assert not broken, broken


def test_the_readme_links_every_docs_page():
    readme = ROOT / "README.md"
    linked = {(readme.parent / t.partition("#")[0]).resolve() for t in _links(readme)}
    missing = [p.name for p in PAGES[1:] if p.resolve() not in linked]
    assert PAGES[1:] and not missing, missing


def test_the_readme_starts_with_its_two_commands():
    head = (ROOT / "README.md").read_text().split("\n## ", 1)[0]
    lines = head.splitlines()
    assert "# install + main job" in lines and "# install + tests" in lines
    main_cmd = lines[lines.index("# install + main job") + 1]
    test_cmd = lines[lines.index("# install + tests") + 1]
    assert "pip install -c constraints.txt" in main_cmd and main_cmd.endswith("graphdiff demo")
    assert "pip install -c constraints.txt" in test_cmd and "pytest" in test_cmd
