"""Who calls the API: bearer tokens mapped to users; their roles come from NORTHSTAR_ROLES (agent.context).

`NORTHSTAR_API_TOKENS="ana:<token>,ben:<token>"` names each API user's token. The server also makes a token of
its own at every start, written only to the home's `server.json` (mode 0600): whoever can read the home's files
can open the warehouse anyway, so that token acts as the home's local user and, like the in-process CLI, may
ask as any `--user`. Every other token acts as its own user only.
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass

ENV = "NORTHSTAR_API_TOKENS"
MIN_LENGTH = 16
HOW = ("Send `Authorization: Bearer <token>` with a token from NORTHSTAR_API_TOKENS (user:token pairs on the "
       "server), or set NORTHSTAR_API_TOKEN for the CLI.")


class AuthError(Exception):
    """No token, or one the server does not know: HTTP 401 with this message."""


@dataclass(frozen=True)
class Caller:
    user: str
    may_act_as: bool = False
    """The home's own token: may name another user, as the local CLI may (`--user`)."""

    def acting(self, user: str | None) -> str:
        """The user a request acts as: the caller, or (home token only) the user it names."""
        if not user or user == self.user:
            return self.user
        if self.may_act_as:
            return user
        raise PermissionError(f"This token belongs to {self.user}; it cannot act as {user}. Leave out the user "
                              "(or --user) or use that user's own token.")


def parse_tokens(text: str) -> dict[str, str]:
    """`"ana:tok1,ben:tok2"` → {"tok1": "ana", "tok2": "ben"}; ValueError naming the bad entry."""
    tokens: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        user, sep, token = item.partition(":")
        user, token = user.strip(), token.strip()
        if not sep or not user or not token:
            raise ValueError(f"{ENV}: {item[:40]!r} is not user:token (e.g. ana:Xq3…, comma-separated).")
        if len(token) < MIN_LENGTH:
            raise ValueError(f"{ENV}: the token for {user} is shorter than {MIN_LENGTH} characters; make one with "
                             "`python -c 'import secrets; print(secrets.token_urlsafe(24))'`.")
        if token in tokens:
            raise ValueError(f"{ENV}: {user} and {tokens[token]} have the same token; give each user their own.")
        tokens[token] = user
    return tokens


class Tokens:
    """The tokens the server accepts: the configured users' and the home's own."""

    def __init__(self, configured: dict[str, str], home_token: str, local_user: str):
        self.configured, self.home_token, self.local_user = configured, home_token, local_user

    @classmethod
    def from_env(cls, home_token: str, local_user: str, environ=None) -> Tokens:
        return cls(parse_tokens((environ if environ is not None else os.environ).get(ENV, "")), home_token,
                   local_user)

    def caller(self, authorization: str | None) -> Caller:
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if not authorization:
            raise AuthError(f"No API token: this endpoint needs one. {HOW}")
        if scheme.lower() != "bearer" or not token:
            raise AuthError(f"The Authorization header must be `Bearer <token>`. {HOW}")
        if hmac.compare_digest(token.encode(), self.home_token.encode()):
            return Caller(self.local_user, may_act_as=True)
        user = next((u for t, u in self.configured.items() if hmac.compare_digest(token.encode(), t.encode())), None)
        if user is None:
            raise AuthError(f"This API token is not known to the server (revoked, mistyped, or for another "
                            f"server). {HOW}")
        return Caller(user)
