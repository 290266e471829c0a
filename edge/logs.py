"""One logging setup for every long-running command (edge, hub, calibrate, demo).

``--log-format json`` writes one JSON object per line (time, level, logger,
message, exception), which a container's log collector indexes without a parsing
rule; ``text`` is for a person at a terminal.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

import click

from edge.redact import RedactingFilter

LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR"]


class JsonFormatter(logging.Formatter):
    """A log record as one JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
               "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Configure the root logger once per process (replacing handlers a library may have set); every line
    passes ``edge.redact``'s filter, so no URL password reaches the log in either format."""
    handler = logging.StreamHandler()
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


def log_options(default_level: str = "INFO"):
    """``--log-level`` (HALLGRID_LOG_LEVEL) and ``--log-format`` (HALLGRID_LOG_FORMAT) for a command."""
    def decorate(fn):
        fn = click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
                          envvar="HALLGRID_LOG_FORMAT", help="Log lines as text or one JSON object each.")(fn)
        return click.option("--log-level", type=click.Choice(LEVELS, case_sensitive=False), default=default_level,
                            show_default=True, envvar="HALLGRID_LOG_LEVEL")(fn)
    return decorate
