// banditrec dashboard: plain JavaScript and inline SVG, no dependencies, no build step.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const W = 800, H = 220, PAD = { l: 48, r: 48, t: 10, b: 24 };
const COLORS = { reward: "#3b6fd8", baseline: "#8a8f99", traffic: "#b9c7e8", explore: "#e08a00" };
const state = { reports: {}, selected: null };

function $(sel) { return document.querySelector(sel); }
function fmt(x, d = 3) { return x === null || x === undefined ? "–" : Number(x).toFixed(d); }
function interval(e) {
  if (!e || e.mean === null) return "–";
  return e.lower === null ? fmt(e.mean) : `${fmt(e.mean)} [${fmt(e.lower)}, ${fmt(e.upper)}]`;
}
function key() { return sessionStorage.getItem("banditrec-key") || ""; }

async function api(path, options = {}) {
  const headers = Object.assign({ "Authorization": `Bearer ${key()}` }, options.headers || {});
  const r = await fetch(path, Object.assign({}, options, { headers }));
  const body = await r.json().catch(() => ({}));
  if (!r.ok) {
    const detail = (body.detail || []).map(d => (d.msg || d)).join("; ");
    throw new Error(`${r.status} ${body.error || ""} ${detail}`.trim());
  }
  return body;
}

function el(tag, attrs = {}, parent = null, ns = null) {
  const node = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v; else node.setAttribute(k, v);
  }
  if (parent) parent.appendChild(node);
  return node;
}
function svgEl(tag, attrs, parent) { return el(tag, attrs, parent, SVG); }

function bucketWidth(report) { return report.resolution === "minute" ? 60 : 3600; }

function scales(report, lo, hi) {
  // x: the report's window, so a bucket's place and width read as time; cut to start a few
  // buckets before the first one with data, so a young app is not a sliver at the edge
  const starts = report.buckets.start, width = bucketWidth(report);
  const first = starts.length ? starts[0] : report.since;
  const last = starts.length ? starts[starts.length - 1] + width : report.until;
  const x0 = Math.max(report.since, first - 5 * width);
  const x1 = Math.max(report.until, last, x0 + 1);  // the current bucket ends after "until"
  if (hi - lo < 1e-9) { lo -= 0.5; hi += 0.5; }
  const sx = t => PAD.l + (t - x0) / (x1 - x0) * (W - PAD.l - PAD.r);
  const sy = v => H - PAD.b - (v - lo) / (hi - lo) * (H - PAD.t - PAD.b);
  return { sx, sy, lo, hi, x0, x1 };
}

function axes(svg, s, right = null) {
  svgEl("line", { x1: PAD.l, y1: H - PAD.b, x2: W - PAD.r, y2: H - PAD.b, stroke: "#999" }, svg);
  for (const v of [s.lo, (s.lo + s.hi) / 2, s.hi]) {
    svgEl("text", { x: PAD.l - 4, y: s.sy(v) + 4, "text-anchor": "end", "font-size": 11, fill: "#555" }, svg)
      .textContent = fmt(v, 2);
  }
  for (const t of [s.x0, s.x1]) {
    svgEl("text", { x: s.sx(t), y: H - 6, "text-anchor": t === s.x0 ? "start" : "end", "font-size": 11, fill: "#555" }, svg)
      .textContent = new Date(t * 1000).toISOString().slice(0, 16).replace("T", " ");
  }
  if (right) {
    svgEl("text", { x: W - PAD.r + 4, y: PAD.t + 10, "font-size": 11, fill: right.color }, svg).textContent = right.label;
  }
}

function series(svg, s, points, color, cls) {
  // points: [t, {mean, lower, upper}]; a band for the interval, a line for the mean
  const pts = points.filter(([, e]) => e && e.mean !== null);
  const banded = pts.filter(([, e]) => e.lower !== null);
  if (banded.length) {
    const top = banded.map(([t, e]) => `${s.sx(t)},${s.sy(e.upper)}`);
    const bottom = banded.slice().reverse().map(([t, e]) => `${s.sx(t)},${s.sy(e.lower)}`);
    svgEl("polygon", { points: top.concat(bottom).join(" "), fill: color, "fill-opacity": 0.18, class: `${cls}-band` }, svg);
    for (const [t, e] of banded)  // an error bar too: a band of one bucket has no width
      svgEl("line", { x1: s.sx(t), x2: s.sx(t), y1: s.sy(e.lower), y2: s.sy(e.upper), stroke: color, "stroke-opacity": 0.6 }, svg);
  }
  if (pts.length) {
    const d = pts.map(([t, e], i) => `${i ? "L" : "M"}${s.sx(t)},${s.sy(e.mean)}`).join(" ");
    svgEl("path", { d, fill: "none", stroke: color, "stroke-width": 2, class: `${cls}-line` }, svg);
    for (const [t, e] of pts) svgEl("circle", { cx: s.sx(t), cy: s.sy(e.mean), r: 2.5, fill: color, class: `${cls}-point` }, svg);
  }
}

