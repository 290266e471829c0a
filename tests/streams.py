"""Real RTSP/H.264 camera streams for tests and benches: the sample clip encoded with ffmpeg, served by
GStreamer's RTSP server (``tests/rtsp_server.py``, run under the system Python that has python3-gi)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from edge.video import read_frames, video_info

SERVER = Path(__file__).with_name("rtsp_server.py")
SYSTEM_PYTHON = "/usr/bin/python3"
SETUP_HINT = "run .ci/setup (it installs ffmpeg and GStreamer's RTSP server with apt)"


def missing_tools() -> str | None:
    """Why real streams cannot be made here (None when they can)."""
    if not shutil.which("ffmpeg"):
        return f"ffmpeg is not installed: {SETUP_HINT}"
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0'); "
                            "from gi.repository import GstRtspServer"], capture_output=True)
    if probe.returncode != 0:
        return f"GStreamer's RTSP server (python3-gi, gir1.2-gst-rtsp-server-1.0) is missing: {SETUP_HINT}"
    return None


def encode(frames: Iterable[np.ndarray], dest: Path, fps: float, size: tuple[int, int], gop_s: float = 2.0) -> Path:
    """BGR frames to H.264 in Matroska as an IP camera sends it: no B-frames, a keyframe every ``gop_s``."""
    w, h = size
    cmd = ["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{w}x{h}", "-r", f"{fps:g}",
           "-i", "-", "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-bf", "0",
           "-g", str(max(1, round(fps * gop_s))), "-pix_fmt", "yuv420p", "-f", "matroska", str(dest)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
    assert proc.stdin is not None
    for frame in frames:
        proc.stdin.write(np.ascontiguousarray(frame).tobytes())
    proc.stdin.close()
    if proc.wait() != 0:
        raise RuntimeError(f"ffmpeg could not encode {dest}")
    return dest


def encode_clip(video: Path, dest: Path, gop_s: float = 2.0) -> Path:
    """The whole clip as a camera's H.264 stream, at its own rate, a keyframe every ``gop_s``."""
    info = video_info(video)
    return encode((f for _, _, f in read_frames(video, prefetch=0)), dest, info.fps, (info.width, info.height),
                  gop_s)


def empty_scene(video: Path, samples: int = 60) -> np.ndarray:
    """The clip's background: the per-pixel median of frames spread over it (people move, the hall does not)."""
    info = video_info(video)
    step = max(1, info.frames // samples)
    frames = [f for i, _, f in read_frames(video, prefetch=0) if i % step == 0]
    return np.median(np.stack(frames), axis=0).astype(np.uint8)


def appearing_clip(video: Path, dest: Path, empty_s: float) -> Path:
    """``empty_s`` seconds of the empty hall, then the clip: people appear at media time ``empty_s``."""
    info = video_info(video)
    empty = empty_scene(video)

    def frames():
        for _ in range(round(empty_s * info.fps)):
            yield empty
        for _, _, f in read_frames(video, prefetch=0):
            yield f

    return encode(frames(), dest, info.fps, (info.width, info.height))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RtspServer:
    """``tests/rtsp_server.py`` as a subprocess on a free loopback port; can be stopped and started again."""

    def __init__(self, clip: Path, mounts: int = 1, switch_s: float | None = None):
        self.clip = clip
        self.mounts = mounts
        self.switch_s = switch_s
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.switches: dict[str, list[float]] = {}  # mount -> wall times people appeared (one per client)
        self._lock = threading.Lock()

    def url(self, i: int = 0) -> str:
        return f"rtsp://127.0.0.1:{self.port}/cam{i}"

    def start(self, timeout: float = 20.0) -> None:
        cmd = [SYSTEM_PYTHON, str(SERVER), "--port", str(self.port), "--file", str(self.clip),
               "--mounts", str(self.mounts)]
        if self.switch_s is not None:
            cmd += ["--switch-s", str(self.switch_s)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        ready = threading.Event()
        threading.Thread(target=self._read, args=(self.proc.stdout, ready), daemon=True).start()
        if not ready.wait(timeout):
            self.stop()
            raise RuntimeError("the RTSP server did not start")

    def _read(self, out, ready: threading.Event) -> None:
        for line in out:
            word, *rest = line.split()
            if word == "ready":
                ready.set()
            elif word == "switch":
                with self._lock:
                    self.switches.setdefault(rest[0], []).append(float(rest[1]))

    def switch_times(self, mount: str) -> list[float]:
        with self._lock:
            return list(self.switches.get(mount, []))

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """Die as a camera does when its power goes: no goodbye to the clients."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
