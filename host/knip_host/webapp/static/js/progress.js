// Progress: the weekly trends of knip_host.trends as charts (the panels of
// `knip progress`, each only when it has something to draw), her streak,
// the notes (pain first), and the week-by-week table.

import { get } from "./api.js";
import { $, el, clear, num, say } from "./ui.js";

const DAY = 86400;
const C = { a: "#7a2d8c", b: "#3d8f6b", c: "#c0612b" };
let charts = [];

const PANELS = {
  strength: (pts, unit) => ({ x: pts.map((p) => p.start_epoch), unit,
    series: [["MVC", pts.map((p) => p.mvc), C.a], ["strongest squeeze", pts.map((p) => p.power), C.b]] }),
  endurance: (pts) => ({ x: pts.map((p) => p.start_epoch), unit: "s",
    series: [["endurance", pts.map((p) => p.endurance_s), C.a]] }),
  fast: (pts) => ({ x: pts.map((p) => p.start_epoch), unit: "",
    series: [["fast contractions", pts.map((p) => p.fast), C.a]] }),
  relaxation: (pts) => ({ x: pts.map((p) => p.start_epoch), unit: "%",
    series: [["relaxed fully", pts.map((p) => p.relaxed_pct), C.b]] }),
  tone: (pts, unit) => ({ x: pts.map((p) => p.start_epoch), unit,
    series: [["resting tone", pts.map((p) => p.resting_tone), C.a]] }),
  pain: (pts) => ({ x: pts.map((p) => p.start_epoch), unit: "0-10",
    series: [["before", pts.map((p) => p.pain_before), C.b], ["after", pts.map((p) => p.pain_after), C.c]] }),
};

export function init() {
  window.addEventListener("resize", () => {
    for (const c of charts) c.setSize({ width: c.root.parentNode.clientWidth, height: 220 });
  });
}

export async function show() {
  const status = $("#progress-status");
  say(status, "loading…", "busy");
  let doc;
  try {
    doc = await get("/api/progress");
  } catch (e) {
    say(status, e.message, "error");
    return;
  }
  for (const c of charts) c.destroy();
  charts = [];
  const box = $("#progress-charts");
  clear(box);
  if (!doc.points.length) {
    $("#progress-streak").textContent = "";
    clear($("#progress-notes"));
    clear($("#progress-weeks thead"));
    clear($("#progress-weeks tbody"));
    say(status, "No sessions yet: train and sync, and your progress shows here.", "");
    return;
  }
  say(status, "");
  const st = doc.streak;
  $("#progress-streak").textContent = st && st.last_day
    ? `Streak: ${st.days} day${st.days === 1 ? "" : "s"} and ${st.weeks} week${st.weeks === 1 ? "" : "s"} in a row with a session `
      + `(longest ${st.longest_days} days, ${st.longest_weeks} weeks; last session ${st.last_day}).`
    : "No session has a date yet (the trainer's clock was not set).";
  clear($("#progress-notes"), doc.notes.map((n, i) => el("li", { class: i === 0 && doc.pain_rose.length ? "pain" : "", text: n })));
  const dated = doc.points.filter((p) => p.start_epoch !== null);
  const same = dated.filter((p) => p.unit === doc.unit);
  for (const panel of doc.panels) {
    const fig = el("figure", { class: "chart card", dataset: { panel: panel.name } },
      el("figcaption", {}, el("strong", { text: panel.title }), el("span", { class: "muted", text: ` ${panel.caption}` })));
    box.append(fig);
    const spec = panel.name === "weekly" ? weekly(doc.weeks)
      : PANELS[panel.name] ? PANELS[panel.name](["strength", "tone"].includes(panel.name) ? same : dated, doc.unit) : null;
    if (spec) charts.push(chart(fig, spec, panel.name === "weekly"));
  }
  weeksTable(doc);
}

function weekly(weeks) {
  return { x: weeks.map((w) => Date.parse(`${w.monday}T00:00:00`) / 1000), unit: "sessions",
    series: [["sessions", weeks.map((w) => w.sessions), C.a]] };
}

function chart(fig, spec, bars) {
  const series = [{}];
  const data = [spec.x];
  for (const [label, ys, color] of spec.series) {
    series.push({ label, stroke: color, width: bars ? 0 : 2, fill: bars ? `${color}99` : undefined, spanGaps: true,
      points: { show: !bars, size: 7, fill: color },
      paths: bars ? uPlot.paths.bars({ size: [0.6, 40] }) : undefined });
    data.push(ys);
  }
  const lo = Math.min(...spec.x), hi = Math.max(...spec.x);
  return new uPlot({
    width: Math.max(300, fig.clientWidth - 24), height: 220, series,
    scales: { x: { time: true, range: () => (hi > lo ? [lo - DAY, hi + DAY] : [lo - 3 * DAY, hi + 3 * DAY]) },
      y: { range: (u, a, b) => [Math.min(0, a ?? 0), (b ?? 1) > 0 ? b * 1.15 : 1] } },
    axes: [{}, { label: spec.unit, size: 50 }],
    legend: { live: false },
  }, data, fig);
}

function weeksTable(doc) {
  const head = ["Week", "From", "Sessions", `MVC ${doc.unit}`, "Strongest", "Endurance", "Fast", "Relaxed", "Rest tone", "Pain b/a"];
  clear($("#progress-weeks thead"), el("tr", {}, head.map((h) => el("th", { scope: "col", text: h }))));
  const pain = (w) => (w.pain_before_mean === null && w.pain_after_mean === null ? "–"
    : `${num(w.pain_before_mean)}/${num(w.pain_after_mean)}`);
  clear($("#progress-weeks tbody"), doc.weeks.slice().reverse().map((w) => el("tr", {},
    el("td", { text: w.week }), el("td", { text: w.monday }), el("td", { class: "num", text: String(w.sessions) }),
    el("td", { class: "num", text: num(w.mvc_best) }), el("td", { class: "num", text: num(w.power_best) }),
    el("td", { class: "num", text: num(w.endurance_best_s, 1, "s") }),
    el("td", { class: "num", text: w.fast_best === null ? "–" : String(w.fast_best) }),
    el("td", { class: "num", text: num(w.relaxed_pct, 0, "%") }), el("td", { class: "num", text: num(w.resting_tone_mean) }),
    el("td", { class: "num", text: pain(w) }))));
}
