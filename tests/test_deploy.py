"""The deployment files (Dockerfile, .dockerignore, compose.yaml, deploy/) checked without a Docker daemon.

What can be proven here is proven with the real parts: the files are parsed
(the Dockerfile by instruction, compose with a YAML parser), the broker
configuration is run by a real Mosquitto, and each image's entry point and
HEALTHCHECK command are run as the same commands, with the same environment, in
the venv.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from conftest import EXAMPLE_SITE, REPO, free_port, mosquitto_binary

HALLGRID = REPO / ".venv" / "bin" / "hallgrid"


# --- the Dockerfile ------------------------------------------------------------------------------------
def dockerfile() -> tuple[dict[str, str], dict[str, dict]]:
    """(global ARG defaults, stages by name: parent image/stage and their instructions)."""
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    args: dict[str, str] = {}
    stages: dict[str, dict] = {}
    current = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        op, _, rest = line.partition(" ")
        op = op.upper()
        if op == "FROM":
            m = re.fullmatch(r"(\S+)\s+AS\s+(\S+)", rest.strip(), re.I)
            assert m, f"every stage is named: FROM {rest}"
            base = re.sub(r"\$\{(\w+)\}", lambda g: args[g[1]], m[1])
            current = stages[m[2]] = {"from": base, "ops": []}
        elif op == "ARG" and current is None:
            name, _, default = rest.strip().partition("=")
            args[name] = default
        else:
            assert current is not None, f"{op} before any FROM"
            current["ops"].append((op, rest.strip()))
    return args, stages


def chain(stages: dict[str, dict], name: str) -> list[tuple[str, str]]:
    """A stage's instructions with those of the stages it is built FROM first."""
    stage = stages[name]
    parent = chain(stages, stage["from"]) if stage["from"] in stages else []
    return parent + stage["ops"]


