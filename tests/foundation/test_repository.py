"""The repository stands alone: its documents link only files inside it, and nothing in it
points at a folder beside the checkout."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\]\(([^)\s]+)\)")
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)  # code is not a link
# The team's folders beside the checkout (written in two pieces so this line does not match).
OUTSIDE = re.compile(r"\.\./shared\b|(?<![\w.])/" + "work/")


def tracked_files() -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    return [ROOT / name for name in out.decode().split("\0") if name]


def test_markdown_links_resolve_inside_the_repository() -> None:
    broken = []
    for doc in [p for p in tracked_files() if p.suffix == ".md"]:
        for target in LINK.findall(CODE.sub("", doc.read_text())):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue  # a URL or an anchor of the same page
            path = (doc.parent / target.split("#", 1)[0]).resolve()
            if not path.is_relative_to(ROOT) or not path.exists():
                broken.append(f"{doc.relative_to(ROOT)} -> {target}")
    assert broken == []


def test_no_file_names_a_place_outside_the_checkout() -> None:
    offenders = []
    for path in tracked_files():
        if path.suffix in {".png", ".json"} or not path.is_file():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if OUTSIDE.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:80]}")
    assert offenders == []


def test_reference_data_is_in_the_repository_and_outside_the_package() -> None:
    data = ROOT / "tests" / "data" / "pve"
    assert (data / "pve-8.4-apischema.json").stat().st_size > 1_000_000
    assert (data / "SOURCE.md").read_text().count("AGPL-3.0") >= 1
    assert not list((ROOT / "src").rglob("*apischema*"))
