"""Writing an edited camera (zones and masks) back into a site file, keeping the installer's file.

Why: the site file is hand-written too: its comments explain choices (why a
mask is there) and its order is how the installer reads it. So edits go through
ruamel's round-trip document: existing zones are updated in place (their
comments stay), new ones are appended, removed ones dropped. The new text is
validated with ``parse_site`` before anything is written, the previous file is
kept as a timestamped backup (the last ``KEEP_BACKUPS``), and the write is atomic
(a crash never leaves half a file). Saves of one file are serialised (``site_lock``:
the editor reads, edits and writes under it, so concurrent saves neither collide nor
lose each other's edits), and the file keeps its mode (a 0600 file holding password
hashes stays 0600).
"""

from __future__ import annotations

import glob
import io
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from calibration.site import Site, SiteError, parse_site

ZONE_FIELDS = ("id", "name", "type", "grid_cell", "capacity")
KEEP_BACKUPS = 10
_locks: dict[Path, threading.RLock] = {}
_locks_guard = threading.Lock()


def site_lock(path: Path) -> threading.RLock:
    """The one lock of a site file in this process: hold it from reading the file to replacing it."""
    with _locks_guard:
        return _locks.setdefault(Path(path).resolve(), threading.RLock())


def _yaml() -> YAML:
    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 120
    y.indent(mapping=2, sequence=4, offset=2)
    return y


def _flow_polygon(polygon: Sequence[Sequence[float]]) -> CommentedSeq:
    """[[x, y], ...] written on one line, rounded to 1e-4 of the frame (well under a pixel)."""
    outer = CommentedSeq()
    for x, y in polygon:
        inner = CommentedSeq([round(float(x), 4), round(float(y), 4)])
        inner.fa.set_flow_style()
        outer.append(inner)
    outer.fa.set_flow_style()
    return outer


def _merge(existing: Any, shapes: Sequence[dict], fields: Sequence[str]) -> CommentedSeq:
    old = {item.get("id"): item for item in (existing or [])}
    # an emptied list starts afresh: its old comments would be dumped between the key and '[]' (broken YAML)
    out = existing if isinstance(existing, CommentedSeq) and shapes else CommentedSeq()
    kept = []
    for shape in shapes:
        item = old.get(shape["id"], CommentedMap())
        for key in fields:
            if key in shape:
                item[key] = shape[key]
        item["polygon"] = _flow_polygon(shape["polygon"])
        kept.append(item)
    del out[:]
    out.extend(kept)
    return out


def _with_camera(text: str, camera_id: str, change: Callable[[CommentedMap], None]) -> str:
    """The site text after ``change`` edited ``camera_id``'s mapping in place; the rest, comments included,
    is kept as written."""
    y = _yaml()
    doc = y.load(io.StringIO(text))
    cam = next((c for c in doc.get("cameras") or [] if c.get("id") == camera_id), None)
    if cam is None:
        raise SiteError([f"site has no camera {camera_id!r}"])
    change(cam)
    buf = io.StringIO()
    y.dump(doc, buf)
    return buf.getvalue()


def edit_camera(text: str, camera_id: str, zones: Sequence[dict], masks: Sequence[dict]) -> str:
    """The site text with ``camera_id``'s zones and masks replaced (dicts with the site file's keys)."""
    def change(cam: CommentedMap) -> None:
        cam["zones"] = _merge(cam.get("zones"), zones, ZONE_FIELDS)
        cam["masks"] = _merge(cam.get("masks"), masks, ("id",))

    return _with_camera(text, camera_id, change)


@dataclass(frozen=True)
class Saved:
    site: Site
    backup: Path | None


def _backup(path: Path) -> Path:
    """Copy ``path`` to PATH.YYYYmmdd-HHMMSS-micro.bak (names sort by time) and drop all but the newest
    ``KEEP_BACKUPS``."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    backup, n = path.with_name(f"{path.name}.{stamp}.bak"), 1
    while backup.exists():
        backup, n = path.with_name(f"{path.name}.{stamp}-{n}.bak"), n + 1
    shutil.copy2(path, backup)                     # copy2: the backup keeps the file's mode too
    for old in sorted(path.parent.glob(f"{glob.escape(path.name)}.*.bak"))[:-KEEP_BACKUPS]:
        old.unlink(missing_ok=True)
    return backup


def save_site_text(path: Path, text: str) -> Saved:
    """Validate ``text`` as a site and replace ``path`` with it, keeping the old file as a backup.

    Raises SiteError (and writes nothing) when the text is not a valid site. The new file has the old
    one's mode (0600 for a new file: site files may hold password hashes and camera passwords).
    """
    site = parse_site(text, str(path))
    with site_lock(path):
        backup = None
        mode = 0o600
        if path.exists():
            mode = stat.S_IMODE(path.stat().st_mode)
            backup = _backup(path)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fchmod(fh.fileno(), mode)
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return Saved(site.model_copy(update={"source_file": path.resolve()}), backup)


def set_camera_entry(text: str, camera_id: str, key: str, value: dict | None) -> str:
    """The site text with one mapping under ``camera_id`` (e.g. ``count_correction``) set, or removed for None.

    The rest of the file, comments included, is kept as written.
    """
    def change(cam: CommentedMap) -> None:
        if value is None:
            cam.pop(key, None)
            return
        entry = cam.get(key) if isinstance(cam.get(key), CommentedMap) else CommentedMap()
        for old in [k for k in entry if k not in value]:
            del entry[old]
        entry.update(value)
        cam[key] = entry

    return _with_camera(text, camera_id, change)