def env_of(ops: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for op, rest in ops:
        if op == "ENV":
            env.update(kv.split("=", 1) for kv in shlex.split(rest))
    return env


def healthcheck_cmd(ops: list[tuple[str, str]]) -> list[str]:
    (rest,) = [r for op, r in ops if op == "HEALTHCHECK"][-1:]
    return json.loads(re.search(r"\bCMD\s+(\[.*\])\s*$", rest)[1])


def test_dockerfile_has_slim_pinned_nonroot_edge_and_hub_targets_with_healthcheck_and_labels():
    _, stages = dockerfile()
    assert {"edge", "hub"} <= set(stages)
    for stage in stages.values():
        if stage["from"] not in stages:       # an image from a registry: an exact version or a digest
            assert re.search(r"(:\d+\.\d+\.\d+[-\w.]*$)|(@sha256:[0-9a-f]{64}$)", stage["from"]), stage["from"]
            assert "slim" in stage["from"] or "@sha256:" in stage["from"]
    for target in ("edge", "hub"):
        ops = chain(stages, target)
        users = [r for op, r in ops if op == "USER"]
        assert users and users[-1] not in ("root", "0") and not users[-1].startswith("0:"), target
        assert [r for op, r in ops if op == "HEALTHCHECK"], f"{target} has a HEALTHCHECK"
        entry = json.loads([r for op, r in ops if op == "ENTRYPOINT"][-1])
        assert entry == ["hallgrid", target]
        labels = " ".join(r for op, r in ops if op == "LABEL")
        for key in ("title", "description", "version", "licenses"):
            assert f"org.opencontainers.image.{key}=" in labels, key
        assert env_of(ops)["HALLGRID_STATE_DIR"] == "/state"
    hub_install = " ".join(r for op, r in stages["hub"]["ops"] if op == "RUN")
    edge_install = " ".join(r for op, r in stages["edge"]["ops"] if op == "RUN")
    assert "[hub]" in hub_install and "[hub]" not in edge_install, "the edge image has no hub extras"


def test_build_context_leaves_out_venv_outputs_git_and_caches_but_not_what_the_wheel_needs():
    patterns = [p.strip() for p in (REPO / ".dockerignore").read_text().splitlines()
                if p.strip() and not p.startswith("#")]
    for needed in (".venv/", ".git/", "out/", "**/__pycache__/", "*.onnx"):
        assert needed in patterns, needed
    _, stages = dockerfile()
    copied = [r.split()[0] for op, r in stages["wheel"]["ops"] if op == "COPY"]
    for src in copied:
        assert (REPO / src).exists(), src
        assert not any(src.rstrip("/") == p.rstrip("/") for p in patterns), f"{src} is copied but ignored"


# --- compose.yaml -----------------------------------------------------------------------------------------
def compose() -> dict:
    return YAML(typ="safe").load((REPO / "compose.yaml").read_text())


SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$", re.I)


def test_compose_runs_broker_database_edge_and_hub_with_health_gates_and_no_inline_secrets():
    doc = compose()
    services = doc["services"]
    assert set(services) == {"mosquitto", "postgres", "edge", "hub"}
    _, stages = dockerfile()
    for name, svc in services.items():
        target = (svc.get("build") or {}).get("target")
        assert "healthcheck" in svc or (target and any(op == "HEALTHCHECK" for op, _ in chain(stages, target))), name
        if "image" in svc and not target:
            assert re.search(r":\d+\.\d+(\.\d+)?[-\w.]*$", svc["image"]), f"{name}: pinned image"
        for key, value in (svc.get("environment") or {}).items():
            assert not SECRET_NAME.search(key), f"{name}: {key} is set inline"
            assert not re.search(r"://[^/@\s]+:[^/@\s]+@", str(value)), f"{name}: credentials in {key}"
    assert services["edge"]["depends_on"] == {"mosquitto": {"condition": "service_healthy"}}
    assert services["hub"]["depends_on"] == {"mosquitto": {"condition": "service_healthy"},
                                             "postgres": {"condition": "service_healthy"}}
    assert services["hub"]["environment"]["HALLGRID_MQTT"] == services["edge"]["environment"]["HALLGRID_MQTT"] \
        == "mqtt://mosquitto:1883"
    named = set(doc["volumes"])
    for name, svc in services.items():
        for vol in svc.get("volumes", []):
            source = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", vol).split(":")[0]     # the default of ${VAR:-default}
            if source in ("./deploy/broker", "./deploy/site.yaml"):
                out = source.removeprefix("./deploy/")
                assert f"--out {out}" in (REPO / "deploy" / "prepare.sh").read_text(), "generated by prepare.sh"
            elif source.startswith("./"):
                assert (REPO / source).exists(), f"{name}: {source} is in the repository"
            elif not source.startswith(("/", "~")):
                assert source in named, f"{name}: volume {source} is declared"
    assert services["hub"]["ports"] == ["127.0.0.1:8080:8080"], "the board on the host's loopback only"


def test_compose_secrets_are_files_prepare_writes_and_git_ignores():
    prepare = (REPO / "deploy" / "prepare.sh").read_text()
    env_files = [f for svc in compose()["services"].values() for f in svc.get("env_file", [])]
    assert len(env_files) == 5
    for path in env_files:
        rel = Path(path).relative_to("deploy").as_posix()
        assert rel.split("/")[-1].replace("edge-demo-hall", "") in prepare or rel.startswith("broker/"), path
        ignored = subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO)
        assert ignored.returncode == 0, f"{path} is ignored by git"
    assert "umask 077" in prepare
    for generated in ("deploy/site.yaml", "deploy/duty-password", "deploy/broker/passwd"):
        assert subprocess.run(["git", "check-ignore", "-q", generated], cwd=REPO).returncode == 0, generated


