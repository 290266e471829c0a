"""Alerts to the duty manager's chat group: WeCom, DingTalk and Feishu robots, each POSTing to a real
HTTP server on a free loopback port that checks the vendor's documented format strictly (fields,
msgtype, signature when a secret is set) and answers as the vendor does."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import threading
import time

import pytest
import uvicorn
from click.testing import CliRunner
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from calibration.site import SiteError, parse_site
from conftest import free_port
from edge.clock import ManualClock
from hub.messages.waits import wait_text
from hub.notify import Notify, NotifyError, site_channels
from hub.notify.message import compose
from hub.service import Hub, hub_command
from hub.storage import Storage
from hub.tickets import parse

from test_hub_outputs import alert
from test_hub_scenario import T0, wait_until
from test_hub_site import HALL_YAML

WECOM_KEY = "wecom-key-6f1c2a"
DING_TOKEN = "ding-token-93ab71"
DING_SECRET = "SECding-secret-0c55e1"
FEISHU_TOKEN = "feishu-token-17d2e0"
FEISHU_SECRET = "feishu-secret-a48b6f"
HOUR_MS = 3600 * 1000


class Robots:
    """The three vendors' robot endpoints. ``answers[vendor]`` scripts the next answers (status, JSON)
    before the format checks; every accepted message is kept in ``received``, every refusal in ``refused``."""

    def __init__(self, dingtalk_secret: str | None = DING_SECRET, feishu_secret: str | None = FEISHU_SECRET):
        self.received: dict[str, list[dict]] = {"wecom": [], "dingtalk": [], "feishu": []}
        self.refused: list[tuple[str, str]] = []
        self.attempts = {"wecom": 0, "dingtalk": 0, "feishu": 0}
        self.answers: dict[str, list[tuple[int, dict]]] = {"wecom": [], "dingtalk": [], "feishu": []}
        app = FastAPI()

        def scripted(vendor: str):
            self.attempts[vendor] += 1
            return self.answers[vendor].pop(0) if self.answers[vendor] else None

        def refuse(vendor: str, reason: str, answer: dict):
            self.refused.append((vendor, reason))
            return answer

        async def json_body(request: Request):
            if request.headers.get("content-type", "").split(";")[0] != "application/json":
                return None
            try:
                body = await request.json()
            except ValueError:
                return None
            return body if isinstance(body, dict) else None

        @app.post("/cgi-bin/webhook/send")
        async def wecom(request: Request):
            if (s := scripted("wecom")) is not None:
                return JSONResponse(s[1], status_code=s[0])
            bad = {"errcode": 40008, "errmsg": "invalid message type"}
            if request.query_params.get("key") != WECOM_KEY:
                return refuse("wecom", "key", {"errcode": 93000, "errmsg": "invalid webhook url"})
            body = await json_body(request)
            if body is None or set(body) != {"msgtype", "markdown"} or body["msgtype"] != "markdown":
                return refuse("wecom", "msgtype", bad)
            md = body["markdown"]
            if not isinstance(md, dict) or set(md) != {"content"} or not isinstance(md["content"], str) \
                    or not md["content"].strip() or len(md["content"].encode("utf-8")) > 4096:
                return refuse("wecom", "content", {"errcode": 40058, "errmsg": "markdown.content exceed max length"})
            self.received["wecom"].append(body)
            return {"errcode": 0, "errmsg": "ok"}

        @app.post("/robot/send")
        async def dingtalk(request: Request):
            if (s := scripted("dingtalk")) is not None:
                return JSONResponse(s[1], status_code=s[0])
            q = request.query_params
            if q.get("access_token") != DING_TOKEN:
                return refuse("dingtalk", "token", {"errcode": 300001, "errmsg": "token is not exist"})
            if dingtalk_secret is not None:        # 加签: timestamp (ms) within an hour, sign = base64 HMAC
                ts, sign = q.get("timestamp", ""), q.get("sign", "")
                if not ts.isdigit() or abs(int(ts) - time.time() * 1000) > HOUR_MS:
                    return refuse("dingtalk", "timestamp", {"errcode": 310000, "errmsg": "invalid timestamp"})
                want = base64.b64encode(hmac.new(dingtalk_secret.encode(), f"{ts}\n{dingtalk_secret}".encode(),
                                                 hashlib.sha256).digest()).decode()
                if not hmac.compare_digest(sign, want):
                    return refuse("dingtalk", "sign", {"errcode": 310000, "errmsg": "sign not match"})
            body = await json_body(request)
            if body is None or not set(body) <= {"msgtype", "markdown", "at"} or body.get("msgtype") != "markdown":
                return refuse("dingtalk", "msgtype", {"errcode": 40035, "errmsg": "缺少参数 msgtype"})
            md = body.get("markdown")
            if not isinstance(md, dict) or set(md) != {"title", "text"} or \
                    not all(isinstance(md[k], str) and md[k].strip() for k in ("title", "text")):
                return refuse("dingtalk", "markdown", {"errcode": 40035, "errmsg": "缺少参数 markdown.title/text"})
            self.received["dingtalk"].append(body)
            return {"errcode": 0, "errmsg": "ok"}

        @app.post("/open-apis/bot/v2/hook/{token}")
        async def feishu(token: str, request: Request):
            if (s := scripted("feishu")) is not None:
                return JSONResponse(s[1], status_code=s[0])
            bad = {"code": 9499, "msg": "Bad Request", "data": {}}
            if token != FEISHU_TOKEN:
                return refuse("feishu", "token", {"code": 19001, "msg": "param invalid: incoming webhook access token invalid"})
            body = await json_body(request)
            if body is None:
                return refuse("feishu", "json", bad)
            if feishu_secret is not None:          # 签名校验: timestamp (s, string) within an hour, sign in the body
                ts, sign = body.get("timestamp"), body.get("sign")
                want = None
                if isinstance(ts, str) and ts.isdigit() and abs(int(ts) - time.time()) <= 3600:
                    want = base64.b64encode(hmac.new(f"{ts}\n{feishu_secret}".encode(), b"",
                                                     hashlib.sha256).digest()).decode()
                if want is None or not isinstance(sign, str) or not hmac.compare_digest(sign, want):
                    return refuse("feishu", "sign", {"code": 19021, "msg": "sign match fail or timestamp is not "
                                                     "within one hour from current time"})
            elif "sign" in body or "timestamp" in body:
                return refuse("feishu", "unexpected sign", bad)
            if not set(body) <= {"msg_type", "card", "timestamp", "sign"} or body.get("msg_type") != "interactive":
                return refuse("feishu", "msg_type", bad)
            card = body.get("card")
            try:
                header, elements = card["header"], card["elements"]
                assert header["title"]["tag"] == "plain_text" and header["title"]["content"].strip()
                assert header["template"] in {"blue", "wathet", "turquoise", "green", "yellow", "orange", "red",
                                              "carmine", "violet", "purple", "indigo", "grey"}
                assert isinstance(elements, list) and elements
                for el in elements:
                    assert el["tag"] in {"div", "markdown", "hr", "action", "note"}
                    if el["tag"] == "div":
                        assert el["text"]["tag"] in {"lark_md", "plain_text"} and el["text"]["content"].strip()
                    if el["tag"] == "action":
                        for b in el["actions"]:
                            assert b["tag"] == "button" and b["text"]["tag"] == "plain_text"
                            assert b["url"].startswith(("http://", "https://"))
            except (KeyError, TypeError, AssertionError, AttributeError):
                return refuse("feishu", "card", {"code": 11246, "msg": "create card content failed"})
            self.received["feishu"].append(body)
            return {"code": 0, "msg": "success", "data": {}}

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_until(lambda: self.server.started, what="robot server")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def robots(monkeypatch):
    """The robot server, and the site file's ${ENV} variables set in the environment as an installer would."""
    r = Robots()
    monkeypatch.setenv("TEST_WECOM_URL", f"{r.url}/cgi-bin/webhook/send?key={WECOM_KEY}")
    monkeypatch.setenv("TEST_DING_SECRET", DING_SECRET)
    monkeypatch.setenv("TEST_FEISHU_SECRET", FEISHU_SECRET)
    yield r
    r.stop()


