"""The edge box: cameras in, person detections, per-zone occupancy out."""

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("hallgrid")   # one version for --version, the status message and the metrics
except PackageNotFoundError:        # run from a source tree that was never installed
    VERSION = "0+unknown"
