"""The README documents every setting there is, by every name it is read under."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices

from reelforge.settings import Settings

README = Path(__file__).parents[1] / "README.md"


def test_every_setting_is_in_the_readme_table() -> None:
    table = [line for line in README.read_text().splitlines() if line.startswith("| `")]
    missing = []
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        assert isinstance(alias, AliasChoices), name
        for choice in alias.choices:
            if not any(f"`{choice}`" in line for line in table):
                missing.append(str(choice))
    assert missing == []


def test_links_stay_inside_the_repository_and_resolve() -> None:
    import re

    root = README.parent.resolve()
    documents = [README, *sorted((root / "docs").glob("*.md"))]
    broken = []
    for document in documents:
        for target in re.findall(r"\]\(([^)\s]+)\)", document.read_text()):
            if target.startswith(("http://", "https://", "#", "mailto:")):
                continue
            path = (document.parent / target.split("#")[0]).resolve()
            if not path.is_relative_to(root) or not path.exists():
                broken.append(f"{document.name}: {target}")
    assert broken == []
