"""Key validation: every key that passes stays inside its root, whatever the input."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reelforge.storage import InvalidKeyError, validate_key


@pytest.mark.parametrize(
    "key", ["videos/video_abc/video.mp4", "tmp/20261125-abc", "a", "a.b/c-d/e_f.mp4"]
)
def test_plain_keys_pass(key: str) -> None:
    assert validate_key(key) == key


def test_error_names_the_key_and_the_rule() -> None:
    with pytest.raises(InvalidKeyError, match=r"'\.\./x'.*must not start with '\.'"):
        validate_key("../x")


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=40))
def test_no_accepted_key_escapes_its_root(key: str) -> None:
    root = Path("/srv/objects")
    try:
        validate_key(key)
    except InvalidKeyError:
        return
    resolved = (root / key).resolve()
    assert resolved.is_relative_to(root)
    assert resolved != root
