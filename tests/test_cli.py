"""The ``hallgrid`` command as a person meets it: one exit-code rule, one-line errors, the installer's commands.

Every broken input the issue names is run as the real command (a subprocess, so
the exit status and stderr are exactly what a shell sees): exit status 2, each
problem on one ``error:`` line with file, line and fix, and no traceback.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

from hub.cli import cli
from conftest import EXAMPLE_SITE, PETS_VIDEO, REPO, free_port

HALLGRID = REPO / ".venv" / "bin" / "hallgrid"
DEMO_SITE = REPO / "calibration" / "examples" / "demo-hall.yaml"


def run(*args: str, cwd: Path | None = None, env: dict | None = None, stdin: str | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("HALLGRID_")}
    return subprocess.run([str(HALLGRID), *args], capture_output=True, text=True, cwd=cwd, env={**base, **(env or {})},
                          input=stdin, timeout=timeout)


def assert_input_error(got: subprocess.CompletedProcess, *lines: str) -> None:
    """Exit 2, no traceback, and stderr exactly these ``error:`` lines (regex each)."""
    assert got.returncode == 2, (got.returncode, got.stderr)
    assert "Traceback" not in got.stderr
    err = [line for line in got.stderr.splitlines() if not line.startswith("warning: no broker account")]
    assert len(err) == len(lines), err
    for line, pattern in zip(err, lines):
        assert re.fullmatch(pattern, line), (line, pattern)


def test_version():
    got = run("--version")
    assert got.returncode == 0 and got.stdout.strip() == "hallgrid 0.1.0"


def test_hub_with_a_malformed_http_address_is_a_usage_error_before_any_file_is_made(tmp_path):
    env = {"HALLGRID_STATE_DIR": str(tmp_path / "state")}
    got = run("hub", "--site", str(DEMO_SITE), "--http", "nonsense", cwd=tmp_path, env=env)
    assert_input_error(got, r"error: Invalid value for '--http': 'nonsense' is not HOST:PORT \(e\.g\. 127\.0\.0\.1:8080 "
                            r"or 0\.0\.0\.0:8080\) \(see 'hallgrid hub --help'\)")
    assert list(tmp_path.iterdir()) == [], "nothing created: no database, no state folder"
    env["HALLGRID_HTTP"] = "127.0.0.1:99999"
    assert_input_error(run("hub", "--site", str(DEMO_SITE), cwd=tmp_path, env=env), r"error: Invalid value for "
                       r"'--http': '127\.0\.0\.1:99999' is not HOST:PORT .*")


@pytest.mark.parametrize("args, pattern", [
    (["nosuch"], r"error: No such command 'nosuch'\. \(see 'hallgrid --help'\)"),
    (["hub"], r"error: Missing option '--site'\. \(see 'hallgrid hub --help'\)"),
    (["count"], r"error: Missing argument 'VIDEO'\. \(see 'hallgrid count --help'\)"),
    (["edge", "--site", "x.yaml", "--batch", "0"], r"error: Invalid value for '--batch': 0 is not in the range "
     r"x>=1\. \(see 'hallgrid edge --help'\)"),
])
def test_usage_errors_are_one_line_with_status_2(args, pattern):
    assert_input_error(run(*args), pattern)


def broken(tmp_path: Path, old: str, new: str) -> Path:
    text = DEMO_SITE.read_text()
    assert old in text
    path = tmp_path / "hall.yaml"
    path.write_text(text.replace(old, new, 1))
    return path


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


@pytest.mark.parametrize("command", [["check", "{site}", "--offline"], ["hub", "--site", "{site}"],
                                     ["edge", "--site", "{site}"], ["replay", str(PETS_VIDEO), "--site", "{site}",
                                                                     "--out", "{tmp}/r"]])
def test_a_timezone_outside_the_tz_database_is_refused_by_every_command_with_the_likely_one(tmp_path, command):
    site = broken(tmp_path, "timezone: Asia/Shanghai", "timezone: Asia/Beijing")
    got = run(*[a.format(site=site, tmp=tmp_path) for a in command], cwd=tmp_path,
              env={"HALLGRID_STATE_DIR": str(tmp_path / "state")})
    n = line_of(site, "timezone:")
    assert_input_error(got, rf"error: {re.escape(str(site))}:{n}: timezone: 'Asia/Beijing' is not in the tz "
                            r"database; did you mean 'Asia/Shanghai'\?")
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize("old, new, needle, message", [
    ("        capacity: 4\n", "        capacty: 4\n", "capacty",
     r"cameras\[0\]\.zones\[0\]\.capacty: unknown field 'capacty'; did you mean 'capacity'\? \(fields here: id, name, "
     r"type, grid_cell, capacity, polygon\)"),
    ("type: waiting", "type: waitng", "waitng",
     r"cameras\[0\]\.zones\[1\]\.type: 'waitng' is not one of entrance, lobby_desk, ticket_kiosk, waiting, counter, "
     r"self_service, vip, other; did you mean 'waiting'\?"),
    ("polygon: [[0.62, 0.24], [1.0, 0.24], [1.0, 0.62], [0.62, 0.62]]", "polygon: [[0.62, 0.24], [1.0, 0.24]]",
     "[[0.62, 0.24], [1.0, 0.24]]", r"cameras\[0\]\.zones\[0\]\.polygon: needs at least 3 item\(s\), has 2"),
    ("capacity: 4", "capacity: lots", "lots", r"cameras\[0\]\.zones\[0\]\.capacity: must be a whole number "
                                              r"\(got 'lots'\)"),
    ("detect_fps: 2", "detect_fps: 0", "detect_fps", r"cameras\[0\]\.detect_fps: must be more than 0\.0 \(got 0\)"),
    ("id: demo-hall", "id: demo hall", "demo hall", r"id: 'demo hall' may use only letters, digits, '_' and '-' "
                                                    r"\(up to 64, starting with a letter or digit\): it becomes part "
                                                    r"of MQTT topics"),
])
def test_site_file_mistakes_name_file_line_field_and_fix_in_plain_words(tmp_path, old, new, needle, message):
    site = broken(tmp_path, old, new)
    got = run("check", str(site), "--offline")
    assert_input_error(got, rf"error: {re.escape(str(site))}:{line_of(site, needle)}: {message}")
    assert "after validation" not in got.stderr and "Value error" not in got.stderr
    assert "Input should" not in got.stderr


def test_missing_site_file_and_bad_broker_and_database_urls_are_input_errors(tmp_path):
    assert_input_error(run("check", str(tmp_path / "none.yaml"), "--offline"),
                       rf"error: {re.escape(str(tmp_path / 'none.yaml'))}: cannot read site file: No such file or "
                       r"directory")
    assert_input_error(run("hub", "--site", str(DEMO_SITE), "--mqtt", "http://broker"),
                       r"error: broker URL 'http://broker' has scheme 'http'; expected mqtt://.*")
    got = run("hub", "--site", str(DEMO_SITE), "--db", "not a url", "--http", f"127.0.0.1:{free_port()}", cwd=tmp_path)
    assert_input_error(got, r"error: --db \(HALLGRID_DB\) is not a database URL; write e\.g\. .*")
    assert list(tmp_path.iterdir()) == []


def test_a_taken_port_is_a_runtime_failure_with_status_1(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        got = run("hub", "--site", str(DEMO_SITE), "--http", f"127.0.0.1:{port}", cwd=tmp_path,
                  env={"HALLGRID_STATE_DIR": str(tmp_path / "state")})
        assert got.returncode == 1 and "Traceback" not in got.stderr
        assert got.stderr.strip().splitlines()[-1] == f"error: cannot serve HTTP on 127.0.0.1:{port}: Address already in use"
        demo = run("demo", "--http", f"127.0.0.1:{port}", timeout=60)
        assert demo.returncode == 1 and demo.stderr.strip() == f"error: --http 127.0.0.1:{port}: Address already in use"
        assert "board:" not in demo.stdout, "no board announced on someone else's port"


def test_demo_moves_to_a_free_port_when_its_default_is_taken():
    from hub.demo import board_socket
    from edge.host_port import HostPort

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        sock, note = board_socket(HostPort("127.0.0.1", port), explicit=False)
        with sock:
            got = sock.getsockname()[1]
            assert got != port and note == (f"port {port} is taken (Address already in use): the board uses port "
                                            f"{got} instead")
            with socket.create_connection(("127.0.0.1", got), timeout=5):
                pass                      # it is listening


BLOCK_HUB_EXTRA = """
import sys
class Missing:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"sqlalchemy", "httpx", "pyarrow", "matplotlib"}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Missing())
sys.argv[0] = "hallgrid"
from hub.cli import main
main()
"""


@pytest.mark.parametrize("args, command", [
    (["hub", "--site", str(DEMO_SITE)], "hallgrid hub"),
    (["replay", str(PETS_VIDEO), "--site", str(DEMO_SITE), "--out", "r"], "hallgrid replay"),
])
def test_without_the_hub_extra_hub_commands_say_what_to_install(tmp_path, args, command):
    got = subprocess.run([sys.executable, "-c", BLOCK_HUB_EXTRA, *args], capture_output=True, text=True, cwd=tmp_path,
                         timeout=120)
    assert got.returncode == 1 and "Traceback" not in got.stderr
    assert re.fullmatch(rf"error: '{command}' needs the hub extra \(module '\w+' is not installed\): "
                        r"pip install 'hallgrid\[hub\]'", got.stderr.strip().splitlines()[-1]), got.stderr
    edge = subprocess.run([sys.executable, "-c", BLOCK_HUB_EXTRA, "edge", "--help"], capture_output=True, text=True,
                          timeout=60)
    assert edge.returncode == 0 and "Serve a site's cameras" in edge.stdout


# --- the installer's first hour -------------------------------------------------------------------------
def test_init_from_options_writes_a_commented_site_that_passes_the_offline_check(tmp_path):
    out = tmp_path / "hall" / "site.yaml"
    got = run("init", "--id", "hall-7", "--name", "Hall 7", "--timezone", "Europe/Berlin",
              "--camera", "cam1=rtsp://user:p:w@10.0.0.5/stream1", "--camera", "cam2=usb://0", "--out", str(out))
    assert got.returncode == 0, got.stderr
    text = out.read_text()
    assert text.count("\n#") >= 5 and "# JSON Schema for editors" in text
    doc = YAML(typ="safe").load(text)
    assert doc["timezone"] == "Europe/Berlin" and [c["source"] for c in doc["cameras"]] == [
        "rtsp://user:p:w@10.0.0.5/stream1", "usb://0"]
    check = run("check", str(out), "--offline")
    assert check.returncode == 0, check.stderr
    assert check.stdout.splitlines() == ["site hall-7: valid, 2 camera(s), 2 zone(s) (offline: the file alone)",
                                         "0 warning(s)"]
    again = run("init", "--id", "x", "--name", "x", "--timezone", "UTC", "--camera", "c=usb://0", "--out", str(out))
    assert_input_error(again, rf"error: {re.escape(str(out))} exists; pass --force to overwrite it or --out to write "
                              r"elsewhere")


def test_init_asks_what_it_was_not_told_and_refuses_a_wrong_timezone_with_a_hint(tmp_path):
    out = tmp_path / "site.yaml"
    got = CliRunner().invoke(cli, ["init", "--out", str(out)],
                             input="north-1\nNorth hall\nAsia/Beijing\nAsia/Shanghai\ncam1\nrtsp://10.0.0.9/live\n")
    assert got.exit_code == 0, got.output
    assert "'Asia/Beijing' is not in the tz database; did you mean 'Asia/Shanghai'?" in got.output
    doc = YAML(typ="safe").load(out.read_text())
    assert (doc["id"], doc["timezone"], doc["cameras"][0]["source"]) == ("north-1", "Asia/Shanghai",
                                                                        "rtsp://10.0.0.9/live")
    bad = run("init", "--id", "bad id", "--name", "x", "--camera", "c=usb://0", "--out", str(tmp_path / "b.yaml"),
              "--timezone", "UTC")
    assert bad.returncode == 2 and "id: 'bad id' may use only letters" in bad.stderr
    assert not (tmp_path / "b.yaml").exists()


def test_site_schema_has_no_internal_fields_and_accepts_the_example_sites(tmp_path):
    got = run("site-schema", "--out", str(tmp_path / "site.schema.json"))
    assert got.returncode == 0, got.stderr
    schema = json.loads((tmp_path / "site.schema.json").read_text())
    assert schema == json.loads(run("site-schema").stdout)
    assert "source_file" not in json.dumps(schema)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for example in (EXAMPLE_SITE, DEMO_SITE):
        assert list(validator.iter_errors(YAML(typ="safe").load(example.read_text()))) == [], example
    wrong = YAML(typ="safe").load(DEMO_SITE.read_text())
    wrong["cameras"][0]["zones"][0]["capacty"] = wrong["cameras"][0]["zones"][0].pop("capacity")
    assert list(validator.iter_errors(wrong)), "an editor flags the misspelt field too"


def test_hash_password_prints_a_hash_the_hub_accepts():
    from hub.access import verify_password

    got = run("hash-password", "--stdin", stdin="corridor-7-lamp\n")
    assert got.returncode == 0 and got.stdout.startswith("scrypt$")
    assert verify_password("corridor-7-lamp", got.stdout.strip())
    assert not verify_password("corridor-7-lamp!", got.stdout.strip())
    assert "corridor" not in got.stdout + got.stderr
    asked = CliRunner().invoke(cli, ["hash-password"], input="pw-one\npw-one\n")
    assert asked.exit_code == 0 and verify_password("pw-one", asked.output.strip().splitlines()[-1])
    assert_input_error(run("hash-password", "--stdin", stdin="\n"), r"error: empty password: a board user needs one")


@pytest.mark.usefixtures("need_footage")
def test_check_names_an_unreachable_camera_instead_of_an_invalid_site(tmp_path):
    port = free_port()                 # nothing listens there: the camera refuses
    site = tmp_path / "site.yaml"
    site.write_text(EXAMPLE_SITE.read_text().replace("sample://vtest.avi", f"rtsp://admin:pw@127.0.0.1:{port}/live"))
    got = run("check", str(site))
    assert got.returncode == 1 and "Traceback" not in got.stderr and "invalid site file" not in got.stderr
    assert got.stderr.strip() == (f"error: camera cam1 unreachable: connection refused (127.0.0.1:{port}); check "
                                  "the camera and its source, pass --snapshot IMG, or validate the file alone with "
                                  "--offline")
    assert "pw" not in got.stderr
    assert run("check", str(site), "--offline").returncode == 0


# --- count ------------------------------------------------------------------------------------------------------
@pytest.mark.usefixtures("need_footage")
@pytest.mark.parametrize("detect_fps", [None, 3.0, 2.5])
def test_expected_frames_is_what_read_frames_yields(detect_fps):
    from edge.video import _decode, expected_frames, video_info

    assert expected_frames(video_info(PETS_VIDEO), detect_fps) == sum(1 for _ in _decode(PETS_VIDEO, detect_fps))


@pytest.mark.usefixtures("need_footage")
def test_count_writes_csv_to_stdout_and_its_progress_total_is_exact(tmp_path):
    got = run("count", str(PETS_VIDEO), "--site", str(EXAMPLE_SITE), "--detect-fps", "1", timeout=300)
    assert got.returncode == 0, got.stderr
    rows = got.stdout.splitlines()
    assert rows[0] == "frame,ts,zone,raw,count"
    frames = {r.split(",")[0] for r in rows[1:]}
    zones = {r.split(",")[2] for r in rows[1:]}
    assert len(rows) - 1 == len(frames) * len(zones) and zones == {"entrance", "waiting-a", "waiting-b", "self-service"}
    bars = re.findall(r"(\d+)/(\d+) \[", got.stderr)
    assert bars and bars[-1] == (str(len(frames)), str(len(frames))), bars[-1:]
    out = run("count", str(PETS_VIDEO), "--site", str(EXAMPLE_SITE), "--detect-fps", "1", "--out",
              str(tmp_path / "c.csv"), timeout=300)
    assert out.returncode == 0 and out.stdout == "" and (tmp_path / "c.csv").read_text().splitlines() == rows