def site_yaml(robots: Robots, language: str = "zh", ding_secret: str = "${TEST_DING_SECRET}") -> str:
    return HALL_YAML + f"""language: {language}
board_url: https://board.hall-1.example/
notify:
  - {{kind: wecom, url: "${{TEST_WECOM_URL}}"}}
  - {{kind: dingtalk, url: "{robots.url}/robot/send?access_token={DING_TOKEN}", secret: "{ding_secret}"}}
  - {{kind: feishu, url: "{robots.url}/open-apis/bot/v2/hook/{FEISHU_TOKEN}", secret: "${{TEST_FEISHU_SECRET}}"}}
"""


def test_a_long_wait_reaches_every_robot_in_the_sites_language(robots, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    site = parse_site(site_yaml(robots), "hall.yaml")
    notify = Notify({site.id: site_channels(site, backoff_s=0.05)})
    clock = ManualClock(T0)
    hub = Hub([site.model_copy(update={"rules": site.rules.model_copy(update={"min_duration_s": 0})})],
              Storage(f"sqlite:///{tmp_path / 'hub.db'}"), clock=clock, evaluate_on_message=False, notify=notify)
    try:
        hub.ingest_ticket("hall-1", parse({"event": "counter_open", "counter": "1"}, T0))
        for i in range(3):
            hub.ingest_ticket("hall-1", parse({"event": "issued", "ticket": f"A{i}", "service": "billing"}, T0))
        raised = next(a for a in hub.tick() if a.key == "long_wait:billing")
        wait_until(lambda: all(len(v) == 1 for v in robots.received.values()), what="three robot messages")
        assert robots.refused == []
        link = f"https://board.hall-1.example/board?site=hall-1&alert={raised.id}"
        wait_zh = wait_text(raised.figures, "zh")                     # the wait in words, with its range
        wecom = robots.received["wecom"][0]["markdown"]["content"]
        ding = robots.received["dingtalk"][0]["markdown"]
        card = robots.received["feishu"][0]["card"]
        for text in (wecom, ding["text"], card["elements"][0]["text"]["content"]):
            assert "**位置：**Waiting area A，网格B" in text                    # where: zone and grid cell
            assert wait_zh in text and "∞" not in text                      # the wait figure, in words
            assert f"**情况：**{raised.texts['zh']['detail']}" in text
            assert "**处置：**开启2号窗口" in text                               # what to do
        assert "警告：等候过长" in wecom and ding["title"] == "警告：等候过长"       # level and kind
        assert card["header"]["title"]["content"] == "警告：等候过长" and card["header"]["template"] == "orange"
        assert f"[在看板上确认]({link})" in wecom and f"[在看板上确认]({link})" in ding["text"]
        assert card["elements"][1]["actions"][0]["url"] == link
        # acknowledged on the board: the group learns who took it
        hub.acknowledge(raised.id, "li.duty")
        wait_until(lambda: all(len(v) == 2 for v in robots.received.values()), what="acknowledgement messages")
        assert "已确认：等候过长" in robots.received["wecom"][1]["markdown"]["content"]
        assert "**确认人：**li.duty" in robots.received["dingtalk"][1]["markdown"]["text"]
    finally:
        notify.close()
    assert [c["sent"] for c in notify.stats()] == [2, 2, 2]
    logged = caplog.text + str(notify.stats())
    for secret in (WECOM_KEY, DING_TOKEN, DING_SECRET, FEISHU_TOKEN, FEISHU_SECRET):
        assert secret not in logged


def test_a_wrong_signature_is_refused_once_and_never_logged(robots, caplog):
    caplog.set_level(logging.WARNING, logger="hallgrid.hub.notify")
    site = parse_site(site_yaml(robots, ding_secret="SECwrong-secret-99"), "hall.yaml")
    ding = next(c for c in site_channels(site, backoff_s=0.05) if c.kind == "dingtalk")
    try:
        ding.send(alert(1))
        wait_until(lambda: ding.failed == 1, what="refusal")
    finally:
        ding.close()
    assert robots.attempts["dingtalk"] == 1 and robots.refused == [("dingtalk", "sign")]   # not retried
    assert "code 310000: sign not match" in caplog.text
    assert "SECwrong-secret-99" not in caplog.text and DING_TOKEN not in caplog.text


def test_overload_and_rate_limits_are_retried_with_backoff(robots):
    site = parse_site(site_yaml(robots), "hall.yaml")
    chans = {c.kind: c for c in site_channels(site, backoff_s=0.05)}
    robots.answers["wecom"] = [(503, {}), (200, {"errcode": 45009, "errmsg": "api freq out of limit"})]
    robots.answers["feishu"] = [(200, {"code": 11232, "msg": "frequency limited"})]
    try:
        chans["wecom"].send(alert(1))
        chans["feishu"].send(alert(1))
        wait_until(lambda: chans["wecom"].sent == 1 and chans["feishu"].sent == 1, what="delivery after retries")
    finally:
        for c in chans.values():
            c.close()
    assert robots.attempts["wecom"] == 3 and robots.attempts["feishu"] == 2
    assert len(robots.received["wecom"]) == 1 and len(robots.received["feishu"]) == 1


def test_unsigned_robot_and_level_filter():
    robots = Robots(feishu_secret=None)
    try:
        site = parse_site(HALL_YAML + f"""notify:
  - {{kind: feishu, url: "{robots.url}/open-apis/bot/v2/hook/{FEISHU_TOKEN}", min_level: warning}}
""", "hall.yaml")
        [bot] = site_channels(site, {})
        bot.send(alert(2, level="info"))                                    # below its level: not sent
        bot.send(alert(3))
        wait_until(lambda: bot.sent == 1, what="delivery")
        bot.close()
        assert robots.attempts["feishu"] == 1 and "sign" not in robots.received["feishu"][0]
        assert robots.refused == []
    finally:
        robots.stop()


def test_english_message_without_a_board_url():
    a = alert(1, texts={"en": {"where": "Waiting area A", "detail": "9 people for Billing, overloaded: 8 tickets, "
                               "2 counters, one frees every 3 min", "action": "open counter 4", "suggestion": "x"}})
    m = compose(a, "en", None, "Test hall", "Asia/Shanghai")
    assert m.title == "Warning: Long wait" and m.link is None
    assert m.lines == ["**Where:** Waiting area A, cell B",
                       "**Now:** 9 people for Billing, overloaded: 8 tickets, 2 counters, one frees every 3 min",
                       "**To do:** open counter 4"]
    assert m.footer == "hallgrid · Test hall · 16:00"                     # 08:00 UTC in the site's timezone
    resolved = compose(alert(1, texts=a.texts, state="resolved", resolved_by="hub"), "en")
    assert resolved.title == "Resolved: Long wait"
    assert resolved.lines == ["**Where:** Waiting area A, cell B", "**Resolved:** the condition cleared"]


def refusal(site_text: str) -> str:
    """Why a site file with a bad notify entry cannot start a hub: from loading the file or from
    building its channels (both are done before the hub starts)."""
    try:
        Notify.for_sites([parse_site(site_text, "hall.yaml")])
    except (SiteError, NotifyError) as exc:
        return str(exc)
    pytest.fail("a bad notify entry was accepted")


def test_bad_notify_entries_are_refused_at_start(tmp_path, monkeypatch):
    # in the file: the line and field, never the value (a robot URL holds its token)
    with pytest.raises(SiteError) as err:
        parse_site(HALL_YAML + 'notify:\n  - {kind: wecom, url: "qyapi.weixin.qq.com/send?key=abc123"}\n'
                   '  - {kind: slack, url: "https://hooks.example/x"}\n', "hall.yaml")
    lines = HALL_YAML.count("\n")
    assert f"hall.yaml:{lines + 2}: notify[0].url: Value error, must be an http(s):// URL or ${{ENV_VAR}}" in str(err.value)
    assert f"hall.yaml:{lines + 3}: notify[1].kind:" in str(err.value) and "abc123" not in str(err.value)
    # a variable that is not set: refused, naming the entry and the variable (never a value)
    monkeypatch.delenv("UNSET_DING_URL", raising=False)
    assert re.search(r"notify\[0\]\.url.*\$\{UNSET_DING_URL\}", refusal(HALL_YAML + """notify:
  - {kind: dingtalk, url: "${UNSET_DING_URL}"}
"""))
    wecom = parse_site(HALL_YAML + """notify:
  - {kind: wecom, url: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc", secret: "s3cret-value"}
""", "hall.yaml")
    with pytest.raises(NotifyError, match="not signed") as err:
        site_channels(wecom, {})
    assert "s3cret-value" not in str(err.value) and "key=abc" not in str(err.value)
    assert "s3cret-value" not in repr(wecom)                          # SecretStr: never in a repr or log
    # the hub command says which entry and which variable, and does not start
    path = tmp_path / "hall.yaml"
    path.write_text(HALL_YAML + 'notify:\n  - {kind: feishu, url: "${UNSET_FEISHU_URL}"}\n', encoding="utf-8")
    monkeypatch.delenv("UNSET_FEISHU_URL", raising=False)
    result = CliRunner().invoke(hub_command, ["--site", str(path), "--db", f"sqlite:///{tmp_path / 'hub.db'}",
                                              "--no-auth", "--http", f"127.0.0.1:{free_port()}"])
    assert result.exit_code != 0 and re.search(r"notify\[0\]\.url.*\$\{UNSET_FEISHU_URL\}", result.output)
