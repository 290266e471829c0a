"""A zone count that does not flicker and does not lag.

A detector misses a person for a frame or two (occlusion, motion blur) and now
and then sees one that is not there. Publishing the raw count would flap alerts.
The smoothed count rises to n only when the raw count has been at least n for
``enter_s`` seconds, and falls to n only when it has been at most n for
``exit_s`` seconds: separate debounce for arrivals and departures, in footage
or wall time given by the caller (never read from a clock here).
"""

from __future__ import annotations

from collections import deque


class CountSmoother:
    """Hysteresis on a count: a min filter for rises, a max filter for falls.

    >>> s = CountSmoother(enter_s=0.2, exit_s=0.4)
    >>> [s.update(n, t / 10) for t, n in enumerate([2, 2, 1, 2, 2, 3, 3, 3, 0, 0, 0, 0, 0])]
    [2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 0]
    """

    def __init__(self, enter_s: float = 0.3, exit_s: float = 0.6):
        self.enter_s = enter_s
        self.exit_s = exit_s
        self._history: deque[tuple[float, int]] = deque()
        self.value: int | None = None

    def _window(self, now: float, span: float) -> list[int] | None:
        """Raw counts that were in force during the last ``span`` seconds (each holds until the next).

        That is the samples since the last one taken at or before ``now - span``; None while the
        history does not reach back that far. At a low detect rate this makes a single sample
        never enough to change the count, whatever the delays.
        """
        start = now - span + 1e-9
        if self._history[0][0] > start:
            return None
        first = max(i for i, (t, _) in enumerate(self._history) if t <= start)
        return [n for _, n in list(self._history)[first:]]

    def update(self, raw: int, now: float) -> int:
        if self._history and now < self._history[-1][0]:
            self._history.clear()  # time went backwards (a looped file, a replaced clock): start afresh
        self._history.append((now, raw))
        horizon = now - max(self.enter_s, self.exit_s) + 1e-9
        while len(self._history) > 1 and self._history[1][0] <= horizon:
            self._history.popleft()
        if self.value is None:
            self.value = raw
            return raw
        rise = self._window(now, self.enter_s)
        if rise and min(rise) > self.value:
            self.value = min(rise)
        fall = self._window(now, self.exit_s)
        if fall and max(fall) < self.value:
            self.value = max(fall)
        return self.value
