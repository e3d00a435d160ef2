"""Senders refused again and again are slowed, so that abuse costs the abuser, not the service.

The limits of :mod:`serving.limits` make each refusal cheap, but not free: a sender posting a
refused body in a loop still makes the service accept a connection, check a key and answer,
hundreds of times a second. Each refusal is counted against its sender, in a moving window
(the ``limits`` library's moving-window strategy, in memory: a replica counts its own). Past
``allowed`` refusals a minute, the sender's next requests that carry a body are answered 429
before the body is read, and only after a pause: a client that waits for its answer before it
sends again (as a script in a loop does) then sends about one request per pause, whatever the
refusal would have cost.

The sender is the key's name when the key is valid (413 and 422 answers count against it),
else the client's address (401 answers count against it): a wrong key proves no identity, and
rotating made-up keys must not reset the count. A valid key is never slowed by its address's
refusals, so a proxy that shares one address among clients slows only the refused ones.
Volumetric floods from many addresses are the front proxy's or firewall's to stop.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

# Statuses that say the sender sent what the service will not take; 401 is counted by the key
# gate, the rest after the route's answer. 403 (a valid key of the wrong role) and 404 are a
# client's honest mistakes and cost the service little.
COUNTED_AFTER_ANSWER = frozenset({413, 422})
# Pauses held at once: past this, a slowed sender is answered at once, so sleeping answers can
# never hold an unbounded number of connections open.
MAX_PAUSED = 256


def address_sender(client: tuple[str, int] | None) -> str:
    return f"address:{client[0] if client else 'unknown'}"


def key_sender(name: str) -> str:
    return f"key:{name}"


@dataclass
class RefusalThrottle:
    """Counts refusals per sender; slows the senders past ``allowed`` a minute."""

    allowed: int
    pause_seconds: float
    _window: RateLimitItemPerMinute = field(init=False)
    _counts: MovingWindowRateLimiter = field(init=False)
    _paused: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self._window = RateLimitItemPerMinute(self.allowed)
        self._counts = MovingWindowRateLimiter(MemoryStorage())

    def refused(self, sender: str) -> None:
        """Count one refusal against ``sender``."""
        self._counts.hit(self._window, sender)

    def retry_after(self, sender: str) -> int | None:
        """Seconds until ``sender`` may be answered again, or None when it is not slowed."""
        if self._counts.test(self._window, sender):
            return None
        reset_at = self._counts.get_window_stats(self._window, sender).reset_time
        return max(1, round(reset_at - time.time()))

    async def pause(self) -> None:
        """Hold a slowed sender's answer; costs a timer, not a core."""
        if self._paused >= MAX_PAUSED:
            return
        self._paused += 1
        try:
            await asyncio.sleep(self.pause_seconds)
        finally:
            self._paused -= 1
