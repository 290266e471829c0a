"""Where hallgrid keeps what must survive a restart (outbox, hub database, session secret).

Never the current folder: a service started from ``/`` or a container's working
directory would scatter files, and two runs from different folders would not
find each other's state. ``HALLGRID_STATE_DIR`` (a volume in the images) wins,
else the XDG state folder (``~/.local/state/hallgrid``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def state_dir(env: Mapping[str, str] | None = None) -> Path:
    """The state folder (not created: the first writer does that)."""
    env = os.environ if env is None else env
    if env.get("HALLGRID_STATE_DIR"):
        return Path(env["HALLGRID_STATE_DIR"])
    return Path(env.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "hallgrid"
