"""Shared test fixtures: real footage, real models, a real Mosquitto and a real PostgreSQL on free ports."""

from __future__ import annotations

import getpass
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
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
TEST_SITES = {"hall-1": ("cam1", "cam2", "cam7"), **{f"hall-{i}": ("cam1", "cam2") for i in range(2, 7)},
              "demo-hall": ("cam1", "cam2")}


class Broker:
    """A Mosquitto process of the test's own, on a free loopback port; can be stopped and started again.

    It runs the configuration ``hallgrid broker-config`` generates (no anonymous clients, an ACL per role):
    accounts ``hub`` (reads every test site, publishes alerts), ``edge-SITE`` (its cameras' topics),
    ``tickets-SITE`` and ``tickets`` (a central ticket system feeding every site). Every test client logs
    in as the role it plays.
    """

    def __init__(self, workdir: Path):
        from hub.broker.config import Account, write_broker_config

        self.port = free_port()
        self.workdir = workdir
        accounts = [Account("hub", "hub", tuple(TEST_SITES)),
                    *(Account(f"edge-{s}", "edge", (s,), cams) for s, cams in TEST_SITES.items()),
                    *(Account(f"tickets-{s}", "tickets", (s,)) for s in TEST_SITES),
                    Account("tickets", "tickets", tuple(TEST_SITES))]
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


def postgres_bindir() -> Path:
    """Debian's PostgreSQL server binaries (the newest installed major version)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if not found and shutil.which("initdb"):
        found = [os.path.realpath(shutil.which("initdb"))]
    if not found:
        pytest.fail("PostgreSQL is not installed: run .ci/setup (it installs Debian's postgresql with apt)")
    return Path(found[-1]).parent


class PostgresCluster:
    """A throw-away PostgreSQL cluster: ``initdb`` in a temporary folder, one server on a free loopback port.

    initdb refuses to run as root, so under root (CI containers) the cluster belongs to the
    unprivileged ``postgres`` account that Debian's package creates. Durability is switched
    off (fsync) because nothing here outlives the test session.
    """

    def __init__(self):
        self.bindir = postgres_bindir()
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="hallgrid-pg-"))
        self.run_as: dict = {}
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                pytest.fail("running as root and there is no 'postgres' account to own the test cluster: "
                            "run .ci/setup (Debian's postgresql package creates it)")
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
            self.run_as = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}
        self.proc: subprocess.Popen | None = None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://hallgrid@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        data = self.dir / "data"
        subprocess.run([str(self.bindir / "initdb"), "-D", str(data), "-U", "hallgrid", "--auth=trust",
                        "-E", "UTF8", "--no-locale", "--no-sync"], check=True, capture_output=True,
                       cwd=self.dir, **self.run_as)
        self.log = open(self.dir / "server.log", "wb")
        self.proc = subprocess.Popen(
            [str(self.bindir / "postgres"), "-D", str(data), "-p", str(self.port), "-k", str(self.dir),
             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
             "-c", "full_page_writes=off", "-c", "max_connections=200", "-c", "shared_buffers=32MB"],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=self.dir, **self.run_as)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited: {(self.dir / 'server.log').read_text()[-2000:]}")
            if subprocess.run([str(self.bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)]
                              ).returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError("postgres did not start within 30 s")

    def execute(self, sql: str) -> None:
        """One statement outside a transaction (CREATE/DROP DATABASE need that)."""
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user="hallgrid", dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(sql)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()      # SIGTERM: "smart" shutdown; the data folder goes anyway
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_cluster():
    cluster = PostgresCluster()
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def postgres_url(postgres_cluster):
    """A fresh, empty database on the session's PostgreSQL: its SQLAlchemy URL (psycopg 3 driver)."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    postgres_cluster.execute(f"CREATE DATABASE {name}")
    yield postgres_cluster.url(name)
    postgres_cluster.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """The hub's database, once as a SQLite file and once as a real PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hub.db'}"
    return request.getfixturevalue("postgres_url")


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
