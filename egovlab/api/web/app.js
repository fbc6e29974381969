// egovlab's web view: the province drawn from /api/v1, live through server-sent events.
// The token comes from the form or the page's fragment (#token=...), kept for this tab only.
"use strict";

const API = "/api/v1";
const SVG = "http://www.w3.org/2000/svg";
const KIND_COLOURS = {national: "#6a4c93", core: "#123", "provincial-dc": "#1d6fb8", "backup-dc": "#4ea8de",
  department: "#e09f3e", district: "#2a9d8f", commune: "#8ab17d", internet: "#c44536"};
const $ = (id) => document.getElementById(id);
const state = {prefix: null, scenario: null, topo: null, matrixJob: null, stream: null};

function token() { return sessionStorage.getItem("egovlab-token") || ""; }

function say(text) { $("message").textContent = text || ""; }

async function api(method, path, body) {
  const res = await fetch(API + path, {
    method, headers: {"Authorization": "Bearer " + token(), ...(body ? {"Content-Type": "application/json"} : {})},
    body: body ? JSON.stringify(body) : undefined});
  const data = res.status === 204 ? null : await res.json().catch(() => null);
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${(data && data.detail) || res.statusText}`);
  return data;
}

function el(tag, attrs = {}, parent = null, ns = SVG) {
  const node = document.createElementNS(ns, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

// -- topology -------------------------------------------------------------------------------
function drawTopology(topo) {
  const svg = $("topology");
  svg.replaceChildren();
  const at = Object.fromEntries(topo.sites.map((s) => [s.name, s]));
  const links = el("g", {id: "links"}, svg);
  for (const l of topo.links) {
    const a = at[l.a], b = at[l.b];
    const line = el("line", {x1: a.x, y1: a.y, x2: b.x, y2: b.y, class: `link ${l.status} ${l.role}`,
      "data-link": l.name, "data-status": l.status}, links);
    el("title", {}, line).textContent = `${l.name} (${l.kind}, ${l.role}): ${l.status}`;
    line.addEventListener("click", () => toggleLink(l.name));
  }
  const sites = el("g", {id: "sites"}, svg);
  const many = topo.sites.length > 60;
  for (const s of topo.sites) {
    const big = !many || s.kind !== "commune";
    const c = el("circle", {cx: s.x, cy: s.y, r: big ? 0.022 : 0.012, fill: KIND_COLOURS[s.kind] || "#888",
      "data-site": s.name}, sites);
    el("title", {}, c).textContent = `${s.name} (${s.kind})${s.zones.length ? ": " + s.zones.join(", ") : ""}`;
    if (big) el("text", {x: s.x + 0.025, y: s.y + 0.01}, sites).textContent = s.name;
  }
  const dcs = $("dc-buttons");
  dcs.replaceChildren();
  for (const dc of topo.data_centres) {
    const b = document.createElement("button");
    b.textContent = `${dc}: down`;
    b.dataset.dc = dc;
    b.addEventListener("click", () => fault(b.dataset.state === "down" ? "dc-up" : "dc-down", dc));
    dcs.appendChild(b);
  }
}

function paintLinks(down) {
  for (const line of document.querySelectorAll("#topology .link")) {
    const status = !state.prefix ? "unknown" : (line.dataset.link in down ? "down" : "up");
    line.dataset.status = status;
    line.classList.remove("up", "down", "unknown");
    line.classList.add(status);
  }
}

async function toggleLink(name) {
  const line = document.querySelector(`#topology .link[data-link="${CSS.escape(name)}"]`);
  await fault(line.dataset.status === "down" ? "link-up" : "link-down", name);
}

async function fault(action, target) {
  if (!state.prefix) return say("no lab is up: bring one up with the API or `egovlab up`");
  try {
    await api("POST", `/labs/${state.prefix}/faults`, {action, target});
    say(`${action} ${target}`);
    const dc = document.querySelector(`#dc-buttons button[data-dc="${CSS.escape(target)}"]`);
    if (dc && action.startsWith("dc-")) {
      dc.dataset.state = action === "dc-down" ? "down" : "up";
      dc.textContent = `${target}: ${action === "dc-down" ? "up" : "down"}`;
    }
    await refreshLab();
    if ($("reprobe").checked) await probe();
  } catch (e) { say(e.message); }
}

async function probe() {
  if (!state.prefix) return;
  try { await api("POST", `/labs/${state.prefix}/probes/matrix`); say("probing the matrix…"); }
  catch (e) { say(e.message); }
}

