"""The replay's tables, written as CSV and Parquet the same way every time.

Determinism is by construction: rows are sorted, floats are rounded to fixed
decimals (and printed with fixed formats in CSV), times are footage times, and
Parquet is written from explicit pyarrow schemas with fixed options, so two
replays of the same inputs give byte-identical files.
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from edge.contract import iso_ts

from hub.replay.camera_job import CameraRecording
from hub.replay.start_time import local_hour
from hub.replay.timeline import HubRecord


@dataclass(frozen=True)
class Table:
    """Named columns with Arrow types; ``rows`` are tuples in column order."""

    name: str
    columns: list[tuple[str, pa.DataType]]
    rows: list[tuple]

    def column(self, name: str) -> list:
        i = [c for c, _ in self.columns].index(name)
        return [r[i] for r in self.rows]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "inf" if math.isinf(value) else f"{value:.3f}"
    return str(value)


def write(table: Table, out: Path, parquet: bool = True) -> list[Path]:
    """``NAME.csv`` (and ``NAME.parquet``) in ``out``."""
    paths = [out / f"{table.name}.csv"]
    with paths[0].open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow([c for c, _ in table.columns])
        w.writerows([_cell(v) for v in row] for row in table.rows)
    if parquet:
        schema = pa.schema([pa.field(c, t) for c, t in table.columns])
        arrays = [pa.array(table.column(c), type=t) for c, t in table.columns]
        paths.append(out / f"{table.name}.parquet")
        pq.write_table(pa.Table.from_arrays(arrays, schema=schema), paths[1], compression="zstd",
                       compression_level=3, use_dictionary=False, write_statistics=True, version="2.6")
    return paths


def _r(x: float, nd: int = 3) -> float:
    return round(float(x), nd)


def zone_series(recordings: list[CameraRecording], t0: float) -> Table:
    """Every counted frame, per zone: raw (this frame) and smoothed (what the edge publishes)."""
    rows = []
    for rec in recordings:
        for f in rec.frames:
            at = rec.job.start + f.t
            for i, zone in enumerate(rec.zones):
                rows.append((iso_ts(at), _r(at - t0), rec.job.camera_id, zone, f.index, f.raw[i], f.smoothed[i]))
    rows.sort(key=lambda r: (r[1], r[2], r[3], r[4]))
    return Table("zones", [("ts", pa.string()), ("t_s", pa.float64()), ("camera", pa.string()),
                           ("zone", pa.string()), ("frame", pa.int64()), ("raw", pa.int64()),
                           ("smoothed", pa.int64())], rows)


def zone_intervals(recordings: list[CameraRecording], interval_s: float) -> Table:
    """Per zone and wall-clock-aligned interval: frames, min/mean/max of the smoothed and the raw count."""
    cells: dict[tuple, list[tuple[int, int]]] = defaultdict(list)
    for rec in recordings:
        for f in rec.frames:
            at = rec.job.start + f.t
            start = math.floor(at / interval_s) * interval_s
            for i, zone in enumerate(rec.zones):
                cells[(start, rec.job.camera_id, zone)].append((f.raw[i], f.smoothed[i]))
    rows = []
    for (start, cam, zone), vals in sorted(cells.items()):
        raw = [v[0] for v in vals]
        sm = [v[1] for v in vals]
        rows.append((iso_ts(start), cam, zone, len(vals), min(sm), _r(sum(sm) / len(sm)), max(sm),
                     min(raw), _r(sum(raw) / len(raw)), max(raw)))
    return Table("zone_intervals", [("interval_start", pa.string()), ("camera", pa.string()), ("zone", pa.string()),
                                    ("frames", pa.int64()), ("min", pa.int64()), ("mean", pa.float64()),
                                    ("max", pa.int64()), ("raw_min", pa.int64()), ("raw_mean", pa.float64()),
                                    ("raw_max", pa.int64())], rows)


def queue_series(record: HubRecord, t0: float) -> Table:
    """Per tick and service: tickets and people waiting, open counters, service time, predicted and oldest wait."""
    rows = []
    for at, q in record.queues:
        wait = q["predicted_wait_s"]
        rows.append((iso_ts(at), _r(at - t0), q["service"], q["waiting_tickets"], q["waiting_people"],
                     len(q["open_counters"]), _r(q["service_time_s"], 1), _r(q["arrivals_per_h"], 1),
                     None if wait is None else _r(wait, 1), _r(q["oldest_wait_s"], 1)))
    rows.sort(key=lambda r: (r[1], r[2]))
    return Table("queues", [("ts", pa.string()), ("t_s", pa.float64()), ("service", pa.string()),
                            ("waiting_tickets", pa.int64()), ("waiting_people", pa.int64()),
                            ("open_counters", pa.int64()), ("service_time_s", pa.float64()),
                            ("arrivals_per_h", pa.float64()), ("predicted_wait_s", pa.float64()),
                            ("oldest_wait_s", pa.float64())], rows)


ALERT_COLUMNS = ["id", "key", "kind", "level", "state", "owner", "raised_at", "acknowledged_at", "resolved_at",
                 "escalations", "suggestion"]


def write_alerts(record: HubRecord, out: Path) -> list[Path]:
    """``alerts.csv`` (one row per alert, final state) and ``alerts.json`` (those plus every state change)."""
    alerts = sorted(record.alerts, key=lambda a: (a.raised_at, a.key))
    csv_path, json_path = out / "alerts.csv", out / "alerts.json"
    with csv_path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(ALERT_COLUMNS)
        for a in alerts:
            d = a.to_dict()
            w.writerow([_cell(d[c]) for c in ALERT_COLUMNS])
    from hub.replay.timeline import alert_changes

    doc = {"alerts": [a.to_dict() for a in alerts], "changes": alert_changes(record)}
    json_path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return [csv_path, json_path]


def accuracy(recordings: list[CameraRecording]) -> dict[str, Any]:
    """Per camera: ``CountingScore`` summaries overall (what ``hallgrid eval`` prints) and per local hour."""
    out = {}
    for rec in sorted(recordings, key=lambda r: (r.job.camera_id, r.job.start)):
        if rec.score is None:
            continue
        name = f"{rec.job.camera_id}:{Path(rec.job.video).name}"
        out[name] = {"overall": rec.score.summary(),
                     "per_hour": {h: s.summary() for h, s in sorted(rec.hourly.items())}}
    return out


def accuracy_table(acc: dict[str, Any]) -> Table:
    rows = []
    for name, doc in acc.items():
        for hour, summary in [("all", doc["overall"]), *doc["per_hour"].items()]:
            for zone, z in sorted(summary.get("per_zone", {}).items()):
                rows.append((name, hour, zone, summary["frames"], z["count_mae"], z["raw_count_mae"],
                             z["count_bias"], z["mean_people"]))
    return Table("accuracy", [("recording", pa.string()), ("hour", pa.string()), ("zone", pa.string()),
                              ("frames", pa.int64()), ("count_mae", pa.float64()), ("raw_count_mae", pa.float64()),
                              ("count_bias", pa.float64()), ("mean_people", pa.float64())], rows)


def heat_by_hour(recordings: list[CameraRecording], tz: str) -> dict[str, dict[str, float]]:
    """Mean smoothed count per zone and site-local hour (the report's heat map)."""
    sums: dict[tuple[str, str], list[int]] = defaultdict(list)
    for rec in recordings:
        for f in rec.frames:
            hour = local_hour(rec.job.start + f.t, tz)
            for i, zone in enumerate(rec.zones):
                sums[(zone, hour)].append(f.smoothed[i])
    heat: dict[str, dict[str, float]] = defaultdict(dict)
    for (zone, hour), vals in sorted(sums.items()):
        heat[zone][hour] = _r(sum(vals) / len(vals))
    return dict(heat)
