"""The installer's zone editor: an authenticated web page served by the edge box.

Why on the edge box: camera snapshots show the hall's customers, so they never
leave the box except through this session, which needs the token printed at
start (``?token=`` once sets a cookie; scripts send ``Authorization: Bearer``).
Every request, the page and its script included, is refused with 401 without it.

The page (``edge/static/calibrate/``, plain HTML/JS/SVG) draws on a fresh
snapshot; counts are computed here with the same ``ZoneCounter`` the edge
service uses, over the polygons being edited, so what the installer sees is
what the box will publish. Saving writes the site file only when it is valid
(``calibration.site_edit``).
"""

from __future__ import annotations

import hmac
import itertools
import secrets
import threading
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

import cv2
import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from calibration.checks import CameraView, check_camera
from calibration.proof import ProofSample, prove
from calibration.site import (MAX_NAME, MAX_POINTS, MAX_ZONES, Camera, Site, SiteError, ZoneType, load_site,
                              polygon_problem)
from calibration.site_edit import edit_camera, save_site_text, site_lock
from edge.detections import Detections
from edge.detector import Detector
from edge.http_limits import KIB, BodyLimit
from edge.snapshots import Frame, SnapshotSource
from edge.zones import ZoneCounter, ZoneShape

COOKIE = "hallgrid_calibrate"
STATIC = files("edge") / "static" / "calibrate"
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8"}
# A request body: the largest camera the site model allows (64 zones and 64 masks of 100 points) fits.
MAX_BODY = 512 * KIB


def new_token() -> str:
    return secrets.token_urlsafe(24)


class ShapeIn(BaseModel):
    """A drawn zone or mask; bounded like the site model, so a huge draft is refused (422) before any
    geometry is computed."""

    id: str = Field(max_length=64)
    polygon: list[tuple[float, float]] = Field(max_length=MAX_POINTS)
    name: str | None = Field(None, max_length=MAX_NAME)
    type: str | None = Field(None, max_length=32)
    grid_cell: str | None = Field(None, max_length=64)
    capacity: int | None = None


class ShapesIn(BaseModel):
    zones: list[ShapeIn] = Field(default_factory=list, max_length=MAX_ZONES)
    masks: list[ShapeIn] = Field(default_factory=list, max_length=MAX_ZONES)


class ProofIn(ShapesIn):
    snapshot: int
    truth: dict[str, int] = Field(max_length=MAX_ZONES)


@dataclass
class Snapshot:
    number: int
    frame: Frame
    detections: Detections
    jpeg: bytes


@dataclass
class CameraState:
    source: SnapshotSource
    last: Snapshot | None = None
    proofs: list[ProofSample] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class CalibrateApp:
    """The editor's state: the site file, one snapshot source per camera, one detector."""

    def __init__(self, site_path: str | Path, detector: Detector, token: str, camera_ids: list[str] | None = None):
        self.site_path = Path(site_path)
        self.site: Site = load_site(self.site_path)
        self.detector = detector
        self.token = token
        ids = camera_ids or [c.id for c in self.site.cameras]
        self.cameras = {cid: CameraState(SnapshotSource(self.site.resolve_source(self.site.camera(cid))))
                        for cid in ids}
        self._detect_lock = threading.Lock()
        self._numbers = itertools.count(1)  # next() is atomic: two cameras never share a snapshot number

    def camera(self, camera_id: str) -> tuple[Camera, CameraState]:
        if camera_id not in self.cameras:
            raise HTTPException(404, f"no camera {camera_id!r} in this session")
        return self.site.camera(camera_id), self.cameras[camera_id]

    def snapshot(self, camera_id: str) -> Snapshot:
        """A fresh frame of the camera, with its people detected."""
        camera, state = self.camera(camera_id)
        settings = camera.detector.model_dump(exclude_none=True) if camera.detector else {}  # as the edge detects
        with state.lock:
            try:
                frame = state.source.grab()
            except OSError as exc:
                raise HTTPException(503, f"camera {camera_id}: {exc}") from None
            with self._detect_lock:
                detections = self.detector(frame.image, **settings)
            ok, jpeg = cv2.imencode(".jpg", frame.image, [cv2.IMWRITE_JPEG_QUALITY, 85])
            state.last = Snapshot(next(self._numbers), frame, detections, jpeg.tobytes())
            return state.last

    def _input_size(self, camera: Camera) -> int:
        """The detector input this camera's frames get (its own ``input_size`` in a dense view)."""
        return camera.detector.input_size if camera.detector and camera.detector.input_size else self.detector.size

    def last(self, camera_id: str) -> Snapshot:
        _, state = self.camera(camera_id)
        return state.last or self.snapshot(camera_id)

    def counts(self, camera_id: str, shapes: ShapesIn) -> dict:
        """Counts of the drawn zones on the last snapshot; shapes that are not areas are reported, not counted."""
        camera, _ = self.camera(camera_id)
        counted, _ = self._count(camera, self.last(camera_id), shapes)
        return counted

    def _count(self, camera: Camera, snap: Snapshot, shapes: ShapesIn) -> tuple[dict, list]:
        """The counts answer for ``shapes`` on ``snap``, and the calibration.checks findings behind its warnings."""
        problems = {s.id: p for s in shapes.zones + shapes.masks if (p := polygon_problem(s.polygon))}
        zones = [ZoneShape(z.id, z.polygon) for z in shapes.zones if z.id not in problems]
        masks = [m.polygon for m in shapes.masks if m.id not in problems]
        h, w = snap.frame.image.shape[:2]
        counts = ZoneCounter(zones, masks).count(snap.detections, w, h) if zones else {}
        findings = self._findings(camera, shapes, snap, problems)
        return ({"snapshot": snap.number, "counts": counts, "problems": problems,
                 "warnings": [str(f) for f in findings]}, findings)

    def _findings(self, camera: Camera, shapes: ShapesIn, snap: Snapshot, problems: dict) -> list:
        """calibration.checks warnings for the drafted zones (empty while a draft is not yet a valid zone)."""
        h, w = snap.frame.image.shape[:2]
        try:
            draft = Camera(id=camera.id, source=camera.source, zones=[
                {"id": z.id, "name": z.name or z.id, "type": z.type or "other", "grid_cell": z.grid_cell or "-",
                 "capacity": z.capacity or 0, "polygon": z.polygon} for z in shapes.zones if z.id not in problems])
        except ValueError:
            return []  # a bad id or coordinate: saving reports it with the field
        return check_camera(draft, CameraView(w, h, self._input_size(camera), snap.detections.xyxy))

    def save(self, camera_id: str, shapes: ShapesIn) -> dict:
        self.camera(camera_id)
        zones = [s.model_dump(exclude_none=True) for s in shapes.zones]
        masks = [{"id": s.id, "polygon": s.polygon} for s in shapes.masks]
        with site_lock(self.site_path):     # read, edit, write: a concurrent save never loses this one's edit
            try:
                text = edit_camera(self.site_path.read_text(encoding="utf-8"), camera_id, zones, masks)
                saved = save_site_text(self.site_path, text)
            except SiteError as exc:
                return {"ok": False, "problems": exc.problems}
            self.site = saved.site
        return {"ok": True, "path": str(self.site_path), "backup": str(saved.backup) if saved.backup else None}

    def proof(self, camera_id: str, body: ProofIn) -> dict:
        camera, state = self.camera(camera_id)
        snap = self.last(camera_id)
        if snap.number != body.snapshot:
            raise HTTPException(409, "the snapshot changed since you counted: stop live updates, then count again")
        counted, findings = self._count(camera, snap, body)  # on this snapshot, even if a newer one arrives
        rows = [ProofSample(z, counted["counts"].get(z, 0), n) for z, n in body.truth.items()
                if z in counted["counts"]]
        with state.lock:
            state.proofs += rows
            proofs = list(state.proofs)
        small = {f.zone for f in findings if f.kind == "small_people"}
        report = prove(proofs, small, self._input_size(camera))
        return {"snapshot": snap.number, "this": [r.__dict__ for r in rows], "zones": [r.to_dict() for r in report]}

    def site_json(self) -> dict:
        return {"site": self.site.id, "model": self.detector.name, "model_input": self.detector.size,
                "zone_types": [t.value for t in ZoneType],
                "cameras": [self.site.camera(cid).model_dump(mode="json", include={"id", "name", "zones", "masks",
                                                                                   "frame_size"})
                            for cid in self.cameras]}

    def close(self) -> None:
        for state in self.cameras.values():
            state.source.close()