# --- the broker configuration, run by a real Mosquitto -----------------------------------------------------------
def test_compose_broker_config_refuses_anonymous_clients_and_its_healthcheck_passes(tmp_path):
    main_port, health_port = free_port(), free_port()
    broker_dir = tmp_path / "broker"
    (broker_dir / "data").mkdir(parents=True)
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(broker_dir / "passwd"), "hub", "s3cret-pw"], check=True,
                   capture_output=True)
    (broker_dir / "acl").write_text("user hub\ntopic readwrite hallgrid/#\n")
    conf = (REPO / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
    conf = (conf.replace("/broker/", f"{broker_dir}/").replace("/mosquitto/config/", f"{REPO}/deploy/mosquitto/")
            .replace("listener 1883 0.0.0.0", f"listener {main_port} 127.0.0.1")
            .replace("listener 1880 127.0.0.1", f"listener {health_port} 127.0.0.1"))
    assert str(main_port) in conf and str(health_port) in conf
    if os.geteuid() == 0:    # compose runs it as the files' owner; started as root, it would switch to 'mosquitto'
        conf += "user root\n"
    (tmp_path / "mosquitto.conf").write_text(conf)
    proc = subprocess.Popen([mosquitto_binary(), "-c", str(tmp_path / "mosquitto.conf")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        test = compose()["services"]["mosquitto"]["healthcheck"]["test"]
        assert test[0] == "CMD"
        cmd = [a.replace("$$", "$").replace("1880", str(health_port)) for a in test[1:]]
        deadline = time.monotonic() + 30
        while subprocess.run(cmd, capture_output=True).returncode != 0:
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "the broker's healthcheck never passed"
            time.sleep(0.3)
        sub = ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(main_port), "-t", "hallgrid/#", "-C", "1", "-W", "3"]
        anonymous = subprocess.run(sub, capture_output=True, text=True)
        assert anonymous.returncode != 0 and "not authori" in (anonymous.stderr + anonymous.stdout).lower()
        pub = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(main_port), "-u", "hub", "-P",
                              "s3cret-pw", "-t", "hallgrid/x", "-m", "1", "-r"], capture_output=True, text=True)
        assert pub.returncode == 0, pub.stderr
        got = subprocess.run(sub + ["-u", "hub", "-P", "s3cret-pw"], capture_output=True, text=True)
        assert got.returncode == 0 and got.stdout.strip() == "1"
        anon_health = subprocess.run(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(health_port), "-t", "hallgrid/#",
                                      "-C", "1", "-W", "2"], capture_output=True, text=True)
        assert anon_health.stdout == "", "the health listener reads nothing but the uptime"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# --- the images' entry points, as the same commands in the venv ------------------------------------------------
