"""Shared test fixtures: real footage, real models, and a real Mosquitto on a free port."""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FOOTAGE = SHARED / "footage"
PETS_VIDEO = FOOTAGE / "pets09-s2l1" / "vtest.avi"
PETS_GT = FOOTAGE / "pets09-s2l1" / "gt.txt"
IMAGES = SHARED / "images"
EXAMPLE_SITE = REPO / "calibration" / "examples" / "pets09-s2l1.yaml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    if not found:
        pytest.fail("mosquitto is not installed: run .ci/setup (it installs it with apt)")
    return found


# the sites and cameras the tests publish for; cam7 lets the hub's own refusal of an unknown camera be tested
TEST_SITES = {"hall-1": ("cam1", "cam2", "cam7"), "hall-2": ("cam1", "cam2"), "demo-hall": ("cam1", "cam2")}


class Broker:
    """A Mosquitto process of the test's own, on a free loopback port; can be stopped and started again.

    It runs the configuration ``hallgrid broker-config`` generates (no anonymous clients, an ACL per role):
    accounts ``hub`` (reads every test site, publishes alerts), ``edge-SITE`` (its cameras' topics) and
    ``tickets-SITE``. Every test client logs in as the role it plays.
    """

    def __init__(self, workdir: Path):
        from hub.broker.config import Account, write_broker_config

        self.port = free_port()
        self.workdir = workdir
        accounts = [Account("hub", "hub", tuple(TEST_SITES)),
                    *(Account(f"edge-{s}", "edge", (s,), cams) for s, cams in TEST_SITES.items()),
                    *(Account(f"tickets-{s}", "tickets", (s,)) for s in TEST_SITES)]
        self.files = write_broker_config(workdir / "broker", accounts, port=self.port, persistence=False,
                                         run_as=getpass.getuser(), env={})
        self.conf = self.files.conf
        self.log = workdir / "broker" / "mosquitto.log"
        self.proc: subprocess.Popen | None = None

    def password(self, account: str = "hub") -> str:
        return self.files.account(account).password

    def url_for(self, account: str = "hub") -> str:
        return f"mqtt://{account}:{quote(self.password(account), safe='')}@127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The hub's URL (it reads everything of the test sites)."""
        return self.url_for("hub")

    def login(self, client, account: str = "hub"):
        """Set a paho client's credentials to those of ``account``; returns the client."""
        client.username_pw_set(account, self.password(account))
        return client

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([mosquitto_binary(), "-c", str(self.conf), "-v"], stdout=log,
                                         stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path)
    b.start()
    yield b
    b.stop()


@pytest.fixture(scope="session")
def need_footage():
    if not PETS_VIDEO.is_file():
        pytest.fail(f"the sample footage is missing at {PETS_VIDEO}: tests need ../shared beside the checkout")


CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture(scope="session")
def browser():
    """Debian's real Chromium, headless, driven by Playwright (no Playwright browser download)."""
    from playwright.sync_api import sync_playwright

    if not Path("/usr/bin/chromium").exists():
        pytest.fail("chromium is not installed: run .ci/setup (it installs Debian's chromium with apt)")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


SCREENSHOTS = REPO / "out" / "screenshots"  # kept after the run (ignored by git) so notes can point at them
