"""The replay report in the site's language: headings, tables, figure labels and alert suggestions
from the message catalogue, with Chinese glyphs in the figures (no missing-glyph boxes)."""

from __future__ import annotations

import warnings

import pyarrow as pa

from conftest import SCREENSHOTS
from hub.replay.report import render
from hub.replay.series import Table

T = "2026-11-23T01:00:{:02d}.000Z"
SUMMARY = {"site": "hall-1", "site_name": "一号营业厅", "timezone": "Asia/Shanghai", "start": T.format(0),
           "end": T.format(50), "start_epoch": 1795395600.0, "end_epoch": 1795395650.0, "footage_s": 50.0,
           "recordings": [{"camera": "cam1", "video": "v.mp4", "start": T.format(0), "start_source": "--start",
                           "frames": 250, "messages": 12}]}
ALERT = {"kind": "over_capacity", "key": "over_capacity:waiting-a", "level": "warning", "state": "resolved",
         "raised_at": T.format(10), "acknowledged_at": None, "resolved_at": T.format(40),
         "suggestion": "Waiting area A: 12 people for 10 places: open overflow seating",
         "texts": {"zh": {"suggestion": "Waiting area A：12人，仅有10个座位，开放临时座位"},
                   "en": {"suggestion": "Waiting area A: 12 people for 10 places: open overflow seating"}}}


def tables() -> tuple[Table, Table, Table]:
    i, s = pa.int64(), pa.string()
    zones = Table("zones", [("ts", s), ("seq", i), ("camera", s), ("zone", s), ("x", i), ("raw", i), ("smoothed", i)],
                  [(T.format(k), k, "cam1", "waiting-a", 0, 10 + k % 3, 11) for k in range(0, 50, 5)])
    intervals = Table("zone_intervals", [(c, s) for c in ("interval", "camera", "zone", "frames", "min", "mean", "max")],
                      [(T.format(0), "cam1", "waiting-a", 250, 9, 11.0, 13)])
    queues = Table("queues", [(f"c{k}", s) for k in range(9)],
                   [(T.format(k), None, "billing", 3, None, None, None, None, 240.0) for k in range(0, 50, 10)])
    return zones, intervals, queues


def test_report_in_chinese_and_english(browser):
    zones, intervals, queues = tables()
    heat = {"waiting-a": {"2026-11-23T09:00": 11.0}}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        zh = render(SUMMARY, zones, intervals, queues, heat, [ALERT], None, "zh")
    assert not [w for w in caught if "missing from font" in str(w.message)]       # CJK glyphs were found
    assert "<html lang=zh-CN>" in zh and "回放：一号营业厅（hall-1）" in zh
    for text in ("各区域人数", "按小时热力", "各业务等候", "预警", "摄像头</th><th>视频", "Waiting area A：12人，仅有10个座位",
                 "<td>超出容量</td><td>over_capacity:waiting-a</td><td>警告</td><td>已解除</td>"):
        assert text in zh, text
    assert zh.count("data:image/png;base64,") == 4
    en = render(SUMMARY, zones, intervals, queues, heat, [ALERT], None, "en")
    assert "Replay of 一号营业厅 (hall-1)" in en and "Occupancy per zone" in en and "12 people for 10 places" in en
    assert "<td>Over capacity</td><td>over_capacity:waiting-a</td><td>Warning</td><td>resolved</td>" in en
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS.parent / "report-zh.html"
    path.write_text(zh, encoding="utf-8")
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.goto(path.as_uri())
    assert page.locator("h2").all_inner_texts() == ["各区域人数", "按小时热力", "各业务等候", "预警"]
    page.screenshot(path=str(SCREENSHOTS / "replay-report-zh.png"), full_page=True)
    page.close()