function at(est, i) { return { mean: est.mean[i], lower: est.lower[i], upper: est.upper[i] }; }
function rows(report) {
  // the report's buckets come as columns; one object per bucket with decisions in it
  const b = report.buckets, all = b.all;
  return b.start.map((start, i) => ({
    start,
    all: {
      decisions: all.decisions[i], reward: at(all.reward, i),
      default_action_ips: at(all.default_action_ips, i), exploration_share: all.exploration_share[i],
    },
  })).filter(x => x.all.decisions > 0);
}

function rewardChart(report) {
  const box = $("#reward-chart"); box.textContent = "";
  const b = rows(report);
  if (!b.length) { el("p", { class: "empty", text: "No joined decisions in this window yet." }, box); return; }
  const reward = b.map(x => [x.start, x.all.reward]), base = b.map(x => [x.start, x.all.default_action_ips]);
  const vals = [];
  for (const [, e] of reward.concat(base)) if (e.mean !== null) vals.push(e.mean, e.lower ?? e.mean, e.upper ?? e.mean);
  const s = scales(report, Math.min(...vals), Math.max(...vals));
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "reward over time" }, box);
  axes(svg, s);
  series(svg, s, base, COLORS.baseline, "baseline");
  series(svg, s, reward, COLORS.reward, "reward");
  const legend = el("div", { class: "legend" }, box);
  for (const [name, c] of [["online reward (all arms)", COLORS.reward], ["default action (off-policy, same traffic)", COLORS.baseline]]) {
    const item = el("span", {}, legend); el("span", { class: "swatch", style: `background:${c}` }, item);
    item.appendChild(document.createTextNode(name));
  }
}

function trafficChart(report) {
  const box = $("#traffic-chart"); box.textContent = "";
  const b = rows(report);
  if (!b.length) return;
  const maxN = Math.max(...b.map(x => x.all.decisions), 1);
  const s = scales(report, 0, maxN);
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "traffic" }, box);
  axes(svg, s, { label: "explored share (0–1)", color: COLORS.explore });
  const width = bucketWidth(report);
  const bw = Math.max(1, s.sx(s.x0 + width) - s.sx(s.x0) - 1);
  for (const x of b) {
    const y = s.sy(x.all.decisions);
    svgEl("rect", { x: s.sx(x.start), y, width: bw, height: H - PAD.b - y, fill: COLORS.traffic, class: "traffic-bar" }, svg);
  }
  const sy = v => H - PAD.b - v * (H - PAD.t - PAD.b);
  const pts = b.filter(x => x.all.exploration_share !== null);
  if (pts.length) {
    const d = pts.map((x, i) => `${i ? "L" : "M"}${s.sx(x.start)},${sy(x.all.exploration_share)}`).join(" ");
    svgEl("path", { d, fill: "none", stroke: COLORS.explore, "stroke-width": 1.5, class: "explore-line" }, svg);
  }
}

