from datetime import date
from pathlib import Path

import pytest

from agent.context import Context


def test_env_is_read_and_explicit_values_win():
    env = {"NORTHSTAR_HOME": "/tmp/x", "NORTHSTAR_PROVIDER": "offline", "OPENAI_API_KEY": "k",
           "NORTHSTAR_AS_OF": "2026-09-30", "NORTHSTAR_ROLES": "ana:approver,ben:analyst"}
    ctx = Context.from_env(env)
    assert ctx.home == Path("/tmp/x") and ctx.as_of == date(2026, 9, 30)
    assert ctx.role_of("ana") == "approver" and ctx.role_of("ben") == "analyst" and ctx.role_of("zed") == "viewer"
    assert Context.from_env(env, home=Path("/other")).home == Path("/other")


def test_provider_defaults_follow_the_key():
    assert Context.from_env({}).resolved_provider == "offline"
    assert Context.from_env({"OPENAI_API_KEY": "k"}).resolved_provider == "openai"
    with pytest.raises(ValueError, match="NORTHSTAR_PROVIDER"):
        Context.from_env({"NORTHSTAR_PROVIDER": "gpt"})
    with pytest.raises(ValueError, match="role"):
        Context.from_env({"NORTHSTAR_ROLES": "ana:boss"})
