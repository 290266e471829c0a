"""The ``hallgrid`` command: one entry point for every part (edge, calibration, models, hub).

Heavy parts are imported inside their commands, so an edge box without the hub's
extras still runs ``hallgrid edge``.
"""

from __future__ import annotations

import click

from edge.cli import count, edge_cmd, eval_cmd
from edge.models_cli import models_group
from edge.calibrate_cli import calibrate_cmd
from edge.check_cli import check_cmd
from edge.fit_counts_cli import fit_counts_cmd
from hub.broker.cli import broker_config_command
from hub.replay.cli import replay_command
from hub.demo import demo_command
from hub.planning.cli import eval_forecast_command, plan_command
from hub.review.cli import review_command
from hub.service import hub_command
from hub.waits.cli import eval_waits_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """hallgrid: people counting and queue warnings for customer-service halls."""


cli.add_command(count)
cli.add_command(eval_cmd)
cli.add_command(hub_command)
cli.add_command(edge_cmd)
cli.add_command(models_group)
cli.add_command(demo_command)
cli.add_command(calibrate_cmd)
cli.add_command(check_cmd)
cli.add_command(fit_counts_cmd)
cli.add_command(replay_command)
cli.add_command(eval_waits_command)
cli.add_command(broker_config_command)
cli.add_command(plan_command)
cli.add_command(eval_forecast_command)
cli.add_command(review_command)


def main() -> None:
    cli()
