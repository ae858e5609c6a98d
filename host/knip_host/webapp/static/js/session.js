// One stored session: the signal with every squeeze and cue marked (zoom
// by dragging, the wheel or the buttons; pan with the buttons or the arrow
// keys), the scores, her pain, every rep's verdict, and the exports.

import { get, link } from "./api.js";
import { $, $$, el, clear, say, localDate } from "./ui.js";

const KIND_FILL = { squeeze: "rgba(122,45,140,0.13)", bearing_down: "rgba(214,120,30,0.18)",
  cough: "rgba(90,90,90,0.14)", artefact: "rgba(200,40,40,0.12)" };
let plot = null;
let doc = null;
let full = [0, 1];

export function init() {
  for (const b of $$("#page-session [data-zoom]")) b.addEventListener("click", () => zoom(b.dataset.zoom));
  for (const b of $$("#page-session [data-pan]")) b.addEventListener("click", () => pan(Number(b.dataset.pan)));
  const node = $("#session-plot");
  node.addEventListener("keydown", (ev) => {
    const act = { ArrowLeft: () => pan(-1), ArrowRight: () => pan(1), "+": () => zoom("in"), "=": () => zoom("in"),
      "-": () => zoom("out"), Home: () => zoom("all") }[ev.key];
    if (act) { ev.preventDefault(); act(); }
  });
  node.addEventListener("wheel", (ev) => {
    if (!plot) return;
    ev.preventDefault();
    const x = plot.posToVal(ev.clientX - plot.over.getBoundingClientRect().left, "x");
    zoom(ev.deltaY < 0 ? "in" : "out", Number.isFinite(x) ? x : undefined);
  }, { passive: false });
  window.addEventListener("resize", () => { if (plot) plot.setSize({ width: node.clientWidth, height: 320 }); });
}

export async function show(ref) {
  const status = $("#session-status");
  say(status, "loading…", "busy");
  try {
    doc = await get(`/api/session?ref=${encodeURIComponent(ref)}`);
  } catch (e) {
    say(status, e.message, "error");
    return;
  }
  say(status, "");
  const s = doc.session;
  $("#h-session").textContent = `${s.program || "free training"}, ${s.start_epoch === null ? "clock not set" : localDate(s.start_epoch)}`;
  $("#session-facts").textContent = `${s.key} · ${Math.round(s.duration_s)} s · ${s.signal} in ${s.unit}, ${s.rate_hz} Hz, `
    + `${s.channels === 2 ? "two channels (pelvic floor and abdominal)" : "one channel"} · ${s.complete ? "complete" : "recovered after a power cut"}`;
  exports(s);
  scores();
  verdicts();
  draw();
}

function exports(s) {
  const q = { ref: s.key };
  const a = (fmt, text, title) => el("a", { class: "button secondary", href: link("/api/export", { ...q, format: fmt }),
    download: "", title, text });
  clear($("#session-exports"), a("csv", "CSV", "the samples, one row each"), a("events", "Events CSV", "every squeeze with its figures"),
    doc.cues.length ? a("cues", "Cues CSV", "every cue of the program") : null, a("edf", "EDF+", "for biosignal viewers"));
}

function scores() {
  const rows = doc.score_lines.length ? doc.score_lines : [["squeezes", String(doc.summary.squeezes)]];
  clear($("#session-scores tbody"), rows.map(([k, v]) => el("tr", {}, el("th", { scope: "row", text: k }), el("td", { text: v }))));
  const p = doc.pain || {};
  const painNode = $("#session-pain");
  clear(painNode, (p.before !== null && p.before !== undefined) || (p.after !== null && p.after !== undefined)
    ? `Pain (0-10): before ${p.before ?? "–"}, after ${p.after ?? "–"}.` : "No pain logged.");
  if (doc.pain_note) painNode.append(el("p", { class: "note", text: doc.pain_note }));
}

function verdicts() {
  const body = $("#session-verdicts tbody");
  clear(body, doc.verdicts.map((d) => {
    const tr = el("tr", { class: d.ok ? "ok" : "bad", tabindex: "0", title: "show this rep on the plot" },
      el("td", { text: `${d.phase_kind} ${d.rep}/${d.reps}` }),
      el("td", { class: "mark", text: d.ok ? "✓" : "✗", "aria-label": d.ok ? "right" : "not quite" }),
      el("td", { text: d.explain.join("; ") }));
    const go = () => {
      if (!plot || d.cue_s === null) return;
      const end = d.cue_s + (d.squeeze_cue_s || 0) + (d.rest_cue_s || 5);
      plot.setScale("x", { min: Math.max(full[0], d.cue_s - 2), max: Math.min(full[1], end + 1) });
      $("#session-plot").scrollIntoView({ block: "center" });
    };
    tr.addEventListener("click", go);
    tr.addEventListener("keydown", (ev) => { if (ev.key === "Enter") go(); });
    return tr;
  }));
  if (!doc.verdicts.length) body.append(el("tr", {}, el("td", { colspan: "3", text: "free training: no cued reps" })));
}

