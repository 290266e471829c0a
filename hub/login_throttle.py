"""The login throttle: slows password guessing without letting a stranger lock the real user out for long.

Why these limits, all checked and reserved in one lock hold (``begin``), so that a burst of
concurrent guesses cannot all pass the check before any failure is recorded:

- one password check in flight per account and ``MAX_IN_FLIGHT_PER_ADDRESS`` per address: 40
  concurrent guesses run one scrypt, the other 39 are refused at once (not counted as failures);
- per (account, address): ``PAIR_FAILURES`` failures within ``WINDOW_S`` refuse that pair until
  the oldest ages out. This is the hard limit for one guesser, and it never touches the real
  user at another address;
- per address, over every name: ``ADDRESS_FAILURES`` failures within the window, so guessing
  across names from one machine is throttled too;
- per account, from everywhere: after ``ACCOUNT_FREE_FAILURES`` failures within the window each
  further attempt waits an exponential backoff after the last failure, capped at
  ``ACCOUNT_MAX_BACKOFF_S``: many machines guessing together slow down, and the real user waits
  at most that cap (a success clears the account's count).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

from edge.clock import Clock

WINDOW_S = 300.0
PAIR_FAILURES = 5
ADDRESS_FAILURES = 20
ACCOUNT_FREE_FAILURES = 10
ACCOUNT_MAX_BACKOFF_S = 30.0
MAX_IN_FLIGHT_PER_ADDRESS = 2
MAX_KEYS = 10_000            # remembered names/addresses; pruned of those without recent failures


@dataclass
class _Record:
    failures: deque[float] = field(default_factory=deque)
    in_flight: int = 0


class LoginThrottle:
    """``begin`` before a password check, ``end`` after it; the clock is injected (tests script time)."""

    def __init__(self, clock: Clock):
        self.clock = clock
        self._lock = threading.Lock()
        self._records: dict[tuple, _Record] = {}

    def _rec(self, key: tuple, now: float) -> _Record:
        rec = self._records.get(key)
        if rec is None:
            rec = self._records[key] = _Record()
        while rec.failures and rec.failures[0] <= now - WINDOW_S:
            rec.failures.popleft()
        return rec

    def _prune(self, now: float) -> None:
        if len(self._records) < MAX_KEYS:
            return
        self._records = {k: r for k, r in self._records.items()
                         if r.in_flight or (r.failures and r.failures[-1] > now - WINDOW_S)}

    def begin(self, name: str, address: str) -> float | None:
        """None: go ahead and check the password (a slot is reserved; call ``end``). Otherwise the
        seconds to wait before trying again (nothing reserved)."""
        now = self.clock.now()
        with self._lock:
            self._prune(now)
            account, addr, pair = (self._rec(("account", name), now), self._rec(("address", address), now),
                                   self._rec(("pair", name, address), now))
            if account.in_flight or addr.in_flight >= MAX_IN_FLIGHT_PER_ADDRESS:
                return 1.0
            if len(pair.failures) >= PAIR_FAILURES:
                return pair.failures[0] + WINDOW_S - now
            if len(addr.failures) >= ADDRESS_FAILURES:
                return addr.failures[0] + WINDOW_S - now
            extra = len(account.failures) - ACCOUNT_FREE_FAILURES
            if extra >= 0:
                wait = account.failures[-1] + min(2.0 ** extra, ACCOUNT_MAX_BACKOFF_S) - now
                if wait > 0:
                    return wait
            account.in_flight += 1
            addr.in_flight += 1
            return None

    def end(self, name: str, address: str, ok: bool) -> None:
        """The result of the check ``begin`` allowed: a failure counts against all three keys."""
        now = self.clock.now()
        with self._lock:
            keys = (("account", name), ("address", address), ("pair", name, address))
            recs = [self._rec(k, now) for k in keys]
            for rec in recs[:2]:
                rec.in_flight = max(0, rec.in_flight - 1)
            if ok:
                recs[0].failures.clear()
                recs[2].failures.clear()
            else:
                for rec in recs:
                    rec.failures.append(now)
