"""``hallgrid hash-password``: the scrypt hash a site file's ``access.users[].password_hash`` takes."""

from __future__ import annotations

import sys

import click

from edge.cli_errors import InputError


@click.command(name="hash-password")
@click.option("--stdin", "from_stdin", is_flag=True, help="Read the password from standard input (one line) "
              "instead of asking twice.")
def hash_password_cmd(from_stdin: bool) -> None:
    """Print the hash of a password for the site file (the password itself is never stored or shown)."""
    from hub.access import hash_password

    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise InputError("empty password: a board user needs one")
    click.echo(hash_password(password))
