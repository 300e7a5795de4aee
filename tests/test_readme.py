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
