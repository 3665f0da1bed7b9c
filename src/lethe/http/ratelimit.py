"""In-memory token buckets: ``rate`` actions per minute per key (a user, a client address), and
optionally one global bucket shared by every key (the public portal: many addresses cannot together
go past it; an IPv6 /64 or a botnet gets no more than the global rate).

A bucket holds at most ``rate`` tokens and refills continuously at ``rate`` per minute, so a client
may burst up to ``rate`` at once and then goes at the steady rate. Buckets live in the memory of the
one service process (a restart resets them); idle full buckets are dropped so memory stays bounded.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from lethe.errors import ConfigError
from lethe.http.errors import ApiError

MAX_KEYS = 50_000


def too_many(what: str, wait: float) -> ApiError:
    """The 429 ``rate_limited`` error: ``what``, then when to try again, also as ``Retry-After``
    (whole seconds, at least 1)."""
    seconds = max(1, math.ceil(wait))
    return ApiError(
        429, "rate_limited", f"{what}; try again in {seconds} s", headers={"Retry-After": str(seconds)}
    )


class RateLimiter:
    def __init__(
        self,
        rate_per_minute: int,
        *,
        what: str,
        clock: Callable[[], float] = time.monotonic,
        global_rate_per_minute: int | None = None,
    ) -> None:
        if rate_per_minute < 1:
            raise ConfigError(f"a rate limit of {what} must be at least 1 per minute, got {rate_per_minute}")
        self.everyone = (
            None
            if global_rate_per_minute is None
            else RateLimiter(global_rate_per_minute, what=f"{what} from all clients together", clock=clock)
        )
        self.capacity = float(rate_per_minute)
        self.per_second = rate_per_minute / 60.0
        self.what = what
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()

    def try_take(self, key: str) -> float:
        """Take one token for ``key``: 0.0 when allowed, else the seconds until one is free."""
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - at) * self.per_second)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                if len(self._buckets) > MAX_KEYS:
                    self._prune(now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.per_second

    def check(self, key: str) -> None:
        """Raise a 429 :class:`ApiError` (with ``Retry-After``) when ``key`` is over its rate, or
        everyone together over the global rate."""
        self._refuse_after(self.try_take(key))
        if self.everyone is not None:
            self.everyone.check("*")

    def _refuse_after(self, wait: float) -> None:
        if wait > 0:
            raise too_many(f"too many {self.what}: at most {int(self.capacity)} per minute", wait)

    def _prune(self, now: float) -> None:
        full_after = self.capacity / self.per_second
        for key in [k for k, (_, at) in self._buckets.items() if now - at >= full_after]:
            del self._buckets[key]
