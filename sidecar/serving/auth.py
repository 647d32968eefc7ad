"""Token authentication shared by both transports: tokens from a file or the environment."""

from __future__ import annotations

import hmac
import os
from pathlib import Path

TOKEN_ENV = "METABRAIN_TOKEN"


class TokenAuth:
    """Accepts a request when it carries one of the configured tokens (compared in constant time)."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = [t.encode() for t in tokens if t]

    @property
    def enabled(self) -> bool:
        return bool(self.tokens)

    @classmethod
    def from_sources(cls, token_file: str | None, use_env: bool = True) -> TokenAuth:
        tokens: list[str] = []
        if token_file:
            tokens += [line.strip() for line in Path(token_file).read_text().splitlines() if line.strip()]
        if use_env and os.environ.get(TOKEN_ENV):
            tokens.append(os.environ[TOKEN_ENV].strip())
        return cls(tokens)

    def check(self, presented: str | None) -> bool:
        if not self.enabled:
            return True
        if not presented:
            return False
        if presented.lower().startswith("bearer "):
            presented = presented[7:]
        candidate = presented.strip().encode()
        ok = False
        for t in self.tokens:  # no early exit: every token is compared
            ok |= hmac.compare_digest(candidate, t)
        return ok
