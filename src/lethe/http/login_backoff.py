"""Per-account login backoff (security review, finding 13: "a per-account failure counter with
backoff for login").

The per-address login limit (``LETHE_LOGIN_RATE_PER_MINUTE``) does not stop an attacker who rotates
addresses. This counts failed logins per *account name typed*, whatever the address: after
``failures`` of them within ``window_s``, every further attempt for that name is refused with 429 and
``Retry-After`` until a delay has passed, without its password being checked, so the right password
is refused the same way and a refusal tells nothing about it. The delay starts at 60 s (or ``max_s``
when smaller) and doubles at each failure after the backoff began, up to ``max_s``. A successful
login clears the account; so does a quiet spell of ``window_s`` after its last failure or delay.

Names that belong to no user are counted the same way: a 429 must not tell which names exist. The
name is kept only as a keyed hash (the key is random per process), since a name field sometimes
holds a password typed in the wrong field. Counts live in the memory of the one service process: a
restart clears them, and each process of a multi-process deployment counts on its own. ``clock`` is
``time.monotonic`` unless told otherwise (the tests give their own).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from lethe.errors import ConfigError
from lethe.http.errors import ApiError
from lethe.http.ratelimit import too_many

#: The first delay of a backoff, in seconds (then doubled at each further failure).
FIRST_DELAY_S = 60.0
#: Accounts tracked at most; past it, the ones quiet for a window are dropped, then (if still too
#: many) those not in backoff, quietest first.
MAX_ACCOUNTS = 50_000


@dataclass
class _Account:
    failures: deque[float]
    strikes: int = 0  # failures since the backoff began (0: not in backoff)
    blocked_until: float = 0.0
    last_at: float = field(default=0.0)

    def quiet_since(self) -> float:
        return max(self.last_at, self.blocked_until)


class LoginBackoff:
    def __init__(
        self,
        failures: int,
        *,
        window_s: float,
        max_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failures < 1 or window_s <= 0 or max_s <= 0:
            raise ConfigError(
                "a login backoff needs at least 1 failure, a window and a longest delay over 0 s"
            )
        self.failures = failures
        self.window_s = float(window_s)
        self.max_s = float(max_s)
        self.clock = clock
        self._key = secrets.token_bytes(16)
        self._accounts: dict[bytes, _Account] = {}
        self._lock = threading.Lock()

    def _id(self, name: str) -> bytes:
        return hashlib.blake2b(name.strip().encode(), key=self._key, digest_size=16).digest()

    def wait(self, name: str) -> float:
        """Seconds until ``name`` may try again; 0.0 when it may now."""
        now = self.clock()
        with self._lock:
            account = self._accounts.get(self._id(name))
            return 0.0 if account is None else max(0.0, account.blocked_until - now)

    def refusal(self, name: str) -> ApiError | None:
        """The 429 :class:`ApiError` (with ``Retry-After``) to raise while ``name`` is in backoff;
        None when it may try now."""
        wait = self.wait(name)
        return too_many("too many failed logins for this account", wait) if wait > 0 else None

    def failed(self, name: str) -> float:
        """Count a failed login of ``name``; returns the delay it now imposes (0.0: none yet)."""
        now = self.clock()
        key = self._id(name)
        with self._lock:
            account = self._accounts.get(key)
            if account is None or now - account.quiet_since() > self.window_s:
                account = _Account(deque(maxlen=self.failures))
                self._accounts[key] = account
                if len(self._accounts) > MAX_ACCOUNTS:
                    self._prune(now)
            while account.failures and now - account.failures[0] > self.window_s:
                account.failures.popleft()
            account.failures.append(now)
            account.last_at = now
            if account.strikes == 0 and len(account.failures) < self.failures:
                return 0.0
            account.strikes += 1
            delay = min(self.max_s, FIRST_DELAY_S * 2.0 ** min(account.strikes - 1, 32))
            account.blocked_until = now + delay
            return delay

    def succeeded(self, name: str) -> None:
        """A successful login: the account starts afresh."""
        with self._lock:
            self._accounts.pop(self._id(name), None)

    def _prune(self, now: float) -> None:
        quiet = [k for k, a in self._accounts.items() if now - a.quiet_since() > self.window_s]
        for key in quiet:
            del self._accounts[key]
        if len(self._accounts) > MAX_ACCOUNTS:  # still too many: drop the quietest, backoffs last
            oldest = sorted(
                self._accounts, key=lambda k: (self._accounts[k].strikes > 0, self._accounts[k].quiet_since())
            )
            for key in oldest[: len(self._accounts) - MAX_ACCOUNTS]:
                del self._accounts[key]
