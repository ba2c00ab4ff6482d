// The consultation page: a map of the jurisdiction's layers, drawing or uploading a footprint, the verdict,
// and the siting tab. Everything it shows comes from the service's own API (no outside requests).
"use strict";

const WORDS = {
  zh: {
    title: "三线一单 选址分析", tab_screen: "项目筛查", tab_siting: "选址分区", footprint: "项目范围",
    draw_polygon: "画面", draw_line: "画线", draw_point: "画点", finish: "完成", clear: "清除",
    hint_draw: "在地图上点击画出项目范围（双击完成），或把文件拖到地图上。", width: "线宽 (m)", radius: "半径 (m)",
    upload: "上传文件", project: "项目信息", name: "项目名称", industry: "行业 (GB/T 4754)", pm: "颗粒物",
    fuel: "燃料", water_source: "水源", water_m3: "用水量 (m³/a)", screen: "筛查", triggers: "触发的管控要求",
    clauses: "条款", dl_html: "HTML 报告", dl_geojson: "证据 GeoJSON", site: "生成分区",
    hint_siting: "各分区按结果着色；点击分区查看其规则。", pass: "通过", conditional: "有条件准入", reject: "不予准入",
    unknown: "未覆盖", none_triggered: "未触发任何管控要求", drawn: "已画出", uploaded: "已选文件", vertices: "个顶点",
    need_footprint: "请先画出项目范围或上传文件", need_industry: "请选择行业", working: "计算中…",
    priority: "优先保护单元", key: "重点管控单元", general: "一般管控单元", redline: "生态保护红线",
    quality: "环境质量底线分区", caps: "资源利用上线分区", boundary: "行政边界", overlap: "压占",
    rule: "规则", outcome: "结果", text: "内容", basis: "依据", area: "面积", units: "所在管控单元",
    unresolved: "待补充信息", warnings: "提示", requirements: "准入要求", token: "请输入服务令牌", zones: "分区",
  },
  en: {
    title: "Three lines, one list: site screening", tab_screen: "Screen a project", tab_siting: "Siting",
    footprint: "Footprint", draw_polygon: "Polygon", draw_line: "Line", draw_point: "Point", finish: "Finish",
    clear: "Clear", hint_draw: "Click on the map to draw the footprint (double-click to finish), or drop a file on the map.",
    width: "Line width (m)", radius: "Radius (m)", upload: "Upload a file", project: "Project", name: "Name",
    industry: "Industry (GB/T 4754)", pm: "PM", fuel: "Fuel", water_source: "Water source",
    water_m3: "Water use (m³/a)", screen: "Screen", triggers: "Triggered constraints", clauses: "Clauses",
    dl_html: "HTML report", dl_geojson: "Evidence GeoJSON", site: "Zone the jurisdiction",
    hint_siting: "Zones are coloured by outcome; click a zone to see its rules.", pass: "Pass",
    conditional: "Conditional", reject: "Reject", unknown: "Not covered", none_triggered: "No constraint triggered",
    drawn: "Drawn", uploaded: "File", vertices: "vertices", need_footprint: "Draw the footprint or upload a file first",
    need_industry: "Pick an industry", working: "Working…", priority: "Priority protection unit",
    key: "Key control unit", general: "General control unit", redline: "Ecological red line",
    quality: "Quality baseline zone", caps: "Resource cap zone", boundary: "Boundary", overlap: "Overlap",
    rule: "Rule", outcome: "Outcome", text: "Text", basis: "Basis", area: "Area", units: "Control units",
    unresolved: "Information needed", warnings: "Warnings", requirements: "Requirements",
    token: "Enter the service token", zones: "Zones",
  },
};
const OUTCOME_COLOURS = { pass: "#2e7d32", conditional: "#ef6c00", reject: "#c62828", unknown: "#9e9e9e" };
const UNIT_COLOURS = { priority: "#66bb6a", key: "#ffa726", general: "#90caf9" };
const ROLE_STYLES = {
  boundary: { color: "#37474f", weight: 2, fill: false },
  quality: { color: "#1565c0", weight: 1.5, dashArray: "6 4", fill: false },
  cap: { color: "#6a1b9a", weight: 1.5, dashArray: "2 4", fill: false },
  redline: { color: "#b71c1c", weight: 1, fillColor: "#e53935", fillOpacity: 0.55 },
};
const ATTRIBUTES = ["emit_so2", "emit_nox", "emit_vocs", "emit_pm", "emit_cod", "emit_nh3n", "water_m3"];

