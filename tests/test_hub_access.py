"""Access details: the cookie key's strength, merged site-file users, the login throttle."""

from __future__ import annotations

import os

import pytest

from calibration.site import User
from edge.clock import ManualClock
from hub.access import Access, AccessError, Throttled, hash_password, load_secret
from hub.login_throttle import PAIR_FAILURES


def test_short_or_empty_secret_file_is_replaced(tmp_path):
    path = tmp_path / "hub.secret"
    for content in ("", "abcd", "zz not hex"):
        path.write_text(content)
        key = load_secret(path, env={})
        assert len(key) >= 32 and path.read_text() == key.hex()
        assert os.stat(path).st_mode & 0o777 == 0o600
        assert load_secret(path, env={}) == key                       # kept across restarts
    assert [p.name for p in tmp_path.iterdir()] == ["hub.secret"]     # no temp file left behind


def test_env_secret_must_be_long_and_the_given_env_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv("HALLGRID_SECRET", "x" * 40)
    with pytest.raises(AccessError, match="HALLGRID_SECRET is 5 bytes"):
        load_secret(tmp_path / "s", env={"HALLGRID_SECRET": "short"})
    assert load_secret(tmp_path / "s", env={"HALLGRID_SECRET": "k" * 32}) == b"k" * 32
    assert len(load_secret(tmp_path / "s", env={})) == 32 and (tmp_path / "s").exists()   # env ignored: not os.environ


def test_same_user_in_two_site_files_is_merged_conflicting_one_rejected():
    a = User(name="li", role="duty_manager", token="t" * 20)
    access = Access([a, User(name="li", role="duty_manager", token="t" * 20)], b"k" * 32)
    assert list(access.users) == ["li"]
    with pytest.raises(AccessError, match="'li' is configured twice"):
        Access([a, User(name="li", role="viewer", token="t" * 20)], b"k" * 32)


def test_failed_logins_are_throttled_per_client_and_name():
    clock = ManualClock(1_800_000_000.0)
    access = Access([User(name="li", role="duty_manager", password_hash=hash_password("s3cret", n=2 ** 4))],
                    b"k" * 32, clock=clock)
    assert access.login("nobody", "x", "10.0.0.1") is None             # unknown name: checked, not an error
    for _ in range(PAIR_FAILURES):
        assert access.login("li", "wrong", "10.0.0.1") is None
    with pytest.raises(Throttled):
        access.login("li", "s3cret", "10.0.0.1")                      # refused even when right
    assert access.login("li", "s3cret", "10.0.0.2").name == "li"       # another address is not blocked
    clock.advance(301)
    assert access.login("li", "s3cret", "10.0.0.1").name == "li"


def test_healthz_is_public_and_the_rest_is_not(tmp_path):
    from fastapi.testclient import TestClient

    from hub.api import create_app
    from hub.service import Hub
    from hub.storage import Storage
    from test_hub_site import hall_site

    hub = Hub([hall_site()], Storage(f"sqlite:///{tmp_path / 'hub.db'}"), clock=ManualClock(1_800_000_000.0))
    access = Access([User(name="wall", role="viewer", token="v" * 20)], b"k" * 32)
    with TestClient(create_app(hub, access)) as client:
        assert client.get("/healthz").json() == {"ok": True}
        assert client.get("/api/sites").status_code == 401
