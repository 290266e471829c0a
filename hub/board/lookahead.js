/* The "next two hours" panel: forecast arrivals, counters needed and open per service, and per pool of
   services that share counters (counted once). Texts come from the server (message catalogue); the
   forecast changes every few minutes, so the panel re-reads it once a minute and when the site changes. */
"use strict";
(() => {
  const el = document.getElementById("lookahead");
  const pick = document.getElementById("site-pick");
  let data = null;
  const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));
  async function site() {
    if (pick && pick.value) return pick.value;
    const r = await fetch("/api/sites");
    const list = r.ok ? await r.json() : [];
    return list.length ? list[0].id : null;
  }
  function render() {
    if (!data || !data.ready) { el.hidden = true; return; }
    const lang = I18N.lang === "zh" ? "zh" : "en";
    const L = (k) => data.labels[k][lang];
    const head = data.slots.map((s) => `<th class="num">${esc(s.local)}</th>`).join("");
    const rows = [];
    for (const s of data.services) {
      rows.push(`<tr class="svc"><th>${esc(s.name)}</th><td>${esc(L("forecast"))}</td>` +
        s.forecast.map((f, i) => `<td class="num" title="${esc(L("band"))} ${s.low[i]}-${s.high[i]}">${f.toFixed(1)}</td>`).join("") + "</tr>");
      rows.push(`<tr><th></th><td>${esc(L("needed"))} / ${esc(L("open"))}</td>` +
        s.needed.map((n) => `<td class="num${n > s.open.length ? " short" : ""}">${n} / ${s.open.length}</td>`).join("") + "</tr>");
    }
    const names = Object.fromEntries(data.services.map((s) => [s.service, s.name]));
    for (const p of data.pools) {
      if (p.services.length < 2) continue;
      rows.push(`<tr class="pool"><th>${esc(p.services.map((s) => names[s] || s).join(", "))}</th><td>${esc(L("needed"))} / ${esc(L("open"))}</td>` +
        p.needed.map((n, i) => `<td class="num${n > Math.max(p.open.length, p.scheduled[i]) ? " short" : ""}">${n} / ${p.open.length}</td>`).join("") + "</tr>");
    }
    el.innerHTML = `<h2>${esc(L("panel_title"))}</h2><table class="lookahead-table"><thead><tr><th></th><th></th>${head}</tr></thead>` +
      `<tbody>${rows.join("")}</tbody></table>`;
    el.hidden = false;
  }
  async function load() {
    try {
      const id = await site();
      if (!id) return;
      const r = await fetch(`/api/sites/${encodeURIComponent(id)}/lookahead`);
      if (r.ok) { data = await r.json(); render(); }
    } catch (e) { /* offline: the next minute tries again */ }
  }
  document.getElementById("lang").addEventListener("click", () => setTimeout(render, 0));
  if (pick) pick.addEventListener("change", load);
  load();
  setInterval(load, 60000);
})();
