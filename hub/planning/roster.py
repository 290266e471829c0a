"""The roster: which counters are staffed when, from the site file (``planning.roster``) or a CSV.

CSV columns ``counter,day,start,end``: ``day`` is a weekday (mon..sun) or an ISO date
(a one-off shift), times are site-local ``HH:MM``. A bad row is refused with its line and
field, and every bad row is reported at once (a half-read roster would under-count staff).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date

import numpy as np

from calibration.site import WEEKDAYS, Site

from hub.planning.history import SLOTS_PER_DAY

COLUMNS = ("counter", "day", "start", "end")
TIME = re.compile(r"^([01][0-9]|2[0-4]):([0-5][0-9])$")


class RosterError(ValueError):
    """Every problem of a roster file, each 'file:line: field: message'."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid roster:\n  " + "\n  ".join(problems))


@dataclass(frozen=True)
class ShiftRow:
    counter: str
    day: str | date            # a weekday name or a date
    start: int                 # minutes after local midnight
    end: int

    def applies(self, d: date) -> bool:
        return self.day == d if isinstance(self.day, date) else WEEKDAYS[d.weekday()] == self.day


def _minutes(text: str) -> int:
    h, m = text.split(":")
    return int(h) * 60 + int(m)


def from_site(site: Site) -> list[ShiftRow]:
    return [ShiftRow(s.counter, d, _minutes(s.start), _minutes(s.end)) for s in site.planning.roster for d in s.days]


def read_csv(text: str, site: Site, filename: str = "<roster>") -> list[ShiftRow]:
    """Shifts from a roster CSV; RosterError listing every bad line."""
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or [f.strip() for f in reader.fieldnames] != list(COLUMNS):
        raise RosterError([f"{filename}:1: header: expected exactly {','.join(COLUMNS)}, got "
                           f"{','.join(reader.fieldnames or [])!r}"])
    counters = {c.id for c in site.counters}
    rows, problems = [], []
    for raw in reader:
        line = reader.line_num
        row = {k.strip(): (v or "").strip() for k, v in raw.items() if k}
        if None in raw:
            problems.append(f"{filename}:{line}: (row): more fields than the header's {len(COLUMNS)}")
            continue
        bad = []
        if row["counter"] not in counters:
            bad.append(f"counter: no counter {row['counter']!r} in site {site.id} "
                       f"({', '.join(sorted(counters))})")
        day: str | date | None = row["day"].lower()
        if day not in WEEKDAYS:
            try:
                day = date.fromisoformat(row["day"])
            except ValueError:
                bad.append(f"day: {row['day']!r} is neither a weekday (mon..sun) nor a date (YYYY-MM-DD)")
                day = None
        for f in ("start", "end"):
            if not TIME.match(row[f]) or _minutes(row[f]) > 24 * 60:
                bad.append(f"{f}: {row[f]!r} is not a local time HH:MM (00:00-24:00)")
        if not bad and _minutes(row["end"]) <= _minutes(row["start"]):
            bad.append(f"end: the shift ends ({row['end']}) before it starts ({row['start']})")
        if bad:
            problems.extend(f"{filename}:{line}: {b}" for b in bad)
        else:
            rows.append(ShiftRow(row["counter"], day, _minutes(row["start"]), _minutes(row["end"])))
    if problems:
        raise RosterError(problems)
    return rows


def scheduled(shifts: list[ShiftRow], d: date) -> dict[str, np.ndarray]:
    """Counter -> bool per slot of ``d``: staffed for the whole or part of the slot."""
    out: dict[str, np.ndarray] = {}
    starts = np.arange(SLOTS_PER_DAY) * 15
    for s in shifts:
        if s.applies(d):
            row = out.setdefault(s.counter, np.zeros(SLOTS_PER_DAY, dtype=bool))
            row |= (starts < s.end) & (starts + 15 > s.start)
    return out
