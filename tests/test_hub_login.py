"""The login throttle, scrypt parameters and their limits: a burst of guesses against the real app over HTTP
(uvicorn on a free port; the real password check, counted), and the throttle's policy on a scripted clock."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
import uvicorn

import hub.access
from calibration.site import User, load_site
from conftest import REPO, free_port
from edge.clock import ManualClock
from hub.access import Access, Throttled, hash_password, verify_password
from hub.api import create_app
from hub.login_throttle import (ACCOUNT_FREE_FAILURES, ACCOUNT_MAX_BACKOFF_S, ADDRESS_FAILURES, PAIR_FAILURES,
                                WINDOW_S)
from hub.service import Hub
from hub.storage import Storage

from test_hub_scenario import wait_until
from test_hub_site import hall_site

PASSWORD = "the right one"


@pytest.fixture
def live(tmp_path, monkeypatch):
    """The hub's app served by uvicorn in this process, so every password check it makes can be counted."""
    checks = []
    real = hub.access.verify_password

    def counted(password, stored):
        checks.append(time.monotonic())
        return real(password, stored)

    monkeypatch.setattr(hub.access, "verify_password", counted)
    h = Hub([hall_site()], Storage(f"sqlite:///{tmp_path / 'hub.db'}"))
    access = Access([User(name="li", role="duty_manager", password_hash=hash_password(PASSWORD))], b"k" * 32)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(h, access), host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout=20, what="uvicorn")
    yield f"http://127.0.0.1:{port}", checks
    server.should_exit = True
    thread.join(10)


def test_a_burst_of_40_guesses_runs_at_most_a_few_password_checks(live):
    url, checks = live
    barrier = threading.Barrier(41)
    results: list[str] = []

    def guess(password: str) -> None:
        with httpx.Client(base_url=url, timeout=60) as c:
            barrier.wait()
            r = c.post("/login", data={"name": "li", "password": password}, follow_redirects=False)
            results.append(r.headers["location"])

    threads = [threading.Thread(target=guess, args=(f"wrong-{i}",)) for i in range(40)]
    threads.insert(20, threading.Thread(target=guess, args=(PASSWORD,)))      # the right one inside the burst
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    print(f"41 concurrent logins: {len(checks)} password checks, {results.count('/board')} accepted, "
          f"{sum('throttled=1' in r for r in results)} throttled")
    assert len(results) == 41
    assert len(checks) <= PAIR_FAILURES            # before: one check per request (41)
    assert sum("throttled=1" in r for r in results) >= 41 - PAIR_FAILURES
    # the hub keeps serving: healthz at once, and the right password from another address works (below)
    assert httpx.get(f"{url}/healthz").json() == {"ok": True}


def test_scrypt_is_at_owasp_parameters_and_old_hashes_still_verify():
    fresh = hash_password(PASSWORD)
    assert fresh.startswith("scrypt$131072$8$1$") and verify_password(PASSWORD, fresh)
    assert not verify_password("other", fresh)
    demo = load_site(REPO / "calibration" / "examples" / "demo-hall.yaml").access.users[0].password_hash
    assert demo.startswith("scrypt$16384$") and verify_password("demo", demo)      # older N=2^14 hash
    huge = fresh.replace("scrypt$131072$", "scrypt$4194304$")                       # 4 GiB to check: refused
    t0 = time.perf_counter()
    assert not verify_password(PASSWORD, huge) and time.perf_counter() - t0 < 0.5


def _access(clock) -> Access:
    return Access([User(name="li", role="duty_manager", password_hash=hash_password(PASSWORD, n=2 ** 4))],
                  b"k" * 32, clock=clock)


def _attempt(access: Access, name: str, password: str, address: str) -> str:
    try:
        return "ok" if access.login(name, password, address) else "wrong"
    except Throttled:
        return "throttled"


def test_a_stranger_cannot_lock_the_real_user_out():
    clock = ManualClock(1_800_000_000.0)
    access = _access(clock)
    stranger = [_attempt(access, "li", f"guess{i}", "10.0.0.66") for i in range(50)]
    assert stranger.count("wrong") == PAIR_FAILURES and stranger.count("throttled") == 50 - PAIR_FAILURES
    assert _attempt(access, "li", PASSWORD, "10.0.0.7") == "ok"            # the real user, at once

    # many machines guessing together: the account backs off, but never for more than the cap
    for machine in range(ACCOUNT_FREE_FAILURES + 6):
        for _ in range(2):
            _attempt(access, "li", "guess", f"10.1.0.{machine}")
            clock.advance(0.01)
    assert _attempt(access, "li", PASSWORD, "10.0.0.7") == "throttled"
    clock.advance(ACCOUNT_MAX_BACKOFF_S)
    assert _attempt(access, "li", PASSWORD, "10.0.0.7") == "ok"


def test_guessing_across_names_from_one_address_is_throttled_too():
    clock = ManualClock(1_800_000_000.0)
    access = _access(clock)
    results = [_attempt(access, f"user{i}", "guess", "10.0.0.66") for i in range(ADDRESS_FAILURES + 5)]
    assert results[:ADDRESS_FAILURES] == ["wrong"] * ADDRESS_FAILURES and set(results[ADDRESS_FAILURES:]) == {
        "throttled"}
    assert _attempt(access, "li", PASSWORD, "10.0.0.66") == "throttled"
    assert _attempt(access, "li", PASSWORD, "10.0.0.7") == "ok"
    clock.advance(WINDOW_S + 1)
    assert _attempt(access, "li", PASSWORD, "10.0.0.66") == "ok"


def test_one_check_in_flight_per_account():
    clock = ManualClock(1_800_000_000.0)
    throttle = _access(clock).throttle
    assert throttle.begin("li", "10.0.0.1") is None
    assert throttle.begin("li", "10.0.0.2") is not None          # the same account, while a check runs
    assert throttle.begin("kim", "10.0.0.2") is None             # another account is not held up
    throttle.end("li", "10.0.0.1", ok=False)
    assert throttle.begin("li", "10.0.0.2") is None
