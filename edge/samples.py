"""The sample footage behind ``sample://NAME`` camera sources (the demo and the example site).

The team's offline copy (``shared/footage`` beside the checkout) is used first;
then the user's cache; then, on a Debian or Ubuntu machine, the clip is taken
from Debian's ``opencv-doc`` package with apt's own client and verified.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from models.registry import cache_dir as model_cache_dir
from models.registry import sha256_of


@dataclass(frozen=True)
class Sample:
    name: str
    shared_path: str  # below shared/footage
    sha256: str
    deb_package: str
    deb_member: str


SAMPLES = {
    "vtest.avi": Sample("vtest.avi", "pets09-s2l1/vtest.avi",
                        "45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf",
                        "opencv-doc", "./usr/share/doc/opencv-doc/examples/data/vtest.avi"),
}
SCHEME = "sample://"


class SampleError(RuntimeError):
    """Sample footage that is nowhere and cannot be fetched; says what to do instead."""


def _shared_footage_dirs() -> list[Path]:
    checkout = Path(__file__).resolve().parents[1]
    return [p for p in (checkout.parent / "shared" / "footage", Path.cwd().parent / "shared" / "footage")
            if p.is_dir()]


def _from_debian(sample: Sample, dest: Path) -> None:
    if not (shutil.which("apt-get") and shutil.which("dpkg-deb")):
        raise SampleError(f"sample {sample.name} is not cached and this machine has no apt to fetch Debian's "
                          f"{sample.deb_package} package; pass a video file of your own instead")
    with tempfile.TemporaryDirectory() as tmp:
        got = subprocess.run(["apt-get", "download", sample.deb_package], cwd=tmp, capture_output=True, text=True)
        debs = list(Path(tmp).glob("*.deb"))
        if got.returncode or not debs:
            raise SampleError(f"apt-get download {sample.deb_package} failed: {got.stderr.strip()[-300:]}")
        tar_bytes = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(debs[0])], capture_output=True, check=True)
        tar_path = Path(tmp) / "data.tar"
        tar_path.write_bytes(tar_bytes.stdout)
        with tarfile.open(tar_path) as tar:
            member = tar.extractfile(sample.deb_member)
            if member is None:
                raise SampleError(f"{sample.deb_package} has no {sample.deb_member}")
            dest.write_bytes(member.read())


def resolve_sample(source: str) -> str:
    """Turn ``sample://NAME`` into a local, verified file path; other sources pass through unchanged."""
    if not source.startswith(SCHEME):
        return source
    name = source[len(SCHEME):]
    if name not in SAMPLES:
        raise SampleError(f"unknown sample {name!r}; known: {', '.join(SAMPLES)}")
    sample = SAMPLES[name]
    for folder in _shared_footage_dirs():
        if (folder / sample.shared_path).is_file():
            return str(folder / sample.shared_path)
    cached = model_cache_dir().parent / "footage" / sample.name
    if not cached.is_file():
        cached.parent.mkdir(parents=True, exist_ok=True)
        _from_debian(sample, cached)
        if sha256_of(cached) != sample.sha256:
            cached.unlink()
            raise SampleError(f"fetched {sample.name} does not match its known sha256; not used")
    return str(cached)
