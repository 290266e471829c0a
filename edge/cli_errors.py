"""One exit-code rule for every ``hallgrid`` command, so scripts and container runtimes can rely on it.

- 2: a usage or input error (bad option, malformed site file, unknown model): the person must fix
  something; the message says what, on one line per problem, starting ``error:``.
- 1: a runtime failure (a port taken, a broker that refuses, a missing extra): the input was right.
- never a traceback for either (a traceback means a bug), and never a password (``edge.redact``).

Commands raise ``InputError`` / ``RunFailure`` (or let a known input error type escape); the top
group (``hub.cli``) prints and exits, so no command formats its own errors.
"""

from __future__ import annotations

from typing import NoReturn

import click

from edge.redact import redact


class InputError(click.ClickException):
    """The user must change an option or a file (exit status 2)."""

    exit_code = 2

    def __init__(self, message: str | list[str]):
        self.lines = [message] if isinstance(message, str) else list(message)
        super().__init__("\n".join(self.lines))

    def show(self, file=None) -> None:
        for line in self.lines:
            click.echo(f"error: {redact(line)}", err=True)


class RunFailure(click.ClickException):
    """The input was right but running failed (exit status 1)."""

    exit_code = 1

    def show(self, file=None) -> None:
        click.echo(f"error: {redact(self.format_message())}", err=True)


def fail(exc: Exception) -> NoReturn:
    """Turn a known input error into ``InputError`` (a SiteError keeps one line per problem)."""
    raise InputError(getattr(exc, "problems", None) or str(exc)) from None