// -- matrix heat map ------------------------------------------------------------------------
function drawMatrix(m) {
  const h = m.heatmap;
  const cells = Object.fromEntries(h.cells.map((c) => [c.source + "\u0000" + c.target, c]));
  const table = document.createElement("table");
  const head = table.createTHead().insertRow();
  head.appendChild(document.createElement("th"));
  for (const col of h.columns) head.appendChild(Object.assign(document.createElement("th"), {textContent: col}));
  const body = table.createTBody();
  for (const row of h.rows) {
    const tr = body.insertRow();
    tr.appendChild(Object.assign(document.createElement("th"), {textContent: row}));
    for (const col of h.columns) {
      const td = tr.insertCell();
      const c = cells[row + "\u0000" + col];
      if (!c) continue;
      const f = c.reached / c.probed;
      td.style.background = `hsl(${Math.round(120 * f)}, 65%, ${c.reached ? 45 : 88}%)`;
      td.dataset.reached = c.reached;
      td.dataset.probed = c.probed;
      if (c.differ) td.classList.add("differ");
      td.title = `${row} → ${col}: ${c.reached}/${c.probed} reached, ${c.intended} intended` +
        (c.differ ? `, ${c.differ} differ from intent` : "");
    }
  }
  $("matrix").replaceChildren(table);
  $("matrix").dataset.job = m.job;
  $("matrix-info").textContent = `${m.summary.probes} probes, ${m.summary.reachable} reachable, ` +
    `${m.summary.differ} differ from intent`;
}

async function refreshMatrix(jobId) {
  if (!state.prefix || !jobId || jobId === state.matrixJob) return;
  try { drawMatrix(await api("GET", `/labs/${state.prefix}/probes/matrix`)); state.matrixJob = jobId; }
  catch (e) { say(e.message); }
}

// -- charts ---------------------------------------------------------------------------------
function bars(svg, items, max, unit, mark) {
  svg.replaceChildren();
  const w = 400, left = 110, row = Math.min(22, (Number(svg.viewBox.baseVal.height) - 10) / Math.max(items.length, 1));
  items.forEach(([label, value, colour], i) => {
    const y = 5 + i * row, len = Math.max(1, (w - left - 50) * Math.min(value / max, 1));
    el("text", {x: 4, y: y + row * 0.65}, svg).textContent = label;
    el("rect", {x: left, y: y + 2, width: len, height: row - 5, fill: colour, "data-value": value}, svg);
    el("text", {x: left + len + 4, y: y + row * 0.65}, svg).textContent = `${+value.toFixed(3)}${unit}`;
  });
  if (mark) {
    const x = left + (w - left - 50) * Math.min(mark / max, 1);
    el("line", {x1: x, x2: x, y1: 0, y2: svg.viewBox.baseVal.height, stroke: "#d62828", "stroke-dasharray": "3 2"}, svg);
  }
}

async function refreshCharts() {
  try {
    const sims = (await api("GET", "/simulations")).filter((j) => j.state === "succeeded");
    if (sims.length) {
      const sim = await api("GET", `/simulations/${sims[0].id}`);
      const util = Object.entries(sim.result.peak.utilisation).map(([k, v]) => [k, 100 * v.mean,
        v.mean > 0.8 ? "#d62828" : "#1d6fb8"]);
      bars($("capacity"), util, 100, " %", 80);
      $("sim-info").textContent = `${sim.result.scenario}: utilisation at the peak (x${sim.result.peak.factor.toFixed(2)})`;
    }
    const drills = (await api("GET", "/drills")).filter((j) => j.state === "succeeded");
    if (drills.length) {
      const d = (await api("GET", `/drills/${drills[0].id}`)).result;
      const p = d.drill.prediction || {};
      const items = [["RTO measured", d.drill.rto_s ?? 0, "#1d6fb8"], ["RTO predicted", p.rto ? p.rto.mean : 0, "#8ab"],
        ["RPO measured", d.drill.rpo_s, "#2a9d8f"], ["RPO predicted", p.rpo ? p.rpo.mean : 0, "#8cb"]];
      bars($("drill"), items, Math.max(...items.map((i) => i[1]), d.targets.rto_target_seconds || 1), " s",
        d.targets.rto_target_seconds);
      $("drill-info").textContent = `${d.drill.failed_dc} dark, ${d.drill.replication}; red line: RTO target`;
    }
  } catch (e) { say(e.message); }
}

