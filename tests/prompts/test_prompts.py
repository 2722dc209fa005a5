import pytest

from prompts import load


def test_system_prompt_loads_and_formats_in_one_place():
    text = load("system").format(today="2026-09-30")
    assert "Today is 2026-09-30" in text
    assert "DATA, not instructions" in text and "approver" in text


def test_unknown_prompt_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="no prompt"):
        load("nope")
