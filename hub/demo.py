"""``hallgrid demo``: the whole system on one machine, from the sample footage to alerts on the board.

Broker, edge box (the sample clip, looping), hub (SQLite in a temporary folder),
ticket simulator and the board's web server all run from this one process
(the broker as a child process), and everything is torn down in reverse order
on Ctrl-C, SIGTERM or ``--duration``, so the demo leaves nothing behind.
"""

from __future__ import annotations

import json
import logging
import shutil
import signal
import socket
import tempfile
import threading
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import click

from calibration.site import Site
from edge.cli_errors import RunFailure
from edge.host_port import HOST_PORT, HostPort, listen
from edge.logs import log_options, setup_logging

log = logging.getLogger("hallgrid.demo")

DEFAULT_HTTP = "127.0.0.1:8080"     # taken: the demo moves to a free port unless --http was given
# rule times that follow the simulated day; camera and ticket-feed staleness stay on the wall clock
SCALED_RULES = ("max_wait_s", "service_time_prior_s", "arrival_window_s", "vip_max_wait_s", "min_duration_s",
                "cooldown_s", "long_wait_hold_s", "escalate_after_s", "entrance_dwell_s", "called_grace_s")


@dataclass(frozen=True)
class DemoOptions:
    site_path: Path
    duration: float | None
    speed: float
    http: socket.socket          # already listening: a taken port fails before anything starts
    model: str | None = None
    model_dir: str | None = None
    threads: int | None = None
    login: tuple[str, str] = ("duty", "demo")


def scale_rules(site: Site, speed: float) -> Site:
    """Divide the rule times by ``speed``, so a compressed demo day raises the alerts a real one would."""
    r = site.rules
    return site.model_copy(update={"rules": r.model_copy(update={k: getattr(r, k) / speed for k in SCALED_RULES})})


def _serve_http(app, sock: socket.socket):
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", log_config=None,
                                           timeout_graceful_shutdown=2, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="http")
    thread.start()

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)
    return server, thread, stop


def run_demo(opts: DemoOptions) -> None:
    """Start everything, print where to look, wait for Ctrl-C or the duration, stop everything."""
    import paho.mqtt.client as mqtt

    from calibration.site import load_site
    from edge.cli import detector_config
    from edge.clock import SystemClock
    from edge.service import EdgeConfig, EdgeService
    from hub.access import Access, load_secret
    from hub.api import create_app
    from hub.demo_broker import start_broker
    from hub.service import Hub, _run_ticker
    from hub.simulator import Scenario, TicketSimulator
    from hub.storage import Storage
    from hub.tickets import tickets_topic

    site = scale_rules(load_site(opts.site_path), opts.speed)
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    with ExitStack() as stack:
        stack.callback(lambda: [signal.signal(s, h) for s, h in previous.items()])
        workdir = Path(tempfile.mkdtemp(prefix="hallgrid-demo-"))
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        broker = start_broker(workdir, [site])
        stack.callback(broker.stop)
        clock = SystemClock()

        storage = Storage(f"sqlite:///{workdir / 'hub.db'}")
        stack.callback(storage.close)
        hub = Hub([site], storage, clock=clock, mqtt_url=broker.settings("hub"), client_id="hallgrid-demo-hub")
        hub.start()
        stack.callback(hub.stop)
        ticker_stop = threading.Event()
        threading.Thread(target=_run_ticker, args=(hub, 1.0, ticker_stop), daemon=True, name="ticker").start()
        stack.callback(ticker_stop.set)

        access = Access.for_sites([site], {}, load_secret(workdir / "hub.secret"))
        _, _, stop_http = _serve_http(create_app(hub, access), opts.http)
        stack.callback(stop_http)

        edge = EdgeService(EdgeConfig(site=site, cameras=list(site.cameras), broker=broker.settings(f"edge-{site.id}"),
                                      detector=detector_config(site, opts.model, None, opts.threads, opts.model_dir),
                                      outbox_path=workdir / "outbox.db", heartbeat_s=5.0))
        edge.start()
        stack.callback(edge.stop)

        tickets = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="hallgrid-demo-tickets")
        broker.settings(f"tickets-{site.id}").apply(tickets)
        tickets.connect("127.0.0.1", broker.port)
        tickets.loop_start()
        stack.callback(lambda: (tickets.loop_stop(), tickets.disconnect()))
        topic = tickets_topic(site.id)
        sim = TicketSimulator(Scenario.demo_hall(), clock, lambda e: tickets.publish(topic, json.dumps(e), qos=1),
                              speed=opts.speed)

        user, password = opts.login
        click.echo(f"hallgrid demo: site {site.id}, broker {broker.kind} on {broker.url}"
                   f"{' (accounts and ACL of `hallgrid broker-config`)' if broker.files else ' (anonymous)'}, "
                   f"edge {edge.detector.name} on {site.cameras[0].source}, speed x{opts.speed:g}")
        host, port = opts.http.getsockname()[:2]
        click.echo(f"board: http://{HostPort(host, port).shown}/board   login: {user} / {password} "
                   f"(viewer: guest / {password})")
        click.echo("Ctrl-C stops the demo" + (f"; it stops by itself after {opts.duration:g} s"
                                              if opts.duration else ""), nl=True)
        started = clock.monotonic()
        while not stop.wait(0.2):
            sim.step()
            if opts.duration and clock.monotonic() - started >= opts.duration:
                break
        click.echo("stopping the demo ...")
    click.echo("demo stopped")


