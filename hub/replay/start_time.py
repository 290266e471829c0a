"""When a recording starts on the wall clock: the footage time every replayed message is stamped with.

Order of evidence: what the analyst says (``--start``), the container's ``creation_time``
(via ffprobe when it is installed), a timestamp in the file name (as NVRs name their
exports), else a stated default, so a replay never depends on the file's mtime.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

DEFAULT_START = "2000-01-01T00:00:00Z"

# 20261123T080000, 2026-11-23_08-00-00, 20261123_080000, 2026-11-23 08.00.00 ...
_NAME_TS = re.compile(r"(?P<y>\d{4})-?(?P<mo>\d{2})-?(?P<d>\d{2})[T_ -]?(?P<h>\d{2})[-:.]?(?P<mi>\d{2})[-:.]?(?P<s>\d{2})")


def parse_start(text: str, tz: str = "UTC") -> float:
    """ISO time -> epoch seconds; a time without offset is in the site's time zone."""
    dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=ZoneInfo(tz))
    return dt.timestamp()


def from_name(path: str | Path, tz: str = "UTC") -> float | None:
    """A timestamp in the file name (local time of the site), or None."""
    m = _NAME_TS.search(Path(path).stem)
    if not m:
        return None
    try:
        dt = datetime(*(int(m[k]) for k in ("y", "mo", "d", "h", "mi", "s")), tzinfo=ZoneInfo(tz))
    except ValueError:
        return None
    return dt.timestamp()


def from_metadata(path: str | Path) -> float | None:
    """The container's creation_time tag, when ffprobe is available and the file has one."""
    ffprobe = shutil.which("ffprobe")
    if not ffprobe:
        return None
    try:
        out = subprocess.run([ffprobe, "-v", "quiet", "-print_format", "json", "-show_entries",
                              "format_tags=creation_time", str(path)], capture_output=True, timeout=20, check=False)
        stamp = json.loads(out.stdout or b"{}").get("format", {}).get("tags", {}).get("creation_time")
        return parse_start(stamp) if stamp else None
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None


def resolve_start(path: str | Path, given: str | None, tz: str = "UTC") -> tuple[float, str]:
    """(epoch of frame 0, where it came from: 'option', 'metadata', 'name' or 'default')."""
    if given:
        return parse_start(given, tz), "option"
    for source, fn in (("metadata", lambda: from_metadata(path)), ("name", lambda: from_name(path, tz))):
        found = fn()
        if found is not None:
            return found, source
    return parse_start(DEFAULT_START), "default"


def to_local(epoch: float, tz: str) -> datetime:
    """An instant as an aware datetime in the site's time zone."""
    return datetime.fromtimestamp(epoch, timezone.utc).astimezone(ZoneInfo(tz))


def local_hour(epoch: float, tz: str) -> str:
    """The site-local hour an instant falls in, as 'YYYY-MM-DDTHH:00+08:00' (the statistics' hour key)."""
    dt = to_local(epoch, tz)
    return dt.replace(minute=0, second=0, microsecond=0).isoformat()