def image_env(target: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment the image sets (ENV of its stages), with the container's paths moved to tmp_path."""
    _, stages = dockerfile()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HALLGRID_")}
    env.update(env_of(chain(stages, target)))
    env.pop("HALLGRID_MODEL_DIR")           # /models is the image's mount; here the registry finds shared/
    if "HALLGRID_METRICS_ADDR" in env:
        env["HALLGRID_METRICS_ADDR"] = "127.0.0.1"      # tests bind loopback only; the image binds 0.0.0.0
    env.update(HALLGRID_STATE_DIR=str(tmp_path / "state"), **extra)
    return env


def entry_and_health(target: str) -> tuple[list[str], list[str]]:
    _, stages = dockerfile()
    ops = chain(stages, target)
    entry = json.loads([r for op, r in ops if op == "ENTRYPOINT"][-1])
    health = healthcheck_cmd(ops)
    assert entry[0] == "hallgrid" and health[0] == "python"
    return [str(HALLGRID), *entry[1:]], [sys.executable, *health[1:]]


def wait_healthy(health: list[str], env: dict[str, str], proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while subprocess.run(health, env=env, capture_output=True).returncode != 0:
        assert proc.poll() is None, f"the service exited: {proc.communicate()[1][-2000:]}"
        assert time.monotonic() < deadline, "the image's HEALTHCHECK never passed"
        time.sleep(0.5)


def test_hub_image_entry_point_serves_from_environment_alone_and_its_healthcheck_follows_the_broker(tmp_path,
                                                                                                       broker):
    port = free_port()
    env = image_env("hub", tmp_path, HALLGRID_HTTP=f"127.0.0.1:{port}", HALLGRID_SITE=str(EXAMPLE_SITE),
                    HALLGRID_MQTT=broker.url, HALLGRID_TOKEN="t" * 24)
    entry, health = entry_and_health("hub")
    proc = subprocess.Popen(entry, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_healthy(health, env, proc, 60)
        assert (tmp_path / "state" / "hub.db").is_file(), "the database is in the state folder"
        assert not list(tmp_path.glob("*.db")), "nothing in the working directory"
        broker.stop()
        deadline = time.monotonic() + 30
        while subprocess.run(health, env=env, capture_output=True).returncode == 0:
            assert time.monotonic() < deadline, "still healthy without a broker"
            time.sleep(0.3)
        broker.start()
        wait_healthy(health, env, proc, 60)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    assert proc.returncode == 0


@pytest.mark.usefixtures("need_footage")
def test_edge_image_entry_point_runs_from_environment_alone_and_its_healthcheck_passes(tmp_path, broker):
    port = free_port()
    env = image_env("edge", tmp_path, HALLGRID_METRICS_PORT=str(port), HALLGRID_SITE=str(EXAMPLE_SITE),
                    HALLGRID_MQTT=broker.url, HALLGRID_LOG_FORMAT="json")
    entry, health = entry_and_health("edge")
    proc = subprocess.Popen(entry, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_healthy(health, env, proc, 90)
        assert list((tmp_path / "state").glob("outbox-*.db")), "the outbox is in the state folder"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-2000:]
    logs = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert logs and all({"ts", "level", "logger", "message"} <= set(r) for r in logs)
    assert any("connected to" in r["message"] for r in logs)


def test_prepare_writes_every_file_compose_reads_with_working_secrets(tmp_path):
    has_broker_config = subprocess.run([str(HALLGRID), "broker-config", "--help"], capture_output=True).returncode == 0
    if not has_broker_config:
        pytest.skip("deploy/prepare.sh needs `hallgrid broker-config` (the broker's accounts), not in this tree")
    import shutil

    from hub.access import users_from_env, verify_password

    deploy = tmp_path / "deploy"
    shutil.copytree(REPO / "deploy", deploy)
    env = {**os.environ, "HALLGRID": str(HALLGRID)}
    got = subprocess.run(["sh", str(deploy / "prepare.sh")], capture_output=True, text=True, env=env, timeout=300)
    assert got.returncode == 0, got.stderr
    assert "duty-password" in got.stdout and (deploy / "duty-password").read_text().strip() not in got.stdout
    check = subprocess.run([str(HALLGRID), "check", str(deploy / "site.yaml"), "--offline"], capture_output=True,
                           text=True)
    assert check.returncode == 0, check.stderr
    services = compose()["services"]
    for path in [f for svc in services.values() for f in svc.get("env_file", [])]:
        file = tmp_path / path
        assert file.is_file() and file.stat().st_mode & 0o077 == 0, path
    values = dict(line.split("=", 1) for f in ("hub-users.env", "hub-db.env", "postgres.env")
                  for line in (deploy / f).read_text().splitlines())
    (user,) = users_from_env({"HALLGRID_USERS": values["HALLGRID_USERS"].strip("'")})
    assert user.name == "duty" and verify_password((deploy / "duty-password").read_text().strip(), user.password_hash)
    assert f":{values['POSTGRES_PASSWORD']}@postgres:5432/" in values["HALLGRID_DB"]
    assert (deploy / "broker" / "passwd").is_file() and (deploy / "broker" / "acl").is_file()