def board_socket(http: HostPort, explicit: bool) -> tuple[socket.socket, str | None]:
    """The board's listening socket: ``http``, or when that default port is taken, a free one (and a note
    saying so); a port the user asked for explicitly fails at once (exit 1) instead."""
    try:
        return listen(http), None
    except OSError as exc:
        if explicit:
            raise RunFailure(f"--http {http}: {exc.strerror or exc}") from None
        sock = listen(HostPort(http.host, 0))
        return sock, (f"port {http.port} is taken ({exc.strerror or exc}): the board uses port "
                      f"{sock.getsockname()[1]} instead")


@click.command("demo")
@click.option("--site", "site_path", type=click.Path(dir_okay=False, exists=True), default=None,
              show_default="calibration/examples/demo-hall.yaml", help="Demo site (services, counters, users).")
@click.option("--duration", type=click.FloatRange(0, min_open=True), help="Stop after this many seconds.")
@click.option("--speed", default=1.0, show_default=True, type=click.FloatRange(0.1, 60),
              help="Run the simulated ticket day (and the rule times) this many times faster.")
@click.option("--http", "http", type=HOST_PORT, default=DEFAULT_HTTP, show_default=True,
              help="HOST:PORT of the board (default: a free port when 8080 is taken).")
@click.option("--model", help="Model name from the registry or an .onnx path.")
@click.option("--model-dir", envvar="HALLGRID_MODEL_DIR", help="Folder searched first for model files.")
@click.option("--threads", type=click.IntRange(0), help="onnxruntime threads (default: the site's).")
@log_options("WARNING")
@click.pass_context
def demo_command(ctx: click.Context, site_path: str | None, duration: float | None, speed: float, http: HostPort,
                 model: str | None, model_dir: str | None, threads: int | None, log_level: str,
                 log_format: str) -> None:
    """Everything on one machine: broker, edge box on the sample clip, hub, ticket simulator and the board."""
    from importlib.resources import files

    from hub.demo_broker import BrokerError

    setup_logging(log_level, log_format)
    path = Path(site_path) if site_path else Path(str(files("calibration") / "examples" / "demo-hall.yaml"))
    sock, note = board_socket(http, ctx.get_parameter_source("http") is not click.core.ParameterSource.DEFAULT)
    if note:
        click.echo(note)
    try:
        run_demo(DemoOptions(path, duration, speed, sock, model, model_dir, threads))
    except (BrokerError, OSError, RuntimeError) as exc:
        raise RunFailure(str(exc)) from None
    finally:
        sock.close()