async function simulate() {
  if (!state.scenario) return;
  try {
    await api("POST", "/simulations", {scenario: state.scenario, replications: 2, horizon: "30d", peak_minutes: 10});
    say("simulation started");
  } catch (e) { say(e.message); }
}

// -- live state -----------------------------------------------------------------------------
function showJobs(jobs) {
  $("jobs").replaceChildren(...jobs.map((j) => Object.assign(document.createElement("li"),
    {className: j.state, textContent: `${j.kind}${j.prefix ? " " + j.prefix : ""}: ${j.state} (${j.id})`})));
}

async function onStatus(snap) {
  const select = $("lab");
  const labs = snap.labs.join(",");
  if (select.dataset.labs !== labs) {
    select.dataset.labs = labs;
    select.replaceChildren(...snap.labs.map((p) => new Option(p, p, false, p === state.prefix)));
  }
  if (snap.lab && snap.lab.scenario !== state.scenario) await loadTopology();
  if (!snap.lab && state.prefix && !snap.labs.includes(state.prefix)) { state.prefix = null; }
  if (!state.prefix && snap.labs.length) { state.prefix = snap.labs[0]; select.value = state.prefix; return connect(); }
  paintLinks(snap.lab ? snap.lab.links_down : {});
  showJobs(snap.jobs);
  await refreshMatrix(snap.matrix_job);
  const finished = snap.jobs.filter((j) => j.state === "succeeded" && (j.kind === "simulation" || j.kind === "drill"))
    .map((j) => j.id).join(",");
  if (finished !== state.finished) { state.finished = finished; await refreshCharts(); }
}

async function loadTopology() {
  try {
    if (state.prefix) {
      state.topo = await api("GET", `/labs/${state.prefix}/topology`);
    } else {
      const first = (await api("GET", "/scenarios"))[0];
      state.topo = await api("GET", `/scenarios/${first.name}/topology`);
    }
    state.scenario = state.prefix ? (await api("GET", `/labs/${state.prefix}`)).scenario : state.topo.scenario;
    $("scenario-name").textContent = state.topo.scenario;
    drawTopology(state.topo);
  } catch (e) { say(e.message); }
}

async function refreshLab() {
  if (!state.prefix) return;
  const lab = await api("GET", `/labs/${state.prefix}`);
  paintLinks(lab.links_down);
}

// Server-sent events over fetch, so that the token goes in the Authorization header.
async function connect() {
  if (state.stream) state.stream.abort();
  const ctrl = new AbortController();
  state.stream = ctrl;
  state.matrixJob = null;
  await loadTopology();
  const query = state.prefix ? `?prefix=${state.prefix}` : "";
  try {
    const res = await fetch(`${API}/events${query}`, {headers: {"Authorization": "Bearer " + token()}, signal: ctrl.signal});
    if (!res.ok) throw new Error(`events: ${res.status} ${(await res.json()).detail}`);
    $("conn").className = "conn on";
    const reader = res.body.getReader(), decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, {stream: true});
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const chunk = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const data = chunk.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
        if (data) await onStatus(JSON.parse(data));
      }
    }
  } catch (e) {
    if (e.name === "AbortError") return;
    say(e.message);
  }
  $("conn").className = "conn off";
  if (state.stream === ctrl) setTimeout(connect, 2000);
}

function start() {
  const m = location.hash.match(/token=([^&]+)/);
  if (m) { sessionStorage.setItem("egovlab-token", decodeURIComponent(m[1])); history.replaceState(null, "", "/"); }
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem("egovlab-token", $("token").value.trim());
    $("token").value = "";
    connect();
  });
  $("lab").addEventListener("change", () => { state.prefix = $("lab").value || null; connect(); });
  $("clear-faults").addEventListener("click", async () => {
    if (!state.prefix) return;
    try {
      await api("DELETE", `/labs/${state.prefix}/faults`);
      for (const b of document.querySelectorAll("#dc-buttons button")) { b.dataset.state = "up"; b.textContent = `${b.dataset.dc}: down`; }
      await refreshLab();
      if ($("reprobe").checked) await probe();
    } catch (e) { say(e.message); }
  });
  $("probe").addEventListener("click", probe);
  $("simulate").addEventListener("click", simulate);
  if (token()) connect(); else say("enter an API token (egovlab serve --new-tokens FILE makes them)");
}

start();