const state = { lang: localStorage.getItem("threelines-lang") || "zh", config: null, mode: null, vertices: [],
  footprint: null, file: null, result: null, gcj: false };
const $ = (id) => document.getElementById(id);
const w = (key) => WORDS[state.lang][key] || key;

// -- the API, with the bearer token when the service asks for one ------------------------------------
async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  const token = sessionStorage.getItem("threelines-token");
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (response.status === 401 && !options.retried) {
    const given = window.prompt(w("token"));
    if (given) {
      sessionStorage.setItem("threelines-token", given);
      return api(path, Object.assign({}, options, { retried: true }));
    }
  }
  return response;
}

async function problemText(response) {
  try {
    const body = await response.json();
    const lines = [body.detail || body.title || response.statusText];
    if (body.problems && body.problems.length > 1) lines.push(...body.problems.slice(1));
    return lines.join("\n");
  } catch (e) {
    return `${response.status} ${response.statusText}`;
  }
}

// -- GCJ-02: a base map in it gets the overlay shifted to match (the data are never changed) --------
function outOfChina(lon, lat) { return lon < 72.004 || lon > 137.8347 || lat < 0.8293 || lat > 55.8271; }
function gcjDelta(lon, lat) {
  const a = 6378245.0, ee = 0.00669342162296594323;
  const x = lon - 105.0, y = lat - 35.0;
  let dLat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
  dLat += (20.0 * Math.sin(6.0 * x * Math.PI) + 20.0 * Math.sin(2.0 * x * Math.PI)) * 2.0 / 3.0;
  dLat += (20.0 * Math.sin(y * Math.PI) + 40.0 * Math.sin(y / 3.0 * Math.PI)) * 2.0 / 3.0;
  dLat += (160.0 * Math.sin(y / 12.0 * Math.PI) + 320 * Math.sin(y * Math.PI / 30.0)) * 2.0 / 3.0;
  let dLon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
  dLon += (20.0 * Math.sin(6.0 * x * Math.PI) + 20.0 * Math.sin(2.0 * x * Math.PI)) * 2.0 / 3.0;
  dLon += (20.0 * Math.sin(x * Math.PI) + 40.0 * Math.sin(x / 3.0 * Math.PI)) * 2.0 / 3.0;
  dLon += (150.0 * Math.sin(x / 12.0 * Math.PI) + 300.0 * Math.sin(x / 30.0 * Math.PI)) * 2.0 / 3.0;
  const radLat = lat / 180.0 * Math.PI;
  let magic = Math.sin(radLat);
  magic = 1 - ee * magic * magic;
  const sqrtMagic = Math.sqrt(magic);
  dLat = (dLat * 180.0) / ((a * (1 - ee)) / (magic * sqrtMagic) * Math.PI);
  dLon = (dLon * 180.0) / (a / sqrtMagic * Math.cos(radLat) * Math.PI);
  return [dLon, dLat];
}
function toGcj(lon, lat) {
  if (outOfChina(lon, lat)) return [lon, lat];
  const [dLon, dLat] = gcjDelta(lon, lat);
  return [lon + dLon, lat + dLat];
}
function shifted(geojson) {  // a copy of a GeoJSON object with every position moved to GCJ-02
  if (!state.gcj) return geojson;
  const move = (c) => (typeof c[0] === "number" ? toGcj(c[0], c[1]) : c.map(move));
  const copy = JSON.parse(JSON.stringify(geojson));
  const each = (g) => { if (g && g.coordinates) g.coordinates = move(g.coordinates); if (g && g.geometries) g.geometries.forEach(each); };
  (copy.features || [copy]).forEach((f) => each(f.geometry || f));
  return copy;
}

