"""The ``hallgrid`` command: one entry point for every part (edge, calibration, models, hub).

Heavy parts are imported inside their commands, so an edge box without the hub's
extras still runs ``hallgrid edge``; a hub command there says which extra to
install instead of a traceback. Errors follow one rule for every command
(``edge.cli_errors``), applied here once.
"""

from __future__ import annotations

import importlib.metadata
import re
import sys

import click

from edge import VERSION
from edge.calibrate_cli import calibrate_cmd
from edge.check_cli import check_cmd
from edge.cli import USER_ERRORS, count, edge_cmd, eval_cmd
from edge.cli_errors import RunFailure, fail
from edge.redact import redact
from edge.fit_counts_cli import fit_counts_cmd
from edge.models_cli import models_group
from edge.site_cli import init_cmd, site_schema_cmd
from hub.access_cli import hash_password_cmd
from hub.broker.cli import broker_config_command
from hub.demo import demo_command
from hub.planning.cli import eval_forecast_command, plan_command
from hub.replay.cli import replay_command
from hub.review.cli import review_command
from hub.serve_cli import hub_command
from hub.waits.cli import eval_waits_command


def extra_of(module: str) -> str | None:
    """The optional extra (``hub``, ``export``...) whose requirements provide ``module``, if any."""
    try:
        requires = importlib.metadata.requires("hallgrid") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    wanted = module.split(".")[0].lower().replace("-", "_")
    for req in requires:
        name, _, marker = req.partition(";")
        dist = re.split(r"[<>=!~\[ ]", name.strip(), maxsplit=1)[0].lower().replace("-", "_")
        extra = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", marker)
        if extra and dist == wanted:
            return extra.group(1)
    return None


class HallgridGroup(click.Group):
    """A click group that applies the exit-code rule to every command it runs."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            click.echo(f"error: {redact(exc.format_message())}{hint}", err=True)
            sys.exit(2)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("error: aborted", err=True)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except USER_ERRORS as exc:
            fail(exc)
        except ModuleNotFoundError as exc:
            extra = extra_of(exc.name or "")
            if extra is None:
                raise
            command = " ".join(["hallgrid", *filter(None, [ctx.invoked_subcommand])])
            raise RunFailure(f"'{command}' needs the {extra} extra (module {exc.name!r} is not installed): "
                             f"pip install 'hallgrid[{extra}]'") from None


@click.group(cls=HallgridGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(VERSION, "--version", "-V", prog_name="hallgrid", message="%(prog)s %(version)s")
def cli() -> None:
    """hallgrid: people counting and queue warnings for customer-service halls."""


for command in (count, eval_cmd, hub_command, edge_cmd, models_group, demo_command, calibrate_cmd, check_cmd,
                fit_counts_cmd, replay_command, eval_waits_command, broker_config_command, plan_command,
                eval_forecast_command, review_command, init_cmd, site_schema_cmd, hash_password_cmd):
    cli.add_command(command)


def main() -> None:
    cli()
