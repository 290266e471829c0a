"""Person detection with onnxruntime for YOLOX and Ultralytics (YOLOv5/v8/11) ONNX exports.

The family is recognised from the model itself (its metadata and output shape),
never from its file name, because installers rename files. Each family gets the
letterbox it was trained with: YOLOX pads bottom/right with 114 and feeds BGR
0..255; Ultralytics centres the image, pads with 114 and feeds RGB 0..1.
Getting this wrong costs recall silently, so it is tested on real photos.
"""

from __future__ import annotations

import ast
import logging
import threading
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import onnxruntime as ort

from edge.detections import Detections
from models import DEFAULT_MODEL, ModelError, resolve_model, yolox

if TYPE_CHECKING:
    from calibration.site import TileSettings

log = logging.getLogger(__name__)

PERSON = 0  # COCO class id
YOLOX_STRIDES = yolox.STRIDES


class Family(str, Enum):
    YOLOX = "yolox"  # raw grid output (N, 5 + classes), decoded here
    ULTRALYTICS = "ultralytics"  # YOLOv8/11: (4 + classes, N), boxes decoded, no objectness
    YOLOV5 = "yolov5"  # (N, 5 + classes), boxes decoded, with objectness


@dataclass(frozen=True)
class DetectorConfig:
    """What the edge box needs to know to detect people; all of it comes from the site or the command line."""

    model: str = DEFAULT_MODEL
    model_dir: str | None = None
    confidence: float = 0.45
    iou: float = 0.45
    threads: int = 0  # 0: onnxruntime's default (all cores it is given)
    spin: bool = True  # onnxruntime's threads spin during a run and sleep after it (see Detector._options)
    fit_aspect: bool = True  # YOLOX: feed a 16:9 frame as 320x192, not padded to 320x320 (35 % less work)


@dataclass(frozen=True)
class Letterbox:
    """How a frame was fitted into the model input, so that boxes can be mapped back."""

    scale: float
    pad_x: float
    pad_y: float
    width: int
    height: int
    input_height: int
    input_width: int
    content_width: int  # the frame's size once scaled, before padding
    content_height: int


def _yolox_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell offsets and strides of every YOLOX anchor, in the order of the model's output."""
    grids, strides = [], []
    for stride in YOLOX_STRIDES:
        ny, nx = height // stride, width // stride
        ys, xs = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
        grids.append(np.stack([xs.ravel(), ys.ravel()], 1))
        strides.append(np.full(ny * nx, stride))
    return np.concatenate(grids).astype(np.float32), np.concatenate(strides).astype(np.float32)