// -- the map ---------------------------------------------------------------------------------------
const map = L.map("map", { zoomControl: true, preferCanvas: false, doubleClickZoom: true });
L.control.scale({ metric: true, imperial: false }).addTo(map);
const overlays = {};
const control = L.control.layers(null, {}, { collapsed: true }).addTo(map);
const drawing = L.layerGroup().addTo(map);
const evidence = L.layerGroup().addTo(map);
const zonesLayer = L.layerGroup().addTo(map);

function escapeHtml(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

function styleFor(layer) {
  if (layer.role === "unit") {
    return (feature) => ({ color: "#546e7a", weight: 0.8, fillColor: UNIT_COLOURS[feature.properties.class] || "#ccc", fillOpacity: 0.45 });
  }
  return () => ROLE_STYLES[layer.role] || { color: "#455a64", weight: 1, fillOpacity: 0.1 };
}

async function loadLayers() {
  const order = { unit: 0, quality: 1, cap: 2, redline: 3, boundary: 4 };
  const vector = state.config.layers.filter((l) => l.role !== "raster").sort((a, b) => order[a.role] - order[b.role]);
  // All asked for at once (the service answers them in parallel), then drawn in order: units at the bottom.
  const answers = vector.map((layer) => api(`/v1/layers/${encodeURIComponent(layer.name)}?zoom=12`)
    .then((response) => (response.ok ? response.json() : null)));
  for (const [k, layer] of vector.entries()) {
    const answer = await answers[k];
    if (!answer) continue;
    const data = shifted(answer);
    const shown = L.geoJSON(data, {
      style: styleFor(layer),
      interactive: layer.role === "unit" || layer.role === "redline",
      onEachFeature: (feature, item) => {
        const p = feature.properties;
        item.bindTooltip(`${escapeHtml(p.name || p.id)}${p.class ? " · " + escapeHtml(w(p.class)) : ""}`, { sticky: true });
      },
    });
    shown.addTo(map);
    overlays[layer.name] = shown;
    control.addOverlay(shown, `${layer.name} (${w(layer.role === "unit" ? "units" : layer.role === "cap" ? "caps" : layer.role)})`);
  }
  const [west, south, east, north] = state.config.extent;
  map.fitBounds(state.gcj ? [toGcj(west, south).reverse(), toGcj(east, north).reverse()] : [[south, west], [north, east]]);
}

const legend = L.control({ position: "bottomright" });
legend.onAdd = () => L.DomUtil.create("div", "legend");
legend.addTo(map);
function drawLegend() {
  const rows = [
    ...Object.entries(UNIT_COLOURS).map(([k, c]) => `<i style="background:${c}"></i>${w(k)}`),
    `<i style="background:#e53935"></i>${w("redline")}`,
    `<i style="border:2px dashed #1565c0;background:none"></i>${w("quality")}`,
    `<i style="border:2px dotted #6a1b9a;background:none"></i>${w("caps")}`,
    ...Object.entries(OUTCOME_COLOURS).map(([k, c]) => `<i style="background:${c};opacity:.7"></i>${w(k)}`),
  ];
  document.querySelector(".legend").innerHTML = rows.join("<br>");
}

// -- drawing ----------------------------------------------------------------------------------------
function setMode(mode) {
  state.mode = mode;
  state.vertices = [];
  for (const id of ["draw-polygon", "draw-line", "draw-point"]) $(id).classList.toggle("active", id === `draw-${mode}`);
  $("draw-finish").disabled = !(mode === "polygon" || mode === "line");
  map.getContainer().style.cursor = mode ? "crosshair" : "";
  if (mode) map.doubleClickZoom.disable(); else map.doubleClickZoom.enable();
}

function redraw() {
  drawing.clearLayers();
  const latlngs = state.vertices;
  if (!latlngs.length) return;
  if (state.mode === "polygon" || (state.footprint && state.footprint.type === "Polygon")) {
    L.polygon(latlngs, { color: "#0d47a1", weight: 2, fillOpacity: 0.2, interactive: false }).addTo(drawing);
  } else if (state.mode === "line" || (state.footprint && state.footprint.type === "LineString")) {
    L.polyline(latlngs, { color: "#0d47a1", weight: 3, interactive: false }).addTo(drawing);
  } else {
    L.circleMarker(latlngs[0], { radius: 6, color: "#0d47a1", interactive: false }).addTo(drawing);
  }
  latlngs.forEach((ll) => L.circleMarker(ll, { radius: 3, color: "#0d47a1", interactive: false }).addTo(drawing));
}

function finish() {
  const ring = state.vertices.map((ll) => [ll.lng, ll.lat]);
  if (state.mode === "polygon" && ring.length >= 3) {
    state.footprint = { type: "Polygon", coordinates: [[...ring, ring[0]]] };
  } else if (state.mode === "line" && ring.length >= 2) {
    state.footprint = { type: "LineString", coordinates: ring };
  } else if (state.mode === "point" && ring.length === 1) {
    state.footprint = { type: "Point", coordinates: ring[0] };
  } else {
    return;
  }
  state.file = null;
  const kept = state.vertices;
  setMode(null);
  state.vertices = kept;
  redraw();
  $("footprint-status").textContent = `${w("drawn")}: ${state.footprint.type}, ${ring.length} ${w("vertices")}`;
}

map.on("click", (event) => {
  if (!state.mode) return;
  state.vertices.push(event.latlng);
  if (state.mode === "point") { finish(); return; }
  redraw();
});
map.on("dblclick", (event) => {
  if (!state.mode) return;
  L.DomEvent.stop(event);
  // The double-click's two clicks each added the same vertex: keep one.
  const v = state.vertices;
  if (v.length >= 2 && v[v.length - 1].equals(v[v.length - 2])) v.pop();
  finish();
});

function clearFootprint() {
  setMode(null);
  state.footprint = null;
  state.file = null;
  drawing.clearLayers();
  evidence.clearLayers();
  $("file").value = "";
  $("footprint-status").textContent = "";
}

function takeFile(file) {
  if (!file) return;
  clearFootprint();
  state.file = file;
  $("footprint-status").textContent = `${w("uploaded")}: ${file.name}`;
}

// Files dropped on the map are the footprint.
const mapBox = map.getContainer();
mapBox.addEventListener("dragover", (e) => { e.preventDefault(); mapBox.classList.add("map-drop"); });
mapBox.addEventListener("dragleave", () => mapBox.classList.remove("map-drop"));
mapBox.addEventListener("drop", (e) => {
  e.preventDefault();
  mapBox.classList.remove("map-drop");
  if (e.dataTransfer.files.length) { takeFile(e.dataTransfer.files[0]); screen(); }
});

// -- the industry picker ------------------------------------------------------------------------------
let searchTimer = null;
function industryCode(text) {
  const match = /^\s*([A-T]?\d{2,4})\b/i.exec(text || "");
  return match ? match[1].toUpperCase() : null;
}
async function searchIndustries(text) {
  const response = await api(`/v1/industries?limit=30&q=${encodeURIComponent(text)}`);
  if (!response.ok) return;
  const hits = await response.json();
  // The English page shows the English name where the table has one (every section, division and group).
  const label = (h) => (state.lang === "en" && h.name_en ? h.name_en : h.name);
  $("industry-list").innerHTML = hits.map((h) => `<option value="${escapeHtml(h.code)} ${escapeHtml(label(h))}"></option>`).join("");
}
for (const id of ["industry", "siting-industry"]) {
  $(id).addEventListener("input", (e) => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => searchIndustries(e.target.value.trim()), 150);
  });
}

