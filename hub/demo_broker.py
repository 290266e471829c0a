"""An MQTT broker of the demo's own: Mosquitto on a free loopback port, else amqtt in-process if installed.

The demo must run on one machine without setup beyond ``.ci/setup``, and must
not collide with a broker already on 1883, so it starts its own on a free port
and stops it at the end. Mosquitto runs the configuration ``hallgrid
broker-config`` writes (no anonymous clients, an ACL per role), so the demo
shows the same locked-down broker a hall runs; the amqtt fallback (only when
Mosquitto is not installed) is anonymous and says so.
"""

from __future__ import annotations

import getpass
import logging
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from edge.mqtt_url import BrokerSettings

if TYPE_CHECKING:
    from hub.broker.config import BrokerFiles

log = logging.getLogger("hallgrid.demo")


class BrokerError(RuntimeError):
    """No broker could be started; says what to install."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


@dataclass
class DemoBroker:
    port: int
    kind: str
    proc: subprocess.Popen | None = None
    files: BrokerFiles | None = None       # the accounts, when Mosquitto runs
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def settings(self, account: str) -> BrokerSettings:
        """How to connect as ``account`` (hub, edge-SITE, tickets-SITE); anonymous on amqtt."""
        if self.files is None:
            return BrokerSettings("127.0.0.1", self.port)
        return BrokerSettings("127.0.0.1", self.port, username=account, password=self.files.account(account).password)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def mosquitto_path() -> str | None:
    return shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)


def start_broker(workdir: Path, sites: list | None = None) -> DemoBroker:
    port = free_port()
    binary = mosquitto_path()
    if binary:
        from hub.broker.config import plan_accounts, write_broker_config

        files = write_broker_config(workdir / "broker", plan_accounts(sites or []), port=port, persistence=False,
                                    run_as=getpass.getuser(), env={})
        # own session: the terminal's Ctrl-C reaches the demo, which stops the broker last, in order
        proc = subprocess.Popen([binary, "-c", str(files.conf)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        broker = DemoBroker(port, "mosquitto", proc=proc, files=files)
        if not _wait_port(port, 10):
            broker.stop()
            raise BrokerError("mosquitto did not start")
        return broker
    return _start_amqtt(port)


def _start_amqtt(port: int) -> DemoBroker:
    """The optional pure-Python fallback (``pip install amqtt``), run on its own event loop thread."""
    try:
        import asyncio

        from amqtt.broker import Broker
    except ImportError:
        raise BrokerError("no MQTT broker: install Mosquitto (.ci/setup does) or `pip install amqtt`") from None
    broker = DemoBroker(port, "amqtt")
    log.warning("Mosquitto is not installed: the demo's amqtt broker takes anonymous clients (a hall's broker "
                "must not; see `hallgrid broker-config`)")

    def run() -> None:
        async def main() -> None:
            b = Broker({"listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
                        "auth": {"allow-anonymous": True, "plugins": ["auth_anonymous"]}, "topic-check": {"enabled": False}})
            await b.start()
            while not broker._stop.is_set():
                await asyncio.sleep(0.2)
            await b.shutdown()
        asyncio.run(main())

    broker._thread = threading.Thread(target=run, daemon=True, name="amqtt")
    broker._thread.start()
    if not _wait_port(port, 10):
        broker.stop()
        raise BrokerError("amqtt did not start")
    return broker
