// hallgrid calibrate: draw zones and masks on a camera snapshot; counts come from the edge box.
"use strict";
const $ = (sel) => document.querySelector(sel);
const SVGNS = "http://www.w3.org/2000/svg";
const state = { site: null, cam: null, w: 768, h: 576, shapes: [], sel: -1, drawing: null, drag: null,
                snap: null, counts: {}, problems: {}, seq: 0, busy: false };

async function api(path, body) {
  const opts = body === undefined ? { method: "POST" } :
    { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const r = await fetch(path, opts);
  const data = await r.json().catch(() => ({}));
  if (!r.ok && r.status !== 422) throw new Error(data.detail || r.statusText);
  return { status: r.status, data };
}

function message(text, cls) { const m = $("#message"); m.textContent = text; m.className = cls || ""; }
const rel = (p) => [Math.round(p[0] / state.w * 1e4) / 1e4, Math.round(p[1] / state.h * 1e4) / 1e4];
const px = (p) => [p[0] * state.w, p[1] * state.h];

function payload() {
  const out = { zones: [], masks: [] };
  for (const s of state.shapes) {
    const poly = s.pts.map(rel);
    if (s.kind === "zone") out.zones.push({ id: s.id, name: s.name, type: s.type, grid_cell: s.grid_cell,
                                            capacity: Number(s.capacity), polygon: poly });
    else out.masks.push({ id: s.id, polygon: poly });
  }
  return out;
}

async function loadSite() {
  state.site = (await (await fetch("/api/site")).json());
  $("#site-name").textContent = state.site.site + " · model " + state.site.model;
  $("#camera").innerHTML = state.site.cameras.map((c) => `<option>${c.id}</option>`).join("");
  $("#f-type").innerHTML = state.site.zone_types.map((t) => `<option>${t}</option>`).join("");
  await selectCamera(state.site.cameras[0].id);
}

async function selectCamera(id) {
  const cam = state.site.cameras.find((c) => c.id === id);
  state.cam = id;
  await refreshSnapshot();
  state.shapes = cam.zones.map((z) => ({ kind: "zone", id: z.id, name: z.name, type: z.type, grid_cell: z.grid_cell,
                                         capacity: z.capacity, pts: z.polygon.map(px) }))
    .concat(cam.masks.map((m) => ({ kind: "mask", id: m.id, pts: m.polygon.map(px) })));
  state.sel = -1;
  render(); recount();
}

async function refreshSnapshot() {
  if (state.busy) return;
  state.busy = true;
  try {
    const { data } = await api(`/api/cameras/${state.cam}/snapshot`);
    state.snap = data; state.w = data.width; state.h = data.height;
    const svg = $("#canvas");
    svg.setAttribute("viewBox", `0 0 ${data.width} ${data.height}`);
    const img = $("#snapshot");
    img.setAttribute("width", data.width); img.setAttribute("height", data.height);
    img.setAttribute("href", data.image);
    svg.dataset.snapshot = data.snapshot;
    svg.dataset.frameIndex = data.frame_index === null ? "" : data.frame_index;
    $("#frame-info").textContent = `snapshot ${data.snapshot}` +
      (data.frame_index === null ? "" : `, frame ${data.frame_index}`) + `, ${data.detections.length} people`;
    renderPeople();
    await recount();
  } catch (e) { message(String(e.message || e), "error"); }
  finally { state.busy = false; }
}

let recountTimer = null;
function scheduleRecount() { clearTimeout(recountTimer); recountTimer = setTimeout(recount, 120); }
async function recount() {
  if (!state.snap) return;
  const seq = ++state.seq;
  const { data } = await api(`/api/cameras/${state.cam}/counts`, payload());
  if (seq !== state.seq) return; // a newer edit is on its way
  state.counts = data.counts; state.problems = data.problems;
  $("#canvas").dataset.countedSnapshot = data.snapshot;
  $("#warnings").innerHTML = data.warnings.map((w) => `<li>${escapeHtml(w)}</li>`).join("");
  const bad = Object.entries(data.problems);
  $("#problems").textContent = bad.map(([id, p]) => `${id}: ${p}`).join("\n");
  render();
}

function escapeHtml(s) { return String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c])); }

