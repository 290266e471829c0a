"""Real camera streams: the sample clip over RTSP/H.264 from GStreamer's RTSP server, read by the real edge
process, counts published to a real Mosquitto; a dying server, its return, and how late people are counted."""

from __future__ import annotations

import time

import pytest

from edge.contract import CameraState
from conftest import PETS_VIDEO
from streams import RtspServer, appearing_clip, encode_clip, missing_tools
from test_edge_service import Edge, edges, subscriber, write_site  # noqa: F401 (fixtures)

pytestmark = pytest.mark.timeout(180)
STALL_S = 1.5  # what Edge passes as --stall


@pytest.fixture(scope="module")
def tools():
    why = missing_tools()
    if why:
        pytest.fail(why)


@pytest.fixture(scope="module")
def clip(tmp_path_factory, tools, need_footage):
    return encode_clip(PETS_VIDEO, tmp_path_factory.mktemp("rtsp") / "pets.mkv")


@pytest.fixture
def server(clip):
    s = RtspServer(clip)
    s.start()
    yield s
    s.stop()


def test_stream_counts_are_published_lost_when_the_server_dies_and_back_when_it_returns(
        tmp_path, broker, subscriber, edges, server):  # noqa: F811
    site = write_site(tmp_path / "site.yaml", server.url(), loop=False)
    edges.append(Edge(tmp_path, site, broker))
    subscriber.wait_state(CameraState.ONLINE, 60)
    subscriber.wait_for(lambda: sum(m.count for m in subscriber.occupancy()) > 0, 60,
                        "people counted in the stream")
    assert {m.camera for m in subscriber.occupancy()} == {"cam1"}
    n = len(subscriber.statuses())
    server.kill()
    died = time.monotonic()
    lost = subscriber.wait_state(CameraState.CAMERA_LOST, 20, after=n)
    noticed = time.monotonic() - died
    assert noticed <= STALL_S + 2.5, f"camera_lost {noticed:.1f} s after the server died (--stall {STALL_S})"
    assert lost.detail
    n, seen = len(subscriber.statuses()), len(subscriber.occupancy())
    server.start()
    subscriber.wait_state(CameraState.ONLINE, 60, after=n)
    subscriber.wait_for(lambda: len(subscriber.occupancy()) > seen, 30, "counts again after the server returned")


def test_people_appearing_in_a_stream_are_counted_within_the_freshness_bound(
        tmp_path, broker, subscriber, edges, tools, need_footage):  # noqa: F811
    empty_s = 6.0
    stream = RtspServer(appearing_clip(PETS_VIDEO, tmp_path / "appearing.mkv", empty_s), switch_s=empty_s)
    stream.start()
    try:
        site = write_site(tmp_path / "site.yaml", stream.url(), loop=False)
        edges.append(Edge(tmp_path, site, broker))
        switched = subscriber.wait_for(lambda: stream.switch_times("/cam0"), 60, "people to appear in the stream")
        appeared = switched[0]
        counted = subscriber.wait_for(
            lambda: next((t for _, m, t in subscriber.occupancy_received() if m.count > 0), None), 30,
            "a count above zero")
        before = [m for _, m, t in subscriber.occupancy_received() if t < appeared]
        assert before and all(m.count == 0 for m in before), "the empty hall counts nobody"
        late = counted - appeared
        print(f"people counted {late:.2f} s after they appeared in the stream")
        assert late <= 1.5 + 0.5, f"counted {late:.2f} s after people appeared (goal 1.5 s; 0.5 s for a loaded test box)"
    finally:
        stream.stop()


class SkewedClock:
    """The wall clock, jumped ahead on request: to the reader, its source is suddenly that far behind."""

    def __init__(self):
        self.skew = 0.0

    def now(self) -> float:
        return time.time() + self.skew

    def monotonic(self) -> float:
        return time.monotonic() + self.skew


def test_a_reader_that_falls_behind_drops_stale_frames_and_counts_fresh_ones(need_footage):
    from edge.sources import CameraReader, classify

    clock = SkewedClock()
    handed: list[float] = []
    stale: list[float] = []
    reader = CameraReader("cam", classify(str(PETS_VIDEO), loop=True), 5, clock,
                          on_frame=lambda f, ts: handed.append(time.monotonic()),
                          on_stale=lambda: stale.append(time.monotonic()))
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while len(handed) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(handed) >= 5 and not stale, "a reader that keeps up hands every due frame on"
        clock.skew = 4.0  # the reader is now 4 s behind the clip's pace
        jumped = time.monotonic()
        while not (stale and handed[-1] > stale[-1]) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        reader.stop()
    assert stale, "due frames more than a second behind were dropped"
    assert not [t for t in handed if jumped < t < stale[0]], "no stale frame was handed on before the drops"
    assert handed[-1] > stale[-1], "once caught up, fresh frames are counted again"
    assert stale[-1] - stale[0] < 3.0, "catching up takes grabs, not real time"


def test_the_stream_options_leave_files_frame_for_frame(need_footage, monkeypatch):
    """The FFmpeg options for streams stay set for the process; a file read with them gives every frame."""
    from edge.sources import FFMPEG_OPTIONS_ENV, STREAM_FFMPEG_OPTIONS
    from edge.video import read_frames

    plain = sum(1 for _ in read_frames(PETS_VIDEO, prefetch=0))
    monkeypatch.setenv(FFMPEG_OPTIONS_ENV, STREAM_FFMPEG_OPTIONS)
    assert sum(1 for _ in read_frames(PETS_VIDEO, prefetch=0)) == plain == 795
