"""Login throttling: failed console logins per address slow down, then lock for a while.

After the n-th failure in a row (n >= 2: one typo costs nothing) an address waits
``delay * 2**(n-2)`` seconds (at most the lock time) before its next attempt is even checked; an attempt in that wait is refused, and counts as
a failure. At ``lock_after`` failures the address is locked for ``lock_seconds``: every attempt,
the right password included, is refused until then. A success clears the address's count.
Refusals cost nothing: no thread waits, the answer says how long to wait.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

MAX_ADDRESSES = 10000  # tracked at once; the least recently failing is forgotten first


@dataclass
class _State:
    failures: int = 0
    not_before: float = 0.0
    locked_until: float | None = None


@dataclass(frozen=True)
class Verdict:
    """What the throttle says about one attempt: refused (and why, and for how long), and
    whether a lock just ended before it (the caller audits that)."""

    refused: str | None = None
    wait_seconds: int = 0
    lock_ended: bool = False


class LoginThrottle:
    def __init__(self, delay: float, lock_after: int, lock_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.delay, self.lock_after, self.lock_seconds = delay, lock_after, lock_seconds
        self.clock = clock
        self._states: OrderedDict[str, _State] = OrderedDict()
        self._lock = threading.Lock()

    def before(self, address: str) -> Verdict:
        """Whether an attempt from ``address`` may be checked now."""
        with self._lock:
            state, now = self._states.get(address), self.clock()
            if state is None:
                return Verdict()
            if state.locked_until is not None:
                if now < state.locked_until:
                    return Verdict("locked", _seconds(state.locked_until - now))
                del self._states[address]
                return Verdict(lock_ended=True)
            if now < state.not_before:
                return Verdict("wait", _seconds(state.not_before - now))
            return Verdict()

    def failed(self, address: str) -> tuple[int, bool]:
        """Count a failure; (failures in a row, whether this one locked the address)."""
        with self._lock:
            state = self._states.pop(address, None) or _State()
            self._states[address] = state  # most recently failing last
            while len(self._states) > MAX_ADDRESSES:
                self._states.popitem(last=False)
            if state.locked_until is not None:
                return state.failures, False
            state.failures += 1
            now = self.clock()
            if state.failures >= self.lock_after:
                state.locked_until = now + self.lock_seconds
                return state.failures, True
            if state.failures >= 2:
                wait = self.delay * 2 ** min(state.failures - 2, 30)
                state.not_before = now + min(wait, max(self.lock_seconds, self.delay))
            return state.failures, False

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._states.pop(address, None)


def _seconds(value: float) -> int:
    return max(1, math.ceil(value))