function draw() {
  const node = $("#session-plot");
  if (plot) { plot.destroy(); plot = null; }
  const t = doc.trace;
  const unit = doc.session.unit;
  const series = [{}, { label: "pelvic floor", stroke: "#7a2d8c", width: 1.5, points: { show: false } }];
  const data = [t.t, t.v];
  if (t.abd) { series.push({ label: "abdominal", stroke: "#3d8f6b", width: 1, points: { show: false } }); data.push(t.abd); }
  full = [t.t.length ? t.t[0] : 0, t.t.length ? t.t[t.t.length - 1] : 1];
  plot = new uPlot({
    width: node.clientWidth || 900, height: 320, series,
    scales: { x: { time: false } },
    axes: [{ label: "seconds", size: 36 }, { label: unit, size: 52 }],
    cursor: { drag: { x: true, y: false, setScale: true } },
    legend: { live: true },
    hooks: { drawClear: [shadeEvents], draw: [markCues] },
  }, data, node);
  node.dataset.ready = "1";
}

function shadeEvents(u) {
  const ctx = u.ctx;
  const { left, top, width, height } = u.bbox;
  ctx.save();
  ctx.beginPath();
  ctx.rect(left, top, width, height);
  ctx.clip();                                   // a zoomed-in plot: nothing over the axes
  for (const e of doc.events) {
    if (e.onset_s === null || e.offset_s === null) continue;
    const x0 = u.valToPos(e.onset_s, "x", true), x1 = u.valToPos(e.offset_s, "x", true);
    ctx.fillStyle = KIND_FILL[e.kind] || KIND_FILL.cough;
    ctx.fillRect(x0, top, Math.max(1, x1 - x0), height);
  }
  ctx.restore();
}

function markCues(u) {
  const ctx = u.ctx;
  const { left, top, width, height } = u.bbox;
  const min = u.scales.x.min, max = u.scales.x.max;
  const dense = doc.cues.filter((c) => c.t_ms / 1000 >= min && c.t_ms / 1000 <= max).length > 40;
  ctx.save();
  ctx.font = `${Math.round(10 * devicePixelRatio)}px sans-serif`;
  for (const c of doc.cues) {
    const x = c.t_ms / 1000;
    if (x < min || x > max || (c.cue !== "squeeze" && c.cue !== "relax" && c.cue !== "rest" && c.cue !== "done")) continue;
    const px = u.valToPos(x, "x", true);
    ctx.strokeStyle = c.cue === "squeeze" ? "rgba(122,45,140,0.7)" : "rgba(60,60,60,0.35)";
    ctx.setLineDash(c.cue === "squeeze" ? [] : [3, 3]);
    ctx.beginPath();
    ctx.moveTo(px, top);
    ctx.lineTo(px, top + height);
    ctx.stroke();
    if (!dense && c.cue === "squeeze") {
      ctx.fillStyle = "rgba(60,30,70,0.9)";
      ctx.fillText(`${c.rep}/${c.reps}`, px + 2, top + 11 * devicePixelRatio);
    }
  }
  for (const e of doc.events) {                // the squeeze numbers, as in knip show
    if (dense || e.kind !== "squeeze" || e.peak_s === null || e.peak_s < min || e.peak_s > max) continue;
    const px = u.valToPos(e.peak_s, "x", true);
    if (px < left || px > left + width) continue;
    ctx.fillStyle = "rgba(122,45,140,0.9)";
    ctx.fillText(`#${e.seq}`, px - 6, top + height - 4);
  }
  ctx.restore();
}

function zoom(how, at) {
  if (!plot) return;
  const min = plot.scales.x.min, max = plot.scales.x.max;
  if (how === "all") { plot.setScale("x", { min: full[0], max: full[1] }); return; }
  const span = max - min;
  const c = at === undefined ? (min + max) / 2 : at;
  const k = how === "in" ? 0.5 : 2;
  let a = c - (c - min) * k, b = c + (max - c) * k;
  if (b - a > full[1] - full[0]) { a = full[0]; b = full[1]; }
  if (b - a < 1) return;
  plot.setScale("x", { min: Math.max(full[0], a), max: Math.min(full[1], Math.max(b, a + Math.min(span, 1))) });
}

function pan(dir) {
  if (!plot) return;
  const min = plot.scales.x.min, max = plot.scales.x.max;
  const step = (max - min) * 0.25 * dir;
  let a = min + step, b = max + step;
  if (a < full[0]) { b += full[0] - a; a = full[0]; }
  if (b > full[1]) { a -= b - full[1]; b = full[1]; }
  plot.setScale("x", { min: a, max: b });
}
