"""The installer's proof: true counts typed for a few snapshots against hallgrid's counts, with fixes.

Why: checks find what is likely wrong; only a person looking at the picture
knows how many people are really in each zone. A few snapshots per zone show
whether hallgrid over-counts (something it takes for a person: mask it),
under-counts (people at the edge or too small: enlarge the zone or use a bigger
model size) or is right, before the hall relies on the counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

BIAS_LIMIT = 0.5  # mean error per snapshot above which a zone gets a suggestion


class TruthError(ValueError):
    """A --truth text that is not zone=n,..."""


def parse_truth(text: str) -> dict[str, int]:
    """``"waiting-a=3,entrance=0"`` -> {"waiting-a": 3, "entrance": 0}.

    >>> parse_truth("a=1, b=0")
    {'a': 1, 'b': 0}
    """
    out: dict[str, int] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        zone, _, n = item.partition("=")
        if not zone.strip() or not n.strip().isdigit():
            raise TruthError(f"--truth item {item!r}: write ZONE=N (N people you see in the zone), comma separated")
        out[zone.strip()] = int(n)
    return out


@dataclass(frozen=True)
class ProofSample:
    """One zone in one snapshot: what hallgrid counted and what the installer sees."""

    zone: str
    counted: int
    truth: int


@dataclass(frozen=True)
class ZoneProof:
    zone: str
    snapshots: int
    mean_abs_error: float
    bias: float  # mean counted - truth: > 0 over-counts
    suggestions: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"zone": self.zone, "snapshots": self.snapshots, "mean_abs_error": round(self.mean_abs_error, 3),
                "bias": round(self.bias, 3), "suggestions": self.suggestions}


def prove(samples: Iterable[ProofSample], small_people: Iterable[str] = (), model_input: int | None = None
          ) -> list[ZoneProof]:
    """Per zone: the counting error over the snapshots and what to change when it is off.

    ``small_people`` names zones where people are small at the model input (from calibration.checks).

    >>> [p.suggestions[0][:28] for p in prove([ProofSample("a", 2, 1)])]
    ['hallgrid counts more people ']
    """
    by_zone: dict[str, list[ProofSample]] = {}
    for s in samples:
        by_zone.setdefault(s.zone, []).append(s)
    small = set(small_people)
    out = []
    for zone, rows in by_zone.items():
        errors = [r.counted - r.truth for r in rows]
        bias = sum(errors) / len(errors)
        mae = sum(abs(e) for e in errors) / len(errors)
        tips = []
        if bias > BIAS_LIMIT:
            tips.append("hallgrid counts more people than there are: mask the false positive (a poster, a "
                        "mannequin, a reflection, a person on a screen) with an exclusion mask, or move the "
                        "zone's edge off the neighbouring area whose people it takes")
        elif bias < -BIAS_LIMIT:
            if zone in small:
                tips.append(f"people here are too small for the model's {model_input or ''} px input: use a "
                            "bigger model size (e.g. yolox_nano_640)".replace("  ", " "))
            tips.append("people are missed: enlarge the zone so that the feet of people standing at its edge are "
                        "inside it; if they are hidden behind furniture, a bigger model size or a second camera "
                        "angle helps")
        elif mae > BIAS_LIMIT:
            tips.append("errors both ways: people near the zone's edge go in and out; draw the edge where the "
                        "floor changes (a wall, a counter) rather than through where people stand")
        out.append(ZoneProof(zone, len(rows), mae, bias, tips))
    return out
