"""Credentials out of everything a person or another client reads: URLs shown as ``rtsp://admin:***@host/...``.

Camera sources, the broker and the database are URLs that may carry a
password. Any text that leaves the process (a retained status, a log line,
``hallgrid check`` output, the board, the API) goes through ``redact`` first,
and the log filter does it for every record, so one forgotten call site cannot
leak a password to every subscriber of the hall's broker.
"""

from __future__ import annotations

import logging
import re

# scheme://user:password@  (the password may hold anything but '@', '/' and whitespace)
_CREDENTIALS = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:)(?P<secret>[^\s/]*)@")


def redact(text: str) -> str:
    """Every ``scheme://user:pass@`` in ``text`` with the password replaced by ``***``.

    >>> redact("cannot open stream source rtsp://admin:S3cret@10.0.0.7/ch1")
    'cannot open stream source rtsp://admin:***@10.0.0.7/ch1'
    >>> redact("postgresql://hub:p%40ss@db/hub, mqtt://edge@broker")
    'postgresql://hub:***@db/hub, mqtt://edge@broker'
    """
    return _CREDENTIALS.sub(lambda m: f"{m['head']}***@", text)


class RedactingFilter(logging.Filter):
    """A handler filter that renders each record once and removes credentials from it (and its traceback)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            cleaned = redact(text)
            if cleaned != text:   # keep the traceback, without the secret
                record.exc_info, record.exc_text = None, cleaned
        return True


def setup_logging(level: str | int = logging.INFO) -> None:
    """``logging.basicConfig`` with the redacting filter on the root handlers (every command uses this)."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
