"""The predicted wait in words, as a duty manager reads it: "about 4 min (2-7)", never "∞".

A pure function of a service's figures (``hub.fusion.SiteState.service_figures``), so the
board, the API and every alert say the same thing in the same words. Three cases, by
``wait_reason``:

- ``ok``: a finite wait with its 80 % interval, in whole minutes ("about 4 min (2-7)");
- ``overloaded``: arrivals outpace the counters, so a single number would be a guess: the
  backlog, the counters and how often one frees up ("overloaded: 9 tickets, 2 counters,
  one frees every 3 min");
- ``no_counter``: nobody serves the service ("no counter open").

Figures from a hub that predates ``wait_reason``/``wait_low_s``/``wait_high_s``/``frees_every_s``
still read correctly: the reason is derived (no open counter = ``no_counter``, no wait beside
open counters = ``overloaded``) and a missing range is left out.
"""

from __future__ import annotations

import math
from typing import Any

from hub.messages import LANGUAGES, Localized, render

REASONS = ("ok", "overloaded", "no_counter")


def wait_reason(figures: dict[str, Any]) -> str:
    """``ok``, ``overloaded`` or ``no_counter`` for these figures (derived when the hub gives none)."""
    reason = figures.get("wait_reason")
    if reason in REASONS:
        return reason
    if not figures.get("open_counters"):
        return "no_counter"
    return "overloaded" if figures.get("predicted_wait_s") is None else "ok"


def duration(seconds: float, lang: str) -> str:
    """A span of time in words: seconds under 90 s, whole minutes above ("45 s", "3 min")."""
    if seconds < 90:
        return render("unit.seconds", lang, n=max(0, round(seconds)))
    return render("unit.minutes", lang, n=round(seconds / 60))


def durations(seconds: float) -> Localized:
    return Localized({lang: duration(seconds, lang) for lang in LANGUAGES})


def _ok(figures: dict[str, Any], lang: str) -> str:
    wait = float(figures["predicted_wait_s"])
    m = round(wait / 60)
    low, high = figures.get("wait_low_s"), figures.get("wait_high_s")
    if low is None or high is None:
        return render("wait.short" if m == 0 else "wait.about", lang, m=m)
    lo = min(m, math.floor(float(low) / 60))
    hi = max(m, math.ceil(float(high) / 60))
    if m == 0:
        return render("wait.short_range" if hi >= 2 else "wait.short", lang, hi=hi)
    if lo == hi:
        return render("wait.about", lang, m=m)
    return render("wait.about_range", lang, m=m, lo=lo, hi=hi)


def wait_text(figures: dict[str, Any], lang: str) -> str:
    """The wait of a ticket issued now, in ``lang``; see the module docstring for the three forms."""
    reason = wait_reason(figures)
    if reason == "no_counter":
        return render("wait.no_counter", lang)
    if reason == "overloaded":
        tickets = render("unit.tickets", lang, n=figures.get("waiting_tickets", 0))
        counters = render("unit.counters", lang, n=len(figures.get("open_counters") or ()))
        every = figures.get("frees_every_s")
        if every is None:
            return render("wait.overloaded", lang, tickets=tickets, counters=counters)
        return render("wait.overloaded_frees", lang, tickets=tickets, counters=counters, every=duration(every, lang))
    return _ok(figures, lang)


def wait_texts(figures: dict[str, Any]) -> Localized:
    """``wait_text`` in every language (for the API and the alert contract, the board switches live)."""
    return Localized({lang: wait_text(figures, lang) for lang in LANGUAGES})