// -- screening ------------------------------------------------------------------------------------------
function attributes() {
  const out = {};
  const name = $("name").value.trim();
  if (name) out.name = name;
  const code = industryCode($("industry").value);
  if (code) out.industry = code;
  for (const key of ATTRIBUTES) if ($(key).value !== "") out[key] = Number($(key).value);
  for (const key of ["fuel", "water_source"]) if ($(key).value) out[key] = $(key).value;
  if (state.footprint && state.footprint.type === "LineString" && $("width").value) out.width = Number($("width").value);
  if (state.footprint && state.footprint.type === "Point" && Number($("radius").value) > 0) out.radius = Number($("radius").value);
  return out;
}

async function request(format) {
  const crs = state.gcj ? "&crs=gcj02" : "";
  const query = `/v1/screen?format=${format}&lang=${state.lang}`;
  if (state.file) {
    const form = new FormData();
    form.append("file", state.file);
    for (const [k, v] of Object.entries(attributes())) form.append(k, String(v));
    return api(query, { method: "POST", body: form });
  }
  const feature = { type: "Feature", properties: attributes(), geometry: state.footprint };
  return api(query + crs, { method: "POST", headers: { "Content-Type": "application/geo+json" }, body: JSON.stringify(feature) });
}

function showError(id, text) {
  $(id).textContent = text;
  $(id).hidden = !text;
}