def _round_up(n: int, multiple: int = max(YOLOX_STRIDES)) -> int:
    return -(-n // multiple) * multiple


def yolox_variant(path: Path, height: int, width: int, options: ort.SessionOptions,
                  batch: int | None = None) -> ort.InferenceSession:
    """A session of the YOLOX model at ``path`` declared with another input size, checked by one run.

    ``batch=None`` (the default) declares a symbolic batch, checked with two frames,
    so that the frames several cameras have due go through one ``session.run``.
    The source is the registry's file, verified against its sha256 when it resolved.
    """
    session = ort.InferenceSession(yolox.resized(path, height, width, batch).SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    n = 2 if batch is None else batch
    out = session.run(None, {name: np.zeros((n, 3, height, width), np.float32)})[0]
    if out.shape[:2] != (n, yolox.anchors(height, width)):
        raise ModelError(f"variant {n}x{height}x{width} gives output {out.shape}, expected "
                         f"({n}, {yolox.anchors(height, width)}, ...)")
    return session


def recognise_family(output_shape: list, input_size: int, metadata: dict[str, str]) -> Family:
    """Tell the export family from the output layout and Ultralytics' metadata."""
    _, a, b = output_shape
    yolox_anchors = yolox.anchors(input_size, input_size)
    if "ultralytics" in metadata.get("author", "").lower():
        return Family.YOLOV5 if b == 85 or (isinstance(a, int) and isinstance(b, int) and a > b and b < 100) \
            else Family.ULTRALYTICS
    if b == 85 and a == yolox_anchors:
        return Family.YOLOX
    if b == 85 and a == 3 * yolox_anchors:
        return Family.YOLOV5
    if a == 84 and isinstance(b, int) and b > a:
        return Family.ULTRALYTICS
    raise ModelError(f"unrecognised detector output shape {output_shape}: expected YOLOX (1, {yolox_anchors}, 85) "
                     "or an Ultralytics export (1, 84, N) / (1, N, 85)")


class Detector:
    """Finds people in BGR frames.

    >>> det = Detector(DetectorConfig(model="yolox_nano_320"))    # doctest: +SKIP
    >>> det(cv2.imread("bus.jpg")).xyxy.shape                      # doctest: +SKIP
    (4, 4)
    """

    def __init__(self, config: DetectorConfig = DetectorConfig()):
        self.config = config
        self.model = resolve_model(config.model, config.model_dir)
        self.session = self._open(self.model.path, config)
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        meta = dict(self.session.get_modelmeta().custom_metadata_map or {})
        self.size = self._input_size(inp.shape, meta)
        self.family = recognise_family(self.session.get_outputs()[0].shape, self.size, meta)
        # YOLOX per input shape: (session, grid, strides); made once per frame size (see _yolox_shape)
        self._yolox: dict[tuple[int, int], tuple[ort.InferenceSession, np.ndarray, np.ndarray]] = {}
        self._batched: set[tuple[int, int]] = set()  # input shapes whose session takes any batch
        if self.family is Family.YOLOX:
            self._yolox[(self.size, self.size)] = (self.session, *_yolox_grid(self.size, self.size))
            self._add_shape(self.size, self.size)
        self._fit_aspect = config.fit_aspect and self.family is Family.YOLOX
        self._shape_lock = threading.Lock()

    def _add_shape(self, height: int, width: int) -> bool:
        """Serve the YOLOX input ``height`` x ``width``: with a session of symbolic batch, or of one frame
        where the graph fixes its batch inside; False if the graph refuses this input size."""
        options = self._options(self.config)
        try:
            session = yolox_variant(self.model.path, height, width, options)
            self._batched.add((height, width))
        except Exception as exc:
            log.info("model %s runs one frame at a time at %dx%d (%s)", self.name, width, height,
                     str(exc).splitlines()[0][:200])
            try:
                session = yolox_variant(self.model.path, height, width, options, batch=1)
            except Exception:
                return False
        self._yolox[(height, width)] = (session, *_yolox_grid(height, width))
        return True

    @staticmethod
    def _options(config: DetectorConfig) -> ort.SessionOptions:
        """Session options: with ``spin`` the intra-op threads spin while a run has work for them (what
        makes onnxruntime's default fast) and stop spinning when the run ends
        (``session.force_spinning_stop``), so an idle detector leaves the cores to the camera readers."""
        options = ort.SessionOptions()
        options.intra_op_num_threads = config.threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if config.spin else "0")
        if config.spin:
            options.add_session_config_entry("session.force_spinning_stop", "1")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return options

    @classmethod
    def _open(cls, path: Path, config: DetectorConfig) -> ort.InferenceSession:
        try:
            return ort.InferenceSession(str(path), cls._options(config), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises several unrelated types for a bad file
            raise ModelError(f"model file {path} cannot be loaded by onnxruntime (corrupt, truncated or "
                             f"not an ONNX model): {str(exc).splitlines()[0][:200]}") from exc

    def _input_size(self, shape: list, meta: dict[str, str]) -> int:
        if len(shape) == 4 and isinstance(shape[2], int) and shape[2] == shape[3]:
            return shape[2]
        if "imgsz" in meta:
            return int(ast.literal_eval(meta["imgsz"])[0])
        if self.model.spec:
            return self.model.spec.input
        raise ModelError(f"model {self.model.path} has a dynamic input size and no imgsz metadata")

    @property
    def name(self) -> str:
        return self.model.name

    def _yolox_shape(self, content_h: int, content_w: int) -> tuple[int, int]:
        """The YOLOX input shape for a letterboxed frame: its content rounded up to the largest stride.

        YOLOX is fully convolutional and its grid is decoded here, so a wide frame need
        not be padded to a square. The variant is the same weights with another declared
        input (how the 320 and 640 files were made); if a model refuses it, square it is.
        """
        if not self._fit_aspect:
            return self.size, self.size
        shape = (_round_up(content_h), _round_up(content_w))
        if shape not in self._yolox:
            with self._shape_lock:
                if shape not in self._yolox and not self._add_shape(*shape):
                    self._fit_aspect = False  # this graph has fixed shapes inside
                    log.info("model %s keeps its square input", self.name)
                    return self.size, self.size
        return shape

    def preprocess(self, frame: np.ndarray, input_size: int | None = None) -> tuple[np.ndarray, Letterbox]:
        """Letterbox a BGR frame into the model's NCHW float32 input (a batch of one).

        ``input_size`` (YOLOX only) is the long side of the input instead of the model's own size:
        a frame scaled up so that small, distant people cover enough of the finest grid.
        """
        box = self.letterbox(frame, input_size)
        blob = np.empty((1, 3, box.input_height, box.input_width), np.float32)
        self.fill(frame, box, blob[0])
        return blob, box

    def letterbox(self, frame: np.ndarray, input_size: int | None = None) -> Letterbox:
        """Where ``frame`` goes in the model input (scale, padding, input shape); see ``preprocess``."""
        h, w = frame.shape[:2]
        s = self.size
        if input_size is not None and input_size != s:
            if not self._fit_aspect:
                raise ModelError(f"model {self.name} has a fixed input of {s} px; a camera input_size of "
                                 f"{input_size} needs a YOLOX model")
            s = input_size
        r = min(s / h, s / w)
        if self.family is Family.YOLOX:
            nw, nh = int(w * r), int(h * r)
            top, left = 0, 0
            in_h, in_w = self._yolox_shape(nh, nw)
            if in_h < nh or in_w < nw:
                raise ModelError(f"model {self.name} keeps a square {self.size} px input; it cannot take "
                                 f"an input_size of {s}")
        else:
            nw, nh = round(w * r), round(h * r)
            dw, dh = (s - nw) / 2, (s - nh) / 2
            top, left = round(dh - 0.1), round(dw - 0.1)
            in_h, in_w = s, s
        return Letterbox(r, left, top, w, h, in_h, in_w, nw, nh)

    def fill(self, frame: np.ndarray, box: Letterbox, out: np.ndarray) -> None:
        """Write ``frame`` letterboxed by ``box`` into ``out`` (3 x input_height x input_width float32)."""
        nw, nh = box.content_width, box.content_height
        top, left = int(box.pad_y), int(box.pad_x)
        resized = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_LINEAR) \
            if (nw, nh) != (box.width, box.height) else frame
        padded = np.full((box.input_height, box.input_width, 3), 114, np.uint8)
        padded[top:top + nh, left:left + nw] = resized
        if self.family is Family.YOLOX:  # BGR, 0..255
            np.copyto(out, padded.transpose(2, 0, 1))
        else:  # RGB, 0..1
            np.multiply(padded[:, :, ::-1].transpose(2, 0, 1), np.float32(1 / 255), out=out)

    def infer(self, blob: np.ndarray) -> np.ndarray:
        """Model output for an N x 3 x H x W blob: one run where the session takes a batch, else one per frame."""
        shape = blob.shape[2:]
        session = self._yolox[shape][0] if self.family is Family.YOLOX else self.session
        if len(blob) == 1 or shape in self._batched:
            return session.run(None, {self.input_name: blob})[0]
        return np.concatenate([session.run(None, {self.input_name: blob[i:i + 1]})[0] for i in range(len(blob))])

    def postprocess(self, output: np.ndarray, box: Letterbox, confidence: float | None = None,
                    iou: float | None = None, candidates: float | None = None) -> Detections:
        """Decode person boxes above the confidence threshold, map them to frame pixels, apply NMS.

        With ``candidates`` (a score below the confidence) the boxes proposed above that score,
        before NMS, come along as ``Detections.candidates`` (a count correction's crowd measure).
        """
        conf = confidence or self.config.confidence
        low = min(conf, candidates) if candidates else conf
        if self.family is Family.YOLOX:
            out = output[0]
            scores = out[:, 4] * out[:, 5 + PERSON]
            keep = np.flatnonzero(scores > low)
            _, grid, strides = self._yolox[(box.input_height, box.input_width)]
            raw, stride = out[keep], strides[keep, None]
            centre = (raw[:, :2] + grid[keep]) * stride
            size = np.exp(raw[:, 2:4]) * stride
        elif self.family is Family.YOLOV5:
            out = output[0]
            scores = out[:, 4] * out[:, 5 + PERSON]
            keep = np.flatnonzero(scores > low)
            centre, size = out[keep, :2], out[keep, 2:4]
        else:
            out = output[0]
            scores = out[4 + PERSON]
            keep = np.flatnonzero(scores > low)
            centre, size = out[:2, keep].T, out[2:4, keep].T
        scores = scores[keep].astype(np.float32)
        xy0 = (centre - size / 2 - (box.pad_x, box.pad_y)) / box.scale
        wh = size / box.scale
        proposed = None
        if candidates:
            proposed = np.concatenate([xy0, xy0 + wh], 1).astype(np.float32).reshape(-1, 4)
            np.clip(proposed, 0, (box.width, box.height, box.width, box.height), out=proposed)
            above = scores > conf
            xy0, wh, scores = xy0[above], wh[above], scores[above]
        if not len(scores):
            return Detections(candidates=proposed)
        picked = cv2.dnn.NMSBoxes(np.concatenate([xy0, wh], 1).tolist(), scores.tolist(), conf, iou or self.config.iou)
        picked = np.asarray(picked, dtype=np.int64).reshape(-1)
        xyxy = np.concatenate([xy0[picked], xy0[picked] + wh[picked]], 1)
        np.clip(xyxy, 0, (box.width, box.height, box.width, box.height), out=xyxy)
        return Detections(xyxy.astype(np.float32), scores[picked], proposed)

    def __call__(self, frame: np.ndarray, input_size: int | None = None, confidence: float | None = None,
                 iou: float | None = None, tiles: "TileSettings | dict | None" = None,
                 candidates: float | None = None) -> Detections:
        """People in ``frame``; the keyword settings (a camera's, see CameraDetector) override the config.

        With ``tiles`` the frame is detected tile by tile and merged (edge/tiling.py); the boxes
        proposed before NMS (``candidates``, see ``postprocess``) are then not kept: tiles overlap.
        """
        if tiles is not None:
            from edge.tiling import detect_tiled

            return detect_tiled(self, frame, tiles, input_size, confidence, iou)
        blob, box = self.preprocess(frame, input_size)
        return self.postprocess(self.infer(blob), box, confidence, iou, candidates)

    def detect_many(self, frames: list[np.ndarray], settings: list[dict] | None = None) -> list[Detections]:
        """People in several frames (one camera's each), with one ``session.run`` per input shape.

        ``settings`` are the cameras' keyword settings, one dict per frame (see ``__call__``); the
        detections are those ``__call__`` gives frame by frame: batching changes how often the model
        is called, not what it sees.
        """
        settings = settings or [{} for _ in frames]
        found: list[Detections] = [Detections()] * len(frames)
        whole = []  # frames detected whole; a tiled camera's frame is its own batch of tiles
        for i, s in enumerate(settings):
            if s.get("tiles") is not None:
                found[i] = self(frames[i], **s)
            else:
                whole.append(i)
        boxes = {i: self.letterbox(frames[i], settings[i].get("input_size")) for i in whole}
        groups: dict[tuple[int, int], list[int]] = {}
        for i, box in boxes.items():
            groups.setdefault((box.input_height, box.input_width), []).append(i)
        for (in_h, in_w), members in groups.items():
            blob = np.empty((len(members), 3, in_h, in_w), np.float32)
            for row, i in enumerate(members):
                self.fill(frames[i], boxes[i], blob[row])
            output = self.infer(blob)
            for row, i in enumerate(members):
                found[i] = self.postprocess(output[row:row + 1], boxes[i], settings[i].get("confidence"),
                                            settings[i].get("iou"), settings[i].get("candidates"))
        return found
