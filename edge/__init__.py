"""The edge box: cameras in, person detections, per-zone occupancy out."""
