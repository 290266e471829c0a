"""Fetch a manifest model into the user's cache on a machine with internet.

Only used where no folder has the file (never in CI, which has the team's copy).
Models marked ``derived_from`` are made from their parent by changing the
declared input size, which is how the 320 and 640 YOLOX-Nano files were made.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path

from tqdm import tqdm

from models import yolox
from models.registry import ModelError, ModelSpec, sha256_of


def _download(url: str, dest: Path) -> None:
    tmp = dest.with_suffix(".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, tmp.open("wb") as out:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"fetching {dest.name}") as bar:
                for block in iter(lambda: resp.read(1 << 16), b""):
                    out.write(block)
                    bar.update(len(block))
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ModelError(f"could not download {url}: {exc}; copy the file into a model folder "
                         f"(--model-dir or HALLGRID_MODEL_DIR) instead") from exc
    tmp.replace(dest)


def fetch_model(spec: ModelSpec, manifest: dict[str, ModelSpec], cache: Path) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    dest = cache / spec.file
    if spec.derived_from:
        parent = manifest[spec.derived_from]
        parent_path = cache / parent.file
        if not parent_path.is_file():
            parent_path = fetch_model(parent, manifest, cache)
        import onnx

        onnx.save(yolox.resized(parent_path, spec.input, spec.input), str(dest))
    elif spec.url:
        _download(spec.url, dest)
    else:
        raise ModelError(f"model {spec.name} is not in any model folder and has no download address; "
                         f"put {spec.file} into --model-dir or HALLGRID_MODEL_DIR (source: {spec.source})")
    actual = sha256_of(dest)
    if actual != spec.sha256:
        dest.unlink()
        raise ModelError(f"fetched {spec.file} has sha256 {actual[:12]}…, expected {spec.sha256[:12]}…; "
                         "the download was corrupt or the release changed")
    return dest
