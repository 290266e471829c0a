/* The live board: load the hall once over the API, then follow /api/stream (server-sent events).
   EventSource reconnects by itself after a hub restart; every (re)connect re-reads the whole state,
   so nothing missed while away stays stale. No polling: the only timer re-renders "3 min ago". */
"use strict";
(() => {
  const t = I18N.t;
  const $ = (id) => document.getElementById(id);
  const S = { site: null, sites: [], me: null, zones: new Map(), queues: [], alerts: new Map(), health: null,
              series: null, offset: 0 };

  function h(tag, attrs, ...children) {      // a tiny element builder: text is always escaped
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(el.dataset, v);
      else el.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : String(c));
    return el;
  }

  async function api(path, opts) {
    const r = await fetch(path, { credentials: "same-origin", ...opts });
    if (r.status === 401) { location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search); throw new Error("login required"); }
    if (!r.ok) throw new Error(`${r.status} ${await r.text()}`);
    return r.json();
  }

  const nowS = () => Date.now() / 1000 + S.offset;     // hub time, from the offset measured at load
  function minutes(s) {                  // a duration figure; the wait itself comes in words from the hub
    if (s === null || s === undefined) return "–";
    return s < 90 ? `${Math.round(s)} ${t("s")}` : `${Math.round(s / 60)} ${t("min")}`;
  }
  // a text the hub rendered from its message catalogue in every language: the board's language picks
  const said = (texts, fallback) => (texts && texts[I18N.lang]) || fallback;
  function age(iso) {
    const s = Math.max(0, nowS() - Date.parse(iso) / 1000);
    if (s < 30) return t("now");
    const m = Math.round(s / 60);
    return I18N.lang === "zh" ? (m < 1 ? "1 分钟前" : `${m} 分钟前`) : `${Math.max(1, m)} min ${t("ago")}`;
  }

  // --- loading ----------------------------------------------------------------------------------
  async function loadAll() {
    S.me = await api("/api/me");
    S.sites = await api("/api/sites");
    const params = new URLSearchParams(location.search), wanted = params.get("site");
    S.focus = params.get("alert");
    S.site = (S.sites.find((s) => s.id === wanted) || S.sites[0] || {}).id;
    if (!S.site) return;
    const [zones, queues, alerts, resolved, health, series] = await Promise.all([
      api(`/api/sites/${S.site}/zones`), api(`/api/sites/${S.site}/queues`),
      api(`/api/alerts?site=${S.site}`), api(`/api/alerts?site=${S.site}&state=resolved&limit=5`),
      api(`/api/sites/${S.site}/health`), api(`/api/sites/${S.site}/series?minutes=60&step_s=60`)]);
    S.offset = series.until - Date.now() / 1000;
    S.zones = new Map(zones.map((z) => [z.zone, z]));
    S.queues = queues; S.health = health; S.series = series;
    S.alerts = new Map([...resolved, ...alerts].map((a) => [a.id, a]));
    renderAll();
    const focus = S.focus && $(`alert-${S.focus}`);       // opened from a chat robot's "acknowledge" link
    if (focus) focus.scrollIntoView({ block: "center" });
  }
  let queueTimer = null;
  function reloadQueues() {            // after ticket events, at most twice a second
    if (queueTimer) return;
    queueTimer = setTimeout(async () => {
      queueTimer = null;
      [S.queues, S.health] = await Promise.all([api(`/api/sites/${S.site}/queues`), api(`/api/sites/${S.site}/health`)]);
      renderQueues(); renderHealth();
    }, 500);
  }

  // --- rendering --------------------------------------------------------------------------------
  function zoneState(z) {
    if (z.age_s === null || z.age_s === undefined) return "nodata";
    if (!z.capacity) return "ok";
    const r = z.count / z.capacity;
    return r > 1 ? "over" : r >= 0.75 ? "busy" : "ok";
  }
  function sparkline(zone) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 120 28"); svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("class", "spark");
    const data = (S.series && S.series.zones[zone.zone]) || [];
    const cap = zone.capacity || 0;
    const top = Math.max(1, cap, ...data.filter((v) => v !== null));
    const n = Math.max(data.length, 2), y = (v) => 26 - (v / top) * 24;
    if (cap) {
      const line = document.createElementNS(ns, "line");
      Object.entries({ x1: 0, x2: 120, y1: y(cap), y2: y(cap), class: "cap" }).forEach(([k, v]) => line.setAttribute(k, v));
      svg.append(line);
    }
    let d = "", pen = false;
    data.forEach((v, i) => {
      if (v === null) { pen = false; return; }
      d += `${pen ? "L" : "M"}${((i / (n - 1)) * 120).toFixed(1)},${y(v).toFixed(1)}`; pen = true;
    });
    const path = document.createElementNS(ns, "path");
    path.setAttribute("d", d || "M0,26"); svg.append(path);
    const lastI = data.map((v) => v !== null).lastIndexOf(true);
    if (lastI >= 0) {                    // the newest reading as a dot: visible even with one point
      const dot = document.createElementNS(ns, "circle");
      Object.entries({ cx: ((lastI / (n - 1)) * 120).toFixed(1), cy: y(data[lastI]).toFixed(1), r: 2 })
        .forEach(([k, v]) => dot.setAttribute(k, v));
      svg.append(dot);
    }
    svg.append(Object.assign(document.createElementNS(ns, "title"), { textContent: t("last_hour") }));
    return svg;
  }
  function zoneTile(z) {
    const st = zoneState(z);
    const alerting = [...S.alerts.values()].some((a) => a.state !== "resolved" && a.figures && a.figures.zone === z.zone);
    return h("div", { class: `zone ${st}${alerting ? " alerting" : ""}`, id: `zone-${z.zone}`, dataset: { zone: z.zone, state: st } },
      h("div", { class: "zone-name", title: z.name }, z.name), h("div", { class: "zone-type" }, t(z.type)),
      h("div", { class: "zone-figures" },
        h("span", { class: "zone-count" }, st === "nodata" ? "–" : z.count),
        h("span", { class: "zone-cap" }, `/ ${z.capacity}`)),
      sparkline(z));
  }
  function renderGrid() {
    const cells = new Map();
    for (const z of S.zones.values()) {
      if (!cells.has(z.grid_cell)) cells.set(z.grid_cell, []);
      cells.get(z.grid_cell).push(z);
    }
    const grid = $("grid");
    grid.replaceChildren(...[...cells.keys()].sort().map((cell) =>
      h("div", { class: "cell" }, h("div", { class: "cell-title" }, `${t("cell")} ${cell}`),
        h("div", { class: "cell-zones" }, cells.get(cell).map(zoneTile)))));
  }
  function renderQueues() {
    $("queues").replaceChildren(...S.queues.map((q) => {
      const wait = q.predicted_wait_s, reason = q.wait_reason;
      const cls = reason === "overloaded" || (reason === "no_counter" && q.waiting_tickets) ? "bad"
        : wait > 300 ? "bad" : wait > 180 ? "warn" : "";
      return h("tr", { dataset: { service: q.service, reason } },
        h("td", {}, q.name, q.vip ? h("span", { class: "tag" }, "VIP") : null),
        h("td", { class: "num" }, q.waiting_tickets), h("td", { class: "num" }, q.waiting_people),
        h("td", {}, q.open_counters.length ? q.open_counters.join(", ") : t("none")),
        h("td", { class: `wait ${cls}` }, said(q.wait_text, "–")));
    }));
  }
  function renderHealth() {
    const hl = S.health;
    if (!hl) return;
    const chip = (ok, label, title) => h("span", { class: `chip ${ok ? "ok" : "bad"}`, title }, label);
    $("health").replaceChildren(
      ...hl.cameras.map((c) => chip(c.ok, `${t("cameras")}: ${c.name}`, `${c.state}${c.age_s !== null ? `, ${c.age_s}s` : ""}`)),
      chip(hl.tickets.ok, t("ticket_feed"), hl.tickets.age_s === null ? t("no_data") : `${Math.round(hl.tickets.age_s)}s`));
  }
  async function act(alert, verb) {
    const updated = await api(`/api/alerts/${encodeURIComponent(alert.id)}/${verb}`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ who: S.me.name || "board" }) });
    S.alerts.set(updated.id, updated); renderAlerts();
  }
  function figLabel(k) {                 // a figure's name in the board's language (raw name if unknown)
    const x = t(`fig_${k}`);
    return x === `fig_${k}` ? k.replace(/_/g, " ") : x;
  }
  function alertCard(a) {
    // the wait figures are in the suggestion, in words with their range: not repeated as bare numbers
    const skip = new Set(["name", "service", "vip", "zone", "counter", "predicted_wait_s", "wait_low_s", "wait_high_s",
                          "wait_reason", "frees_every_s", "wait_source"]);
    const figs = Object.entries(a.figures || {}).filter(([k, v]) => v !== null && typeof v !== "object" && typeof v !== "boolean" && !skip.has(k))
      .slice(0, 6).map(([k, v]) => h("span", { class: "fig" }, h("b", {}, figLabel(k)), ` ${typeof v === "number" && k.endsWith("_s") ? minutes(v) : v}`));
    const canAct = S.me && S.me.can_act;
    const buttons = a.state === "resolved" || !canAct ? null : h("div", { class: "actions" },
      a.state === "open" ? h("button", { class: "ack", onclick: () => act(a, "acknowledge") }, t("acknowledge")) : null,
      h("button", { class: "resolve ghost", onclick: () => act(a, "resolve") }, t("resolve")));
    const who = a.state === "resolved" ? `${t("resolved_by")} ${a.resolved_by}` : a.acknowledged_by ? `${t("ack_by")} ${a.acknowledged_by}` : null;
    return h("article", { class: `alert ${a.level} ${a.state}${a.id === S.focus ? " focus" : ""}`, id: `alert-${a.id}`, dataset: { id: a.id, state: a.state, level: a.level } },
      h("div", { class: "alert-head" },
        h("span", { class: `level ${a.level}` }, t(a.level)), h("span", { class: "kind" }, t(a.kind)),
        h("span", { class: "state" }, t(a.state)), h("span", { class: "age", dataset: { raised: a.raised_at } }, age(a.raised_at))),
      h("p", { class: "suggestion" }, ((a.texts || {})[I18N.lang] || a).suggestion),
      h("div", { class: "figures" }, h("span", { class: "fig" }, h("b", {}, t("owner")), ` ${a.owner}`),
        a.escalations ? h("span", { class: "fig" }, h("b", {}, t("escalated")), ` ×${a.escalations}`) : null, figs),
      who ? h("div", { class: "who" }, who) : null, buttons);
  }
  function renderAlerts() {
    const rank = { open: 0, acknowledged: 1, resolved: 2 };
    const list = [...S.alerts.values()].filter((a) => a.site === S.site)
      .sort((x, y) => (rank[x.state] > 1) - (rank[y.state] > 1) || Date.parse(y.raised_at) - Date.parse(x.raised_at));
    const resolved = list.filter((a) => a.state === "resolved").slice(0, 5);
    const active = list.filter((a) => a.state !== "resolved");
    $("alert-count").textContent = active.length || "";
    $("alerts").replaceChildren(...(active.length ? [] : [h("p", { class: "empty" }, t("no_alerts"))]),
      ...active.map(alertCard), ...resolved.map(alertCard));
  }
  function renderHeader() {
    const site = S.sites.find((s) => s.id === S.site);
    $("site-name").textContent = site ? site.name : "";
    const pick = $("site-pick");
    pick.hidden = S.sites.length < 2;
    pick.replaceChildren(...S.sites.map((s) => h("option", { value: s.id, selected: s.id === S.site }, s.name)));
    $("me").textContent = S.me && S.me.auth ? `${S.me.name} · ${t(S.me.role)}` : "";
    $("logout-form").hidden = !(S.me && S.me.auth);
    $("lang").textContent = I18N.lang === "zh" ? "English" : "中文";
  }
  function renderAll() { I18N.apply(document); renderHeader(); renderGrid(); renderQueues(); renderAlerts(); renderHealth(); }

  // --- live updates -----------------------------------------------------------------------------
  function onZone(d) {
    if (d.site !== S.site || !S.zones.has(d.zone)) return;
    const z = S.zones.get(d.zone);
    Object.assign(z, { count: d.count, raw: d.raw, age_s: 0 });
    if (S.series) {                      // extend the sparkline's newest bucket
      const step = S.series.step_s, row = S.series.zones[d.zone] || (S.series.zones[d.zone] = new Array(60).fill(null));
      const shift = Math.floor((nowS() - S.series.until) / step);
      if (shift > 0) {
        for (const k of Object.keys(S.series.zones)) S.series.zones[k] = S.series.zones[k].slice(shift).concat(new Array(Math.min(shift, 60)).fill(null)).slice(-60);
        S.series.until += shift * step;
      }
      const r = S.series.zones[d.zone], last = r.length - 1;
      r[last] = r[last] === null ? d.count : Math.max(r[last], d.count);
    }
    const old = $(`zone-${d.zone}`);
    if (old) old.replaceWith(zoneTile(z));
  }
  function onAlert(a) {
    if (a.site !== S.site) return;
    S.alerts.set(a.id, a);
    renderAlerts(); renderGrid(); reloadQueues();
  }
  function connect() {
    const es = new EventSource("/api/stream");
    es.addEventListener("open", () => {
      $("conn").dataset.i18n = "live"; $("conn").textContent = t("live"); $("conn").className = "conn up";
      loadAll().catch((e) => console.error(e));       // a (re)connect: read everything again
    });
    es.addEventListener("error", () => {
      $("conn").dataset.i18n = "reconnecting"; $("conn").textContent = t("reconnecting"); $("conn").className = "conn down";
      api("/api/me").catch(() => {});                  // a session that expired goes back to the login form
    });
    es.addEventListener("zone", (e) => onZone(JSON.parse(e.data)));
    es.addEventListener("alert", (e) => onAlert(JSON.parse(e.data)));
    es.addEventListener("tickets", (e) => { if (JSON.parse(e.data).site === S.site) reloadQueues(); });
    es.addEventListener("camera", () => reloadQueues());
  }

  $("lang").addEventListener("click", () => { I18N.set(I18N.lang === "zh" ? "en" : "zh"); renderAll(); });
  $("site-pick").addEventListener("change", (e) => { location.search = `?site=${encodeURIComponent(e.target.value)}`; });
  setInterval(() => document.querySelectorAll(".age[data-raised]").forEach((el) => { el.textContent = age(el.dataset.raised); }), 15000);
  connect();
})();