function armsTable(report) {
  const body = $("#arms-table tbody"); body.textContent = "";
  for (const [arm, s] of Object.entries(report.window.arms)) {
    const tr = el("tr", { "data-arm": arm }, body);
    for (const v of [arm, s.decisions, interval(s.reward), interval(s.default_action_ips), fmt(s.exploration_share)])
      el("td", { text: String(v) }, tr);
  }
  const ex = $("#experiment"); ex.textContent = "";
  if (report.experiment) {
    const e = report.experiment;
    el("p", { text: `Experiment ${e.name}: SRM ${e.srm ? e.srm.state : "–"}` }, ex);
    const est = (e.estimates && e.estimates.arms) || {};
    const table = el("table", { id: "estimates-table" }, ex);
    const head = el("tr", {}, el("thead", {}, table));
    for (const h of ["arm", "kind", "weight", "online, own slice (95%)", "off-policy, all arms (95%)"]) el("th", { text: h }, head);
    const rowsBody = el("tbody", {}, table);
    for (const arm of e.arms) {
      const tr = el("tr", { "data-arm": arm.name }, rowsBody), x = est[arm.name] || {};
      for (const v of [arm.name, arm.kind, arm.weight, x.online ? interval(x.online) : "–", x.off_policy ? interval(x.off_policy) : "–"])
        el("td", { text: String(v) }, tr);
    }
    for (const ev of e.events || []) el("p", { class: "event", text: `${new Date(ev.at * 1000).toISOString()} ${ev.kind}: ${ev.message}` }, ex);
  } else {
    el("p", { class: "note", text: "No experiment configured for this app: the arms are the policy it served (learned) and the default action (apprentice, logging)." }, ex);
  }
}

function modelsTable(report) {
  const body = $("#models-table tbody"); body.textContent = "";
  for (const m of report.models.slice().reverse()) {
    const tr = el("tr", { "data-version": m.version }, body);
    el("td", { text: m.version === report.model_version ? `${m.version} (current)` : String(m.version) }, tr);
    el("td", { text: String(m.n_learned) }, tr);
    el("td", { text: new Date(m.created_at * 1000).toISOString().slice(0, 19).replace("T", " ") }, tr);
    const td = el("td", {}, tr);
    if (m.version !== report.model_version) {
      const btn = el("button", { class: "rollback", text: "roll back to this" }, td);
      btn.onclick = () => rollback(report.app, m.version);
    }
  }
}

async function rollback(app, version) {
  if (!confirm(`Serve model version ${version} of ${app}?`)) return;
  try {
    await api(`v1/apps/${encodeURIComponent(app)}`, {
      method: "PATCH", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ rollback_to: version }),
    });
    setStatus(`${app}: rolled back to version ${version}`);
    await load();
  } catch (err) { setStatus(`rollback failed: ${err.message}`); }
}

function show(app) {
  state.selected = app;
  const r = state.reports[app];
  for (const li of document.querySelectorAll("#apps li")) li.classList.toggle("selected", li.dataset.app === app);
  $("#detail").hidden = false;
  $("#app-title").textContent = app;
  const w = r.window.all;
  $("#app-summary").textContent =
    `mode ${r.mode} · model version ${r.model_version} · ${w.decisions} joined decisions · ` +
    `reward ${interval(w.reward)} vs default action ${interval(w.default_action_ips)}`;
  rewardChart(r); trafficChart(r); armsTable(r); modelsTable(r);
}

function appList() {
  const ul = $("#apps"); ul.textContent = "";
  for (const [app, r] of Object.entries(state.reports)) {
    const w = r.window.all;
    const li = el("li", { "data-app": app }, ul);
    el("strong", { text: app }, li);
    const better = w.reward.lower !== null && w.default_action_ips.upper !== null && w.reward.lower > w.default_action_ips.upper;
    const worse = w.reward.upper !== null && w.default_action_ips.lower !== null && w.reward.upper < w.default_action_ips.lower;
    el("small", { class: better ? "win" : worse ? "lose" : "", text: `${r.mode} · ${w.decisions} decisions · reward ${fmt(w.reward.mean)} vs ${fmt(w.default_action_ips.mean)}` }, li);
    li.onclick = () => show(app);
  }
}

function setStatus(text) { $("#status").textContent = text; }

async function load() {
  const [resolution, hours] = $("#window").value.split(":");
  setStatus("loading…");
  try {
    const data = await api(`v1/report?resolution=${resolution}&hours=${hours}`);
    state.reports = data.apps;
    appList();
    const apps = Object.keys(state.reports);
    if (!apps.length) { setStatus("no apps visible with this key"); return; }
    show(apps.includes(state.selected) ? state.selected : apps[0]);
    setStatus(`${apps.length} apps · ${new Date().toISOString().slice(11, 19)} UTC`);
  } catch (err) { setStatus(err.message); }
}

$("#key-form").addEventListener("submit", ev => {
  ev.preventDefault();
  const k = $("#key").value.trim();
  if (k) sessionStorage.setItem("banditrec-key", k);
  load();
});
$("#window").addEventListener("change", () => { if (key()) load(); });
if (key()) load(); else setStatus("enter an API key");
