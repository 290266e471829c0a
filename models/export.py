"""Export an Ultralytics model to the ONNX layout the edge detector expects, and record it.

Ultralytics (and torch) are an optional extra (``pip install 'hallgrid[export]'``):
the edge box, the hub and CI never need them. The export keeps the decoded
(1, 4 + classes, N) output without NMS, which the detector recognises.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ruamel.yaml import YAML

from models.registry import USER_MANIFEST, ModelError, ModelSpec, sha256_of


def _ultralytics():
    try:
        from ultralytics import YOLO
    except ImportError:
        raise ModelError("exporting needs Ultralytics: pip install 'hallgrid[export]'") from None
    return YOLO


def export_ultralytics(weights: str, out_dir: Path, imgsz: int = 320, int8: bool = False) -> ModelSpec:
    """Export ``weights`` (a .pt, a model YAML, or an Ultralytics model name) to ``out_dir`` and record it.

    A bare model name needs a download; on a machine without internet that fails
    with a message saying to pass a local .pt file (or a model YAML) instead.
    """
    yolo = _ultralytics()
    source = Path(weights)
    if not source.exists() and not weights.endswith((".yaml", ".yml")):
        try:
            model = yolo(weights)
        except Exception as exc:  # Ultralytics raises several types for a failed download
            raise ModelError(f"cannot get {weights!r}: it would be downloaded and that failed ({exc}); "
                             "without internet pass a local .pt file, or a model YAML such as yolo11n.yaml") \
                from None
    else:
        model = yolo(weights)
    exported = Path(model.export(format="onnx", imgsz=imgsz, opset=12, simplify=False, dynamic=False, nms=False))
    stem = f"{Path(weights).stem}_{imgsz}"
    out_dir.mkdir(parents=True, exist_ok=True)
    dest = out_dir / f"{stem}.onnx"
    shutil.move(str(exported), dest)
    if int8:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantised = out_dir / f"{stem}_int8.onnx"
        quantize_dynamic(str(dest), str(quantised), weight_type=QuantType.QUInt8)
        dest.unlink()
        dest, stem = quantised, f"{stem}_int8"
    spec = ModelSpec(name=stem, file=dest.name, family="ultralytics", input=imgsz, sha256=sha256_of(dest),
                     license="AGPL-3.0 (Ultralytics)", source=f"exported from {weights} by hallgrid models export")
    record(spec, out_dir)
    return spec


def record(spec: ModelSpec, folder: Path) -> None:
    """Add or replace ``spec`` in the folder's own manifest, which the registry reads after the shipped one."""
    yaml = YAML()
    path = folder / USER_MANIFEST
    data = yaml.load(path.read_text(encoding="utf-8")) if path.is_file() else None
    data = data or {"models": []}
    entries = [e for e in data["models"] if e.get("name") != spec.name]
    entries.append({k: v for k, v in spec.__dict__.items() if v is not None})
    data["models"] = entries
    with path.open("w", encoding="utf-8") as fh:
        yaml.dump(data, fh)