async function screen() {
  showError("error", "");
  if (!state.footprint && !state.file) { showError("error", w("need_footprint")); return; }
  $("screen").disabled = true;
  $("screen").textContent = w("working");
  try {
    const response = await request("json");
    let records;
    if (response.ok) {
      records = await response.json();
    } else {
      const body = await response.clone().json().catch(() => ({}));
      showError("error", await problemText(response));
      if (!body.results) return;
      records = body.results;
    }
    state.result = Array.isArray(records) ? records : [records];
    showResult(state.result);
    await showEvidence();
    await prepareDownloads();
  } finally {
    $("screen").disabled = false;
    $("screen").textContent = w("screen");
  }
}

function worst(records) {
  const order = ["pass", "conditional", "reject"];
  return records.reduce((a, r) => (order.indexOf(r.verdict) > order.indexOf(a) ? r.verdict : a), "pass");
}

function showResult(records) {
  const verdict = worst(records);
  $("result").hidden = false;
  const badge = $("badge");
  badge.className = `badge ${verdict}`;
  badge.textContent = w(verdict);
  badge.dataset.verdict = verdict;
  const first = records[0];
  const p = first.project;
  $("summary").textContent = records.length > 1
    ? `${records.length} × ${records.map((r) => `${r.project.id}: ${w(r.verdict)}`).join(", ")}`
    : `${p.name || p.id} · ${p.industry || ""} ${p.industry_name || ""} · ${w("area")} ${Number(p.area_ha).toFixed(2)} ha`;
  const triggers = records.flatMap((r) => r.triggers);
  $("triggers").innerHTML = triggers.length
    ? triggers.map((t) => `<li class="${t.outcome}"><span class="outcome">${escapeHtml(w(t.outcome))}</span> · ${escapeHtml(t.title || t.rule)}<br>${escapeHtml(t.message)}${t.feature_name ? `<br><span class="muted">${escapeHtml(t.feature_name)} (${escapeHtml(t.feature_id)})</span>` : ""}${t.basis ? `<br><span class="muted">${escapeHtml(t.basis)}</span>` : ""}</li>`).join("")
    : `<li>${escapeHtml(w("none_triggered"))}</li>`;
  showClauses(records);
  const notes = [];
  const units = records.flatMap((r) => r.units);
  if (units.length) notes.push(`<h3>${w("units")}</h3><p>${units.map((u) => `${escapeHtml(u.name)} (${escapeHtml(u.code)}, ${escapeHtml(w(u.class))}, ${(u.share * 100).toFixed(1)}%)`).join("<br>")}</p>`);
  const unresolved = records.flatMap((r) => r.unresolved);
  if (unresolved.length) notes.push(`<h3>${w("unresolved")}</h3><p>${unresolved.map((u) => `${escapeHtml(u.rule)}: ${escapeHtml(u.reason)}`).join("<br>")}</p>`);
  const warnings = records.flatMap((r) => r.warnings);
  if (warnings.length) notes.push(`<h3>${w("warnings")}</h3><p>${warnings.map(escapeHtml).join("<br>")}</p>`);
  $("notes").innerHTML = notes.join("");
}

