"""The one rate limiter: a token bucket that holds one second of its rate (every limit here is 'so
many a second, in bursts of at most a second's worth'). Times are passed in: no clock reads."""

from __future__ import annotations

__all__ = ["TokenBucket"]


class TokenBucket:
    __slots__ = ("_at", "_tokens", "rate")

    def __init__(self, rate: float, now: float) -> None:
        self.rate = rate
        self._tokens = rate
        self._at = now

    def take(self, now: float) -> bool:
        """One token if there is one (True), refilled at `rate` a second since the last call."""
        rate = self.rate
        self._tokens = min(rate, self._tokens + (now - self._at) * rate)
        self._at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    def give_back(self) -> None:
        """Return the token the last successful `take` took (its taker passed the work on to another)."""
        self._tokens += 1.0
