"""``hallgrid broker-config``: write a locked-down Mosquitto configuration for the given sites."""

from __future__ import annotations

from pathlib import Path

import click

from edge.contract import DEFAULT_PREFIX


@click.command("broker-config")
@click.option("--site", "site_paths", multiple=True, required=True, help="Site file (repeat for several halls).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder to write into.")
@click.option("--hub", "hubs", multiple=True, metavar="NAME=SITE,SITE",
              help="A hub account and the sites it serves (repeat; default: one 'hub' for every site).")
@click.option("--edge", "edges", multiple=True, metavar="NAME=SITE:CAM,CAM",
              help="An edge box account and its cameras (repeat; default: 'edge-SITE' with all cameras).")
@click.option("--prefix", default=DEFAULT_PREFIX, show_default=True, help="MQTT topic prefix.")
@click.option("--listen", default="127.0.0.1:1883", show_default=True, help="HOST:PORT of the broker's listener.")
@click.option("--no-persistence", is_flag=True, help="Keep sessions and retained messages in memory only.")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), help="Listener certificate (mqtts).")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), help="Listener key.")
@click.option("--tls-ca", type=click.Path(exists=True, dir_okay=False),
              help="CA of client certificates: with it, clients must present one.")
@click.option("--run-as", help="User Mosquitto runs as when started as root (default: its own 'mosquitto'); "
              "that user must be able to read OUT/passwd.")
def broker_config_command(site_paths, out_dir, hubs, edges, prefix, listen, no_persistence, tls_cert, tls_key,
                          tls_ca, run_as) -> None:
    """Mosquitto config, password file and ACL: no anonymous clients, each role only its own topics.

    Passwords come from HALLGRID_BROKER_PASSWORD_<ACCOUNT> (e.g. ..._EDGE_HALL_1), else an earlier run's
    credentials file, else are generated; each account's credentials go to OUT/credentials/ACCOUNT.env (0600),
    ready for the box's environment (HALLGRID_MQTT_USERNAME, HALLGRID_MQTT_PASSWORD). Nothing secret is printed.
    """
    from calibration.site import SiteError, load_site
    from hub.broker.config import BrokerConfigError, plan_accounts, write_broker_config

    if bool(tls_cert) != bool(tls_key):
        raise click.UsageError("--tls-cert and --tls-key go together")
    host, _, port = listen.rpartition(":")
    if not port.isdigit():
        raise click.BadParameter(f"{listen!r}: expected HOST:PORT", param_hint="--listen")
    try:
        accounts = plan_accounts([load_site(p) for p in site_paths], list(hubs), list(edges))
        files = write_broker_config(Path(out_dir), accounts, prefix, int(port), host or "127.0.0.1",
                                    not no_persistence, tls_cert=tls_cert, tls_key=tls_key, tls_ca=tls_ca,
                                    run_as=run_as)
    except (SiteError, BrokerConfigError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {files.conf}, {files.folder / 'passwd'} and {files.folder / 'acl'}")
    for a in files.accounts:
        scope = f"cameras {', '.join(a.cameras)} of {a.site_ids[0]}" if a.cameras else ", ".join(a.site_ids)
        click.echo(f"  {a.role:7s} {a.name}: {scope}; credentials {files.credentials(a.name)}")
    click.echo(f"run: mosquitto -c {files.conf}")