function showClauses(records) {
  // The clause table: the result's own `clauses` when it has them, else the triggers and requirements.
  const table = $("clauses");
  const clauses = records.flatMap((r) => r.clauses || []);
  let head, rows;
  if (clauses.length) {
    const keys = Object.keys(clauses[0]).filter((k) => typeof clauses[0][k] !== "object" || clauses[0][k] === null).slice(0, 6);
    head = keys;
    rows = clauses.map((c) => keys.map((k) => c[k]));
  } else {
    head = [w("rule"), w("outcome"), w("text"), w("basis")];
    rows = records.flatMap((r) => [
      ...r.triggers.map((t) => [t.rule, w(t.outcome), t.title || t.message, t.basis]),
      ...r.requirements.map((q) => [q.clause, w("requirements"), q.text, q.basis]),
    ]);
  }
  table.tHead.innerHTML = `<tr>${head.map((h) => `<th>${escapeHtml(h)}</th>`).join("")}</tr>`;
  table.tBodies[0].innerHTML = rows.map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(c ?? "")}</td>`).join("")}</tr>`).join("");
}

let evidenceText = null;
async function showEvidence() {
  evidence.clearLayers();
  evidenceText = null;
  const response = await request("geojson");
  if (!response.ok) return;
  evidenceText = await response.text();
  const data = shifted(JSON.parse(evidenceText));
  const shown = L.geoJSON(data, {
    style: (f) => f.properties.piece === "footprint"
      ? { color: "#0d47a1", weight: 2, fillOpacity: 0.1 }
      : { color: OUTCOME_COLOURS[f.properties.outcome] || "#000", weight: 2, fillColor: OUTCOME_COLOURS[f.properties.outcome], fillOpacity: 0.7 },
    onEachFeature: (f, item) => {
      if (f.properties.piece !== "footprint") item.bindPopup(`<b>${escapeHtml(w(f.properties.outcome))}</b> · ${escapeHtml(f.properties.rule)}<br>${escapeHtml(f.properties.message)}`);
    },
  });
  shown.addTo(evidence);
  if (state.file) map.fitBounds(shown.getBounds(), { maxZoom: 15 });
}

function link(id, text, type) {
  const anchor = $(id);
  if (anchor.href && anchor.href.startsWith("blob:")) URL.revokeObjectURL(anchor.href);
  anchor.href = URL.createObjectURL(new Blob([text], { type }));
}

async function prepareDownloads() {
  link("dl-json", JSON.stringify(state.result.length === 1 ? state.result[0] : state.result, null, 2), "application/json");
  if (evidenceText) link("dl-geojson", evidenceText, "application/geo+json");
  const html = await request("html");
  if (html.ok) link("dl-html", await html.text(), "text/html");
}

// -- siting ---------------------------------------------------------------------------------------------
async function site() {
  showError("siting-error", "");
  const code = industryCode($("siting-industry").value);
  if (!code) { showError("siting-error", w("need_industry")); return; }
  const profile = { industry: code };
  for (const key of ["emit_vocs", "emit_nox", "emit_so2", "emit_cod"]) {
    if ($(`siting-${key}`).value !== "") profile[key] = Number($(`siting-${key}`).value);
  }
  $("siting").disabled = true;
  $("siting").textContent = w("working");
  try {
    const response = await api("/v1/siting", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ profile }) });
    if (!response.ok) { showError("siting-error", await problemText(response)); return; }
    showZones(await response.json());
  } finally {
    $("siting").disabled = false;
    $("siting").textContent = w("site");
  }
}

