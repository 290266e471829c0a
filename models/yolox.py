"""YOLOX models at another input size: same weights, another declared input.

YOLOX is fully convolutional and its output grid is decoded outside the graph,
so only the declared input and output shapes change. That is how the 320 and
640 files were made from Megvii's 416 release, and how the detector feeds a
wide frame without padding it to a square.
"""

from __future__ import annotations

from pathlib import Path

STRIDES = (8, 16, 32)


def anchors(height: int, width: int) -> int:
    """Output rows of a YOLOX model for an input of height x width."""
    return sum((height // s) * (width // s) for s in STRIDES)


def resized(path: Path, height: int, width: int, batch: int | None = 1):
    """The ONNX model at ``path`` declared with input batchx3xheightxwidth (an ``onnx.ModelProto``).

    The output rows become the symbolic dimension ``N``, exactly as in the published
    320 and 640 files, so a derived file has their sha256. ``batch=None`` declares a
    symbolic batch (input and output), so that one ``session.run`` takes the frames
    of several cameras: the graph's reshapes take the batch from the tensor's shape.
    """
    import onnx

    model = onnx.load(str(path))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_value, dims[3].dim_value = height, width
    out = model.graph.output[0].type.tensor_type.shape.dim
    out[1].dim_param = "N"
    if batch is None:
        dims[0].dim_param = out[0].dim_param = "batch"
    return model
