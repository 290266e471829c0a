"""Find, verify and (where a network allows) fetch detector model files.

A model is named (``yolox_nano_320``) or given as a path. Names are looked up in
the shipped ``manifest.yaml``; their files are searched, in order, in the folder
configured by the user (``--model-dir`` or ``HALLGRID_MODEL_DIR``), the user's
cache, and a ``shared/models`` folder beside the checkout (the team's offline
copy). A file whose sha256 disagrees with the manifest is refused: a truncated
download must never become a silently worse detector.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML

DEFAULT_MODEL = "yolox_nano_320"
MANIFEST_PATH = Path(__file__).with_name("manifest.yaml")
ENV_MODEL_DIR = "HALLGRID_MODEL_DIR"
USER_MANIFEST = "manifest.yaml"


class ModelError(RuntimeError):
    """A model is missing, corrupt or of an unknown kind; the message says where we looked and what to do."""


@dataclass(frozen=True)
class ModelSpec:
    """One manifest entry: what the file is, where it comes from, how to check it."""

    name: str
    file: str
    family: str
    input: int
    sha256: str
    license: str
    source: str
    url: str | None = None
    derived_from: str | None = None


@dataclass(frozen=True)
class ResolvedModel:
    """A model file found on disk, with its manifest entry when it has one."""

    path: Path
    spec: ModelSpec | None
    verified: bool

    @property
    def name(self) -> str:
        return self.spec.name if self.spec else self.path.stem


def _read_manifest(path: Path) -> dict[str, ModelSpec]:
    data = YAML(typ="safe").load(path.read_text(encoding="utf-8")) or {}
    try:
        return {entry["name"]: ModelSpec(**entry) for entry in data.get("models", [])}
    except (TypeError, KeyError) as exc:
        raise ModelError(f"model manifest {path} has a malformed entry: {exc}") from None


def load_manifest(model_dir: Path | str | None = None) -> dict[str, ModelSpec]:
    """The shipped manifest plus the ``manifest.yaml`` of each model folder (models the user exported)."""
    manifest = _read_manifest(MANIFEST_PATH)
    for folder in search_dirs(model_dir):
        if (folder / USER_MANIFEST).is_file():
            manifest.update(_read_manifest(folder / USER_MANIFEST))
    return manifest


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hallgrid" / "models"


def shared_dirs() -> list[Path]:
    """The team's offline model folder: ``shared/models`` beside the checkout or the working directory."""
    checkout = Path(__file__).resolve().parents[1]
    candidates = [checkout.parent / "shared" / "models", Path.cwd().parent / "shared" / "models"]
    seen: list[Path] = []
    for c in candidates:
        if c.is_dir() and c.resolve() not in seen:
            seen.append(c.resolve())
    return seen


def search_dirs(model_dir: Path | str | None = None) -> list[Path]:
    configured = model_dir or os.environ.get(ENV_MODEL_DIR)
    dirs = [Path(configured)] if configured else []
    return dirs + [cache_dir()] + shared_dirs()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verify(path: Path, spec: ModelSpec) -> None:
    actual = sha256_of(path)
    if actual != spec.sha256:
        raise ModelError(
            f"model file {path} is corrupt or not {spec.name}: sha256 {actual[:12]}… but the manifest says "
            f"{spec.sha256[:12]}…; delete it and fetch it again (source: {spec.source})"
        )


def resolve_model(name_or_path: str | Path = DEFAULT_MODEL, model_dir: Path | str | None = None,
                  fetch: bool = True) -> ResolvedModel:
    """Return a verified model file for a manifest name, or any ONNX file given by path.

    Raises ModelError naming every folder searched when the file is nowhere and cannot be fetched.
    """
    manifest = load_manifest(model_dir)
    as_path = Path(name_or_path)
    if str(name_or_path) not in manifest:
        if as_path.suffix == ".onnx" or as_path.exists():
            if not as_path.is_file():
                raise ModelError(f"model file {as_path} does not exist")
            spec = next((s for s in manifest.values() if s.file == as_path.name), None)
            if spec:
                _verify(as_path, spec)
            return ResolvedModel(as_path, spec, verified=spec is not None)
        raise ModelError(f"unknown model {name_or_path!r}: known models are {', '.join(sorted(manifest))}, "
                         "or pass the path of an .onnx file")
    spec = manifest[str(name_or_path)]
    dirs = search_dirs(model_dir)
    for folder in dirs:
        candidate = folder / spec.file
        if candidate.is_file():
            _verify(candidate, spec)
            return ResolvedModel(candidate, spec, verified=True)
    if fetch:
        from models.fetch import fetch_model  # only on a machine without the file

        return ResolvedModel(fetch_model(spec, manifest, cache_dir()), spec, verified=True)
    raise ModelError(f"model {spec.name} ({spec.file}) not found; looked in: " + ", ".join(map(str, dirs)))


def list_models(model_dir: Path | str | None = None) -> list[tuple[ModelSpec | None, Path | None, bool]]:
    """Every manifest model with the file found for it (or None), plus unlisted .onnx files in the folders."""
    manifest = load_manifest(model_dir)
    dirs = search_dirs(model_dir)
    rows: list[tuple[ModelSpec | None, Path | None, bool]] = []
    known_files = {s.file for s in manifest.values()}
    for spec in manifest.values():
        path = next((d / spec.file for d in dirs if (d / spec.file).is_file()), None)
        rows.append((spec, path, bool(path) and sha256_of(path) == spec.sha256))
    for folder in dirs:
        for path in sorted(folder.glob("*.onnx")) if folder.is_dir() else []:
            if path.name not in known_files:
                known_files.add(path.name)
                rows.append((None, path, False))
    return rows
