"""Hand counts of still images: ``image,count`` (people per image) and ``image,x,y`` (one row per head).

They are what an installer writes by hand for a few dozen snapshots of a camera,
so every malformed line is refused with its file, line and field: a count that is
silently dropped would silently skew the correction fitted from the rest.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import numpy as np

from edge.evaluation import GroundTruthError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
MAX_ROWS = 1_000_000  # a hand-count file is hundreds of lines; beyond this it is not one


def _rows(path: Path, header: list[str]):
    """(line number, row) of a CSV whose first line must be ``header``."""
    try:
        fh = path.open(encoding="utf-8", newline="")
    except OSError as exc:
        raise GroundTruthError(f"{path}: cannot read: {exc.strerror}") from None
    with fh:
        reader = csv.reader(fh)
        try:
            first = next(reader, None)
            if first is None or [c.strip() for c in first] != header:
                raise GroundTruthError(f"{path}:1: expected the header '{','.join(header)}', got "
                                       f"{','.join(first or [])!r}")
            for row in reader:
                if reader.line_num > MAX_ROWS:
                    raise GroundTruthError(f"{path}:{reader.line_num}: more than {MAX_ROWS} lines")
                if not any(c.strip() for c in row):
                    continue
                if len(row) != len(header):
                    raise GroundTruthError(f"{path}:{reader.line_num}: expected {len(header)} fields "
                                           f"({','.join(header)}), got {len(row)}")
                yield reader.line_num, [c.strip() for c in row]
        except UnicodeDecodeError:
            raise GroundTruthError(f"{path}:{reader.line_num + 1}: not UTF-8 text") from None
        except csv.Error as exc:
            raise GroundTruthError(f"{path}:{reader.line_num}: {exc}") from None


def _image(path: Path, lineno: int, name: str) -> str:
    if not name or "/" in name or "\\" in name or not name.lower().endswith(IMAGE_SUFFIXES):
        raise GroundTruthError(f"{path}:{lineno}: image: {name!r} is not an image file name "
                               f"({', '.join(IMAGE_SUFFIXES)}) in the image folder")
    return name


def load_counts(path: str | Path) -> dict[str, int]:
    """``image,count`` -> image name -> people, in file order.

    >>> import tempfile, os; f = tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False)
    >>> _ = f.write("image,count\\na.jpg,3\\nb.jpg,x\\n"); f.close()
    >>> load_counts(f.name)
    Traceback (most recent call last):
    edge.evaluation.GroundTruthError: ...:3: count: 'x' is not a whole number of people (0 or more)
    """
    path = Path(path)
    counts: dict[str, int] = {}
    for lineno, (name, value) in _rows(path, ["image", "count"]):
        name = _image(path, lineno, name)
        try:
            n = int(value)
            if n < 0:
                raise ValueError
        except ValueError:
            raise GroundTruthError(f"{path}:{lineno}: count: {value!r} is not a whole number of people "
                                   "(0 or more)") from None
        if name in counts:
            raise GroundTruthError(f"{path}:{lineno}: image: {name} is counted twice")
        counts[name] = n
    if not counts:
        raise GroundTruthError(f"{path}: no counts after the header")
    return counts


def load_points(path: str | Path) -> dict[str, np.ndarray]:
    """``image,x,y`` (pixels) -> image name -> (N, 2) float32 head points."""
    path = Path(path)
    points: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for lineno, (name, x, y) in _rows(path, ["image", "x", "y"]):
        name = _image(path, lineno, name)
        xy = []
        for field, text in (("x", x), ("y", y)):
            try:
                xy.append(float(text))
            except ValueError:
                raise GroundTruthError(f"{path}:{lineno}: {field}: {text!r} is not a pixel coordinate") from None
        if min(xy) < 0 or not all(np.isfinite(xy)):
            raise GroundTruthError(f"{path}:{lineno}: x,y: ({x}, {y}) is not a pixel of the image")
        points[name].append((xy[0], xy[1]))
    return {name: np.asarray(p, np.float32) for name, p in points.items()}


def images_of(folder: str | Path, counts: dict[str, int]) -> list[Path]:
    """The counted images of ``folder`` in name order (capture time, for names that carry it)."""
    folder = Path(folder)
    missing = [name for name in counts if not (folder / name).is_file()]
    if missing:
        raise GroundTruthError(f"{folder}: {len(missing)} counted image(s) are not in the folder, e.g. "
                               f"{', '.join(missing[:3])}")
    return [folder / name for name in sorted(counts)]
