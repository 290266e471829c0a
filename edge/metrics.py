"""Prometheus metrics of one edge process: what an operator graphs to see a box keep up or fall behind."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


@dataclass
class EdgeMetrics:
    """The edge box's metrics in a registry of their own (so tests and several services do not collide)."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.fps = Gauge("hallgrid_camera_detect_fps", "Detections per second achieved, per camera",
                         ["camera"], registry=r)
        self.inference = Histogram("hallgrid_inference_seconds", "Detector time per frame (letterbox to boxes)",
                                   ["camera"], registry=r,
                                   buckets=(0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28))
        self.frames = Counter("hallgrid_frames_detected_total", "Frames run through the detector", ["camera"],
                              registry=r)
        self.dropped_frames = Counter("hallgrid_frames_dropped_total",
                                      "Frames due for detection but replaced by a newer one before the "
                                      "detector was free (the box is overloaded)", ["camera"], registry=r)
        self.source_reconnects = Counter("hallgrid_source_reconnects_total", "Camera source (re)open attempts "
                                         "after a loss", ["camera"], registry=r)
        self.camera_up = Gauge("hallgrid_camera_up", "1 while the camera delivers frames", ["camera"], registry=r)
        self.mqtt_reconnects = Counter("hallgrid_mqtt_reconnects_total", "Connections to the broker after the "
                                       "first", ["camera"], registry=r)
        self.mqtt_connected = Gauge("hallgrid_mqtt_connected", "1 while connected to the broker", ["camera"],
                                    registry=r)
        self.outbox_depth = Gauge("hallgrid_outbox_depth", "Messages waiting for the broker's acknowledgement",
                                  registry=r)
        self.outbox_dropped = Gauge("hallgrid_outbox_dropped", "Messages dropped because the outbox was full",
                                    registry=r)
        self.outbox_failures = Counter("hallgrid_outbox_write_failures_total", "Frames whose counts could not "
                                       "be written to the outbox (disk full, read-only): lost, and the camera "
                                       "reports degraded", ["camera"], registry=r)
        self.published = Counter("hallgrid_occupancy_acked_total", "Occupancy messages acknowledged by the "
                                 "broker", ["camera"], registry=r)
        self.bad_frames = Counter("hallgrid_bad_frames_total", "Frames that failed in detection or counting "
                                  "(logged, skipped)", ["camera"], registry=r)

    def serve(self, port: int, addr: str = "127.0.0.1") -> None:
        """Expose /metrics over HTTP on ``port`` (a daemon thread of prometheus_client)."""
        start_http_server(port, addr=addr, registry=self.registry)
