"""A real RTSP/H.264 server for tests and benches: GStreamer's gst-rtsp-server serving one file on N mounts.

Runs under the system Python (Debian's python3-gi and gir1.2-gst-rtsp-server-1.0),
not the project's venv; ``tests/streams.py`` starts it as a subprocess.

    /usr/bin/python3 tests/rtsp_server.py --port 8554 --file clip.mkv --mounts 4 [--switch-s 5]

Mounts are /cam0 ... /cam{N-1}. Each client gets its own pipeline that plays
the file from its start at the file's own rate, as a camera would. With
``--switch-s``, the server prints ``switch MOUNT WALLTIME`` when it sends the
first frame at or after that media time (the moment people appear in a stream
built as an empty scene followed by the clip), so that a client can measure how
late it counted them. It prints ``ready PORT`` once it listens.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def factory(path: str, mount: str, switch_ns: int | None) -> GstRtspServer.RTSPMediaFactory:
    f = GstRtspServer.RTSPMediaFactory()
    f.set_launch(f"( filesrc location={path} ! matroskademux ! h264parse ! "
                 "rtph264pay name=pay0 pt=96 config-interval=1 )")
    f.set_shared(False)  # every client gets the stream from its start
    if switch_ns is not None:
        def configured(_factory, media) -> None:
            pay = media.get_element().get_by_name("pay0")
            sent = [False]

            def probe(_pad, info):
                buf = info.get_buffer()
                if not sent[0] and buf.pts != Gst.CLOCK_TIME_NONE and buf.pts >= switch_ns:
                    sent[0] = True
                    print(f"switch {mount} {time.time():.3f}", flush=True)
                return Gst.PadProbeReturn.OK

            pay.get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, probe)

        f.connect("media-configure", configured)
    return f


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--file", required=True, help="H.264 in Matroska (see tests/streams.py encode)")
    ap.add_argument("--mounts", type=int, default=1)
    ap.add_argument("--switch-s", type=float, default=None)
    args = ap.parse_args()
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    switch_ns = None if args.switch_s is None else int(args.switch_s * 1e9)
    for i in range(args.mounts):
        mounts.add_factory(f"/cam{i}", factory(args.file, f"/cam{i}", switch_ns))
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on 127.0.0.1:{args.port}")
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, loop.quit)
    print(f"ready {args.port}", flush=True)
    loop.run()


if __name__ == "__main__":
    main()