function el(name, attrs, parent) {
  const e = document.createElementNS(SVGNS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  parent.appendChild(e); return e;
}

function renderPeople() {
  const g = $("#people"); g.innerHTML = "";
  for (const [x1, y1, x2, y2] of state.snap.detections) {
    el("rect", { x: x1, y: y1, width: x2 - x1, height: y2 - y1, class: "box" }, g);
    el("circle", { cx: (x1 + x2) / 2, cy: y2, r: 5, class: "person" }, g);
  }
}

function render() {
  const g = $("#shapes"), hg = $("#handles"), dg = $("#draft");
  g.innerHTML = ""; hg.innerHTML = ""; dg.innerHTML = "";
  state.shapes.forEach((s, i) => {
    const cls = [s.kind, i === state.sel ? "selected" : "", state.problems[s.id] ? "invalid" : ""].join(" ");
    const poly = el("polygon", { points: s.pts.map((p) => p.join(",")).join(" "), class: cls, "data-id": s.id }, g);
    poly.addEventListener("pointerdown", (ev) => startMove(ev, i));
    poly.addEventListener("dblclick", (ev) => insertVertex(ev, i));
    const cx = s.pts.reduce((a, p) => a + p[0], 0) / s.pts.length, cy = s.pts.reduce((a, p) => a + p[1], 0) / s.pts.length;
    const label = s.kind === "zone" ? `${s.id}: ${state.counts[s.id] ?? "–"}` : `${s.id} (mask)`;
    el("text", { x: cx, y: cy, class: "label", "text-anchor": "middle" }, g).textContent = label;
  });
  const s = state.shapes[state.sel];
  if (s) s.pts.forEach((p, j) => {
    const h = el("circle", { cx: p[0], cy: p[1], r: 7, class: "handle" }, hg);
    h.addEventListener("pointerdown", (ev) => { ev.stopPropagation(); state.drag = { vertex: j }; });
    h.addEventListener("dblclick", (ev) => { ev.stopPropagation(); if (s.pts.length > 3) { s.pts.splice(j, 1); changed(); } });
  });
  if (state.drawing) {
    const pts = state.drawing.pts;
    if (pts.length) el("polyline", { points: pts.map((p) => p.join(",")).join(" "), class: "draft" }, dg);
    pts.forEach((p) => el("circle", { cx: p[0], cy: p[1], r: 5, class: "handle" }, dg));
  }
  renderList(); renderForm(); renderProofInputs();
  $("#finish").disabled = !(state.drawing && state.drawing.pts.length >= 3);
  $("#delete").disabled = state.sel < 0;
}

function renderList() {
  $("#shape-list").innerHTML = state.shapes.map((s, i) =>
    `<li data-index="${i}" class="${i === state.sel ? "sel" : ""}">` +
    (s.kind === "zone" ? `<span class="count" data-zone="${escapeHtml(s.id)}">${state.counts[s.id] ?? "–"}</span> ` : "<span class=count>mask</span> ") +
    `${escapeHtml(s.id)}${s.kind === "zone" ? ` · ${escapeHtml(s.type)} · cell ${escapeHtml(s.grid_cell)} · cap ${s.capacity}` : ""}` +
    (state.problems[s.id] ? ` <em class="problem">${escapeHtml(state.problems[s.id])}</em>` : "") + "</li>").join("");
  document.querySelectorAll("#shape-list li").forEach((li) =>
    li.addEventListener("click", () => { state.sel = Number(li.dataset.index); render(); }));
}

function renderForm() {
  const s = state.shapes[state.sel], form = $("#shape-form");
  form.hidden = !s;
  if (!s) return;
  form.querySelectorAll(".zone-only").forEach((e) => { e.hidden = s.kind !== "zone"; });
  const set = (id, v) => { const e = $(id); if (document.activeElement !== e) e.value = v ?? ""; };
  set("#f-id", s.id); set("#f-name", s.name); set("#f-type", s.type); set("#f-grid", s.grid_cell); set("#f-capacity", s.capacity);
}

function renderProofInputs() {
  const box = $("#proof-inputs"), zones = state.shapes.filter((s) => s.kind === "zone");
  const have = [...box.querySelectorAll("input")].map((i) => i.dataset.zone).join(",");
  if (have === zones.map((z) => z.id).join(",")) return;
  box.innerHTML = zones.map((z) => `<label>${escapeHtml(z.id)} <input type="number" min="0" data-zone="${escapeHtml(z.id)}"></label>`).join(" ");
}

function svgPoint(ev) {
  const svg = $("#canvas"), pt = svg.createSVGPoint();
  pt.x = ev.clientX; pt.y = ev.clientY;
  const p = pt.matrixTransform(svg.getScreenCTM().inverse());
  return [Math.min(Math.max(p.x, 0), state.w), Math.min(Math.max(p.y, 0), state.h)];
}

function changed() { render(); scheduleRecount(); }

function startMove(ev, i) {
  if (state.drawing) return;
  ev.stopPropagation();
  if (state.sel !== i) { state.sel = i; render(); return; }
  state.drag = { shape: i, last: svgPoint(ev) };
}

function insertVertex(ev, i) {
  const s = state.shapes[i], p = svgPoint(ev);
  let best = 0, bestD = Infinity;
  s.pts.forEach((a, j) => {
    const b = s.pts[(j + 1) % s.pts.length], dx = b[0] - a[0], dy = b[1] - a[1];
    const t = Math.max(0, Math.min(1, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / (dx * dx + dy * dy || 1)));
    const d = Math.hypot(a[0] + t * dx - p[0], a[1] + t * dy - p[1]);
    if (d < bestD) { bestD = d; best = j; }
  });
  s.pts.splice(best + 1, 0, p); changed();
}

function uniqueId(prefix) {
  for (let n = 1; ; n++) if (!state.shapes.some((s) => s.id === `${prefix}-${n}`)) return `${prefix}-${n}`;
}

function finishDrawing() {
  const d = state.drawing;
  if (!d || d.pts.length < 3) return;
  const id = uniqueId(d.kind);
  state.shapes.push(d.kind === "zone" ? { kind: "zone", id, name: id, type: "waiting", grid_cell: "A", capacity: 4, pts: d.pts }
                                      : { kind: "mask", id, pts: d.pts });
  state.drawing = null; state.sel = state.shapes.length - 1; changed();
}

function wire() {
  const svg = $("#canvas");
  svg.addEventListener("click", (ev) => {
    if (!state.drawing) { if (ev.target.id === "snapshot") { state.sel = -1; render(); } return; }
    const p = svgPoint(ev), pts = state.drawing.pts;
    if (pts.length >= 3 && Math.hypot(p[0] - pts[0][0], p[1] - pts[0][1]) < 12 * state.w / svg.clientWidth) return finishDrawing();
    pts.push(p); render();
  });
  svg.addEventListener("pointermove", (ev) => {
    const d = state.drag; if (!d) return;
    const p = svgPoint(ev), s = state.shapes[d.shape ?? state.sel];
    if (d.vertex !== undefined) s.pts[d.vertex] = p;
    else { const dx = p[0] - d.last[0], dy = p[1] - d.last[1]; s.pts = s.pts.map((q) => [q[0] + dx, q[1] + dy]); d.last = p; }
    render();
  });
  window.addEventListener("pointerup", () => { if (state.drag) { state.drag = null; scheduleRecount(); } });
  window.addEventListener("keydown", (ev) => { if (ev.key === "Escape") { state.drawing = null; render(); } });
  $("#new-zone").onclick = () => { state.drawing = { kind: "zone", pts: [] }; state.sel = -1; render(); };
  $("#new-mask").onclick = () => { state.drawing = { kind: "mask", pts: [] }; state.sel = -1; render(); };
  $("#finish").onclick = finishDrawing;
  $("#delete").onclick = () => { if (state.sel >= 0) { state.shapes.splice(state.sel, 1); state.sel = -1; changed(); } };
  $("#detect").onclick = refreshSnapshot;
  $("#camera").onchange = (ev) => selectCamera(ev.target.value);
  const bind = (id, key, num) => $(id).addEventListener("input", (ev) => {
    const s = state.shapes[state.sel]; if (!s) return;
    s[key] = num ? Number(ev.target.value) : ev.target.value; changed();
  });
  bind("#f-id", "id"); bind("#f-name", "name"); bind("#f-type", "type"); bind("#f-grid", "grid_cell"); bind("#f-capacity", "capacity", true);
  $("#save").onclick = save;
  $("#proof-record").onclick = recordProof;
  setInterval(() => { if ($("#live").checked && !state.drag && !state.drawing) refreshSnapshot(); }, 1000);
}

async function save() {
  const { status, data } = await api(`/api/cameras/${state.cam}/save`, payload());
  if (status === 200) {
    message(`Saved ${data.path}` + (data.backup ? ` (previous version kept as ${data.backup})` : ""), "ok");
    const cam = state.site.cameras.find((c) => c.id === state.cam), p = payload();
    cam.zones = p.zones; cam.masks = p.masks;
  } else {
    message("Not saved: the site file would be invalid:\n" + data.problems.join("\n"), "error");
  }
}

async function recordProof() {
  const truth = {};
  document.querySelectorAll("#proof-inputs input").forEach((i) => { if (i.value !== "") truth[i.dataset.zone] = Number(i.value); });
  try {
    const { data } = await api(`/api/cameras/${state.cam}/proof`, { ...payload(), snapshot: state.snap.snapshot, truth });
    $("#proof-out").innerHTML = "<tr><th>zone</th><th>snapshots</th><th>mean error</th><th>bias</th><th>suggestion</th></tr>" +
      data.zones.map((z) => `<tr data-zone="${escapeHtml(z.zone)}"><td>${escapeHtml(z.zone)}</td><td>${z.snapshots}</td><td>${z.mean_abs_error}</td>` +
        `<td>${z.bias}</td><td>${escapeHtml(z.suggestions.join(" ") || "ok")}</td></tr>`).join("");
  } catch (e) { message(String(e.message || e), "error"); }
}

wire();
loadSite().catch((e) => message(String(e.message || e), "error"));