function showZones(doc) {
  zonesLayer.clearLayers();
  const shown = L.geoJSON(shifted(doc), {
    style: (f) => ({ color: "#fff", weight: 0.5, fillColor: OUTCOME_COLOURS[f.properties.outcome], fillOpacity: 0.65 }),
    onEachFeature: (f, item) => {
      const rules = f.properties.rules.map((id) => {
        const rule = doc.rules[id] || {};
        const title = (rule.titles && rule.titles[state.lang]) || rule.title || "";
        return `<li><b>${escapeHtml(id)}</b> · ${escapeHtml(w(rule.outcome))} · ${escapeHtml(title)}</li>`;
      });
      item.bindPopup(`<b>${escapeHtml(w(f.properties.outcome))}</b> · ${f.properties.area_ha.toFixed(1)} ha` +
        (rules.length ? `<ul class="zone-rules">${rules.join("")}</ul>` : `<br>${escapeHtml(w("none_triggered"))}`));
    },
  });
  shown.addTo(zonesLayer);
  const rows = Object.entries(doc.summary_m2).map(([outcome, m2]) =>
    `<tr><td><i style="display:inline-block;width:12px;height:12px;background:${OUTCOME_COLOURS[outcome]}"></i> ${escapeHtml(w(outcome))}</td><td>${(m2 / 1e6).toFixed(2)} km²</td></tr>`);
  $("siting-summary").tBodies[0].innerHTML = rows.join("");
}

// -- tabs, language, start --------------------------------------------------------------------------------
function showTab(name) {
  document.querySelectorAll(".tab").forEach((b) => b.classList.toggle("active", b.dataset.tab === name));
  $("tab-screen").hidden = name !== "screen";
  $("tab-siting").hidden = name !== "siting";
  if (name === "screen") zonesLayer.clearLayers();
}

function applyLanguage() {
  document.documentElement.lang = state.lang;
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = w(el.dataset.i18n); });
  $("lang").textContent = state.lang === "zh" ? "EN" : "中文";
  drawLegend();
  if (state.result) showResult(state.result);
}

document.querySelectorAll(".tab").forEach((b) => b.addEventListener("click", () => showTab(b.dataset.tab)));
$("lang").addEventListener("click", () => {
  state.lang = state.lang === "zh" ? "en" : "zh";
  localStorage.setItem("threelines-lang", state.lang);
  applyLanguage();
});
$("draw-polygon").addEventListener("click", () => { clearFootprint(); setMode("polygon"); });
$("draw-line").addEventListener("click", () => { clearFootprint(); setMode("line"); });
$("draw-point").addEventListener("click", () => { clearFootprint(); setMode("point"); });
$("draw-finish").addEventListener("click", finish);
$("draw-clear").addEventListener("click", clearFootprint);
$("file").addEventListener("change", (e) => takeFile(e.target.files[0]));
$("screen").addEventListener("click", screen);
$("siting").addEventListener("click", site);

async function start() {
  applyLanguage();
  const response = await api("/v1/config");
  if (!response.ok) { showError("error", await problemText(response)); return; }
  state.config = await response.json();
  $("jurisdiction").textContent = state.config.jurisdiction;
  const tiles = state.config.tiles;
  if (tiles) {
    state.gcj = tiles.crs === "gcj02";
    L.tileLayer(tiles.url, { attribution: tiles.attribution || "", maxZoom: 18 }).addTo(map);
  }
  await loadLayers();
  document.body.dataset.readyMs = String(Math.round(performance.now()));
  document.body.dataset.ready = "true";
  loadCjkFont();
}

// The page's Chinese glyphs where the machine has no CJK font: the package's Noto Sans CJK SC, megabytes, so
// asked for only once the map is drawn (a machine that has one of the local fonts downloads nothing).
function loadCjkFont() {
  if (!window.FontFace) return;
  const range = "U+2E80-2FDF, U+3000-303F, U+3100-31BF, U+3400-4DBF, U+4E00-9FFF, U+F900-FAFF, U+FE30-FE4F, U+FF00-FFEF";
  const faces = {
    normal: 'local("Noto Sans CJK SC"), local("Microsoft YaHei"), local("PingFang SC")',
    bold: 'local("Noto Sans CJK SC Bold"), local("Microsoft YaHei Bold"), local("PingFang SC Semibold")',
  };
  for (const [weight, local] of Object.entries(faces)) {
    const face = new FontFace("threelines-cjk", `${local}, url("/fonts/cjk.otf") format("opentype")`,
      { weight, unicodeRange: range, display: "swap" });
    document.fonts.add(face);
    face.load().catch(() => {});  // no font: the browser's own fallback stays
  }
}
start();
