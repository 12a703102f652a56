// The mammo-monai page: upload one exam's files to /v1/predict, show breasts, views with overlays, refusals.
// The files go under neutral names (file-1, file-2, ...): the server never sees the local file names, which may
// identify the patient; its answer calls each file by its position, and the page puts the local name back.
"use strict";

const $ = (id) => document.getElementById(id);
const SIDE = { L: "Left breast", R: "Right breast" };

function headers() {
  const token = $("token").value.trim();
  return token ? { Authorization: "Bearer " + token } : {};
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function pct(p) { return p === null || p === undefined ? "–" : (100 * p).toFixed(1) + "%"; }

function status(text, isError = false, progress = null) {
  $("status-text").textContent = text;
  $("status-text").className = isError ? "error" : "";
  const bar = $("progress");
  bar.hidden = progress === null;
  if (progress === "busy") bar.removeAttribute("value"); else if (progress !== null) bar.value = progress;
}

function decisionTags(decisions) {
  return Object.entries(decisions).map(([name, d]) =>
    el("span", { class: "tag " + (d ? "recall" : "clear"), title: "decision at operating point " + name },
       (d ? "recall" : "no recall") + " @ " + name));
}

function score(item) {
  const calibrated = item.probability_calibrated;
  const shown = calibrated ?? item.probability;
  return el("div", { class: "score" }, pct(shown), " ",
            el("small", {}, calibrated !== null && calibrated !== undefined ? "calibrated P(malignant)" : "P(malignant)"));
}

function showBreasts(breasts) {
  const box = $("breasts");
  box.replaceChildren();
  for (const b of [...breasts].sort((a, c) => (a.laterality === "R" ? -1 : 1) - (c.laterality === "R" ? -1 : 1))) {
    box.append(el("article", { class: "breast", "data-laterality": b.laterality },
      el("h3", {}, SIDE[b.laterality] || b.laterality),
      score(b),
      el("div", {}, ...decisionTags(b.decisions)),
      el("div", { class: "muted" }, b.n_views + (b.n_views === 1 ? " view" : " views"))));
  }
}

async function overlayUrl(path) {
  const answer = await fetch(path, { headers: headers() });
  if (!answer.ok) throw new Error("overlay " + answer.status);
  return URL.createObjectURL(await answer.blob());
}

async function showViews(images, nameOf) {
  const box = $("views");
  box.replaceChildren();
  const order = (i) => (i.laterality === "R" ? 0 : 2) + (String(i.view).toUpperCase() === "MLO" ? 1 : 0);
  for (const img of [...images].sort((a, b) => order(a) - order(b))) {
    const title = `${img.laterality || "?"} ${img.view || ""}`.trim();
    const stack = el("div", { class: "stack" });
    const name = nameOf(img.file);
    const figure = el("figure", { class: "view", "data-file": img.file }, stack,
      el("figcaption", {}, el("strong", {}, title), el("span", {}, pct(img.probability_calibrated ?? img.probability))),
      el("div", { class: "muted name", title: name }, name));
    box.append(figure);
    if (!img.overlay) { stack.append(el("p", { class: "muted" }, "no heatmap (start serve with --patch-bundle)")); continue; }
    const base = el("img", { alt: title + " image", class: "base" });
    const heat = el("img", { alt: title + " heatmap of P(malignant)", class: "heat" });
    const id = "opacity-" + img.file;
    const slider = el("input", { type: "range", min: "0", max: "100", value: "60", id });
    slider.addEventListener("input", () => { heat.style.opacity = slider.value / 100; });
    heat.style.opacity = 0.6;
    stack.append(base, heat);
    figure.append(el("label", { for: id }, "heatmap opacity", slider));
    try {
      [base.src, heat.src] = await Promise.all([overlayUrl(img.overlay.image), overlayUrl(img.overlay.heatmap)]);
    } catch (err) {
      stack.append(el("p", { class: "error" }, "overlay not loaded: " + err.message));
    }
  }
}

function showRefused(refused, nameOf) {
  $("refused").hidden = refused.length === 0;
  $("refused-list").replaceChildren(...refused.map((r) => el("li", {}, el("strong", {}, nameOf(r.file)), ": " + r.reason)));
}

function decisionNote(decision) {
  if (decision.kind === "operating_points") {
    return "Decisions at the operating points chosen on validation data (" +
      decision.operating_points.map((p) => `${p.name}: threshold ${p.threshold.toFixed(3)}, sensitivity ` +
        `${p.sensitivity.toFixed(2)}, specificity ${p.specificity.toFixed(2)}`).join("; ") + ").";
  }
  if (decision.kind === "bundle") return `Decision at the bundle's threshold ${decision.threshold.toFixed(3)}.`;
  return "This bundle carries no calibration or operating point: raw probabilities only.";
}

async function show(body, nameOf) {
  $("results").hidden = false;
  showBreasts(body.breasts || []);
  showRefused(body.refused || [], nameOf);
  $("decision-note").textContent = body.decision ? decisionNote(body.decision) : "";
  const t = body.timings || {};
  $("timings").textContent = t.total_s !== undefined ? `${body.model.name} ${body.model.version}; ${t.total_s.toFixed(2)} s` : "";
  await showViews(body.images || [], nameOf);
}

function upload(files) {
  if (!files.length) return;
  const form = new FormData();
  files.forEach((f, i) => form.append("files", f, `file-${i + 1}`));  // neutral names: the local ones stay here
  const nameOf = (n) => (files[n - 1] ? files[n - 1].name : `file ${n}`);  // the answer's file n: the nth upload
  const xhr = new XMLHttpRequest();
  xhr.open("POST", "/v1/predict");
  for (const [k, v] of Object.entries(headers())) xhr.setRequestHeader(k, v);
  xhr.upload.onprogress = (e) => {
    if (e.lengthComputable) status(`uploading ${files.length} file(s)…`, false, (100 * e.loaded) / e.total);
  };
  xhr.upload.onload = () => status("scoring…", false, "busy");
  xhr.onerror = () => status("the service could not be reached", true);
  xhr.onload = async () => {
    let body = {};
    try { body = JSON.parse(xhr.responseText); } catch (e) { body = { detail: xhr.responseText }; }
    if (xhr.status === 200) {
      status("done");
      await show(body, nameOf);
      status(`done: ${body.images.length} view(s) scored` + (body.refused.length ? `, ${body.refused.length} refused` : ""));
    } else {
      $("results").hidden = !(body.refused && body.refused.length);
      showRefused(body.refused || [], nameOf);
      $("breasts").replaceChildren(); $("views").replaceChildren();
      const wait = xhr.getResponseHeader("Retry-After");
      status(`refused (${xhr.status}): ${body.detail || "error"}` + (wait ? ` (retry in ${wait} s)` : ""), true);
    }
  };
  status("uploading…", false, 0);
  xhr.send(form);
}

async function loadModel() {
  const answer = await fetch("/v1/model", { headers: headers() });
  if (answer.status === 401) { $("model").textContent = "enter the access token"; $("token-box").open = true; return; }
  const m = await answer.json();
  $("model").textContent = `${m.name} ${m.version}` + (m.heatmaps ? ` · heatmaps: ${m.heatmaps.name} ${m.heatmaps.version}` : "") +
    ` · up to ${m.limits.max_files} files, ${m.limits.max_upload_mb} MB`;
}

window.addEventListener("DOMContentLoaded", () => {
  const input = $("files");
  const drop = $("drop");
  input.addEventListener("change", () => { upload([...input.files]); input.value = ""; });
  for (const type of ["dragenter", "dragover"]) drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add("over"); });
  for (const type of ["dragleave", "drop"]) drop.addEventListener(type, () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); upload([...e.dataTransfer.files]); });
  $("token").addEventListener("change", loadModel);
  loadModel().catch(() => { $("model").textContent = "the service could not be reached"; });
});