def _authorised(request: Request, token: str) -> bool:
    given = request.cookies.get(COOKIE) or ""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        given = auth[7:].strip()
    return bool(given) and hmac.compare_digest(given.encode(), token.encode())


def create_app(editor: CalibrateApp) -> FastAPI:
    app = FastAPI(title="hallgrid calibrate", docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def authenticate(request: Request, call_next):
        query_token = request.query_params.get("token")
        if query_token is not None and request.method == "GET":
            if not hmac.compare_digest(query_token.encode(), editor.token.encode()):
                return JSONResponse({"detail": "wrong token"}, 401)
            response = RedirectResponse(request.url.path, 303)  # drop the token from the address bar
            response.set_cookie(COOKIE, editor.token, httponly=True, samesite="strict")
            return response
        if not _authorised(request, editor.token):
            return JSONResponse({"detail": "not authenticated: open the address `hallgrid calibrate` printed "
                                 "(it carries ?token=) or send Authorization: Bearer TOKEN"}, 401)
        response = await call_next(request)
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/")
    def index() -> HTMLResponse:
        return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"))

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        path = STATIC / name
        if "/" in name or not path.is_file():
            raise HTTPException(404)
        return Response(path.read_bytes(), media_type=CONTENT_TYPES.get(Path(name).suffix, "text/plain"))

    @app.get("/api/site")
    def site() -> dict:
        return editor.site_json()

    @app.post("/api/cameras/{camera_id}/snapshot")
    def snapshot(camera_id: str) -> dict:
        snap = editor.snapshot(camera_id)
        h, w = snap.frame.image.shape[:2]
        boxes = np.c_[snap.detections.xyxy, snap.detections.confidence].round(2).tolist()
        return {"snapshot": snap.number, "frame_index": snap.frame.index, "width": w, "height": h,
                "detections": boxes, "image": f"/api/cameras/{camera_id}/snapshot.jpg?n={snap.number}"}

    @app.get("/api/cameras/{camera_id}/snapshot.jpg")
    def snapshot_jpeg(camera_id: str) -> Response:
        return Response(editor.last(camera_id).jpeg, media_type="image/jpeg")

    @app.post("/api/cameras/{camera_id}/counts")
    def counts(camera_id: str, body: ShapesIn) -> dict:
        return editor.counts(camera_id, body)

    @app.post("/api/cameras/{camera_id}/save")
    def save(camera_id: str, body: ShapesIn) -> JSONResponse:
        result = editor.save(camera_id, body)
        return JSONResponse(result, 200 if result["ok"] else 422)

    @app.post("/api/cameras/{camera_id}/proof")
    def proof(camera_id: str, body: ProofIn) -> dict:
        return editor.proof(camera_id, body)

    app.add_middleware(BodyLimit, limits=[], default=MAX_BODY)   # outermost: before the token check
    app.state.editor = editor
    return app
