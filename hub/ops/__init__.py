"""What an operator watches: liveness and readiness probes, Prometheus metrics (``install_ops``)."""

from hub.ops.health import install_ops

__all__ = ["install_ops"]
