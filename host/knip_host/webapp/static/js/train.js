// Train: choose the trainer and a program, the pain check-ins, and the live
// view (trace, cue and countdown, level in % MVC, state, a card per rep).

import { get, post, on, watchLive } from "./api.js";
import { $, $$, el, clear, num, painScale, say } from "./ui.js";
import { LiveTrace, stats } from "./trace.js";

const CUE_WORDS = { squeeze: "Squeeze", hold: "Hold", relax: "Relax", rest: "Rest", done: "Done", pain: "Pain check-in" };
const STATE_WORDS = { rest: "at rest", squeeze: "squeezing", relax: "letting go", "bearing down": "bearing down" };
const BEEPS = { squeeze: [[880, 0.15]], hold: [[660, 0.08], [660, 0.08]], relax: [[440, 0.25]],
  rest: [[330, 0.2]], done: [[523, 0.12], [659, 0.12], [784, 0.2]], pain: [[587, 0.12], [440, 0.12]] };

let trace = null;
let audio = null;
let visible = false;
let cueEnd = null;           // performance.now() when the cue's time is up
let cueSpeed = 1;
let painBefore = null;
let painAfterGiven = false;
let checkinWhen = null;
let session = null;
let programInfo = {};
let reps = { ok: 0, all: 0 };
let lastLevel = 0;
let calibText = "";

export function init(state) {
  trace = new LiveTrace($("#trace"));
  const form = $("#trainer-form");
  form.addEventListener("change", showKind);
  form.addEventListener("submit", (ev) => { ev.preventDefault(); connect(); });
  $("#disconnect").addEventListener("click", () => post("/api/trainer/disconnect").catch((e) => say($("#trainer-status"), e.message, "error")));
  $("#ports-refresh").addEventListener("click", loadPorts);
  $("#ble-scan").addEventListener("click", scanBle);
  $("#pain-before-box").append(painScale("pain before the program", (s) => { painBefore = s; }, { skipText: "rather not say" }));
  $("#start").addEventListener("click", start);
  $("#stop").addEventListener("click", () => post("/api/live/stop").catch((e) => say($("#train-status"), e.message, "error")));
  $("#program-select").addEventListener("change", describeProgram);
  $("#sound").addEventListener("change", (ev) => {
    if (ev.target.checked && !audio) audio = new (window.AudioContext || window.webkitAudioContext)();
    if (audio && audio.state === "suspended") audio.resume();
  });
  $("#checkin-scale").append(painScale("pain now", answerCheckin, { skipText: "skip" }));
  showKind();
  loadPorts();
  get("/api/programs").then((doc) => {
    for (const p of doc.builtin.concat(doc.local)) programInfo[p.name] = p;
    describeProgram();
  }).catch(() => {});
  window.addEventListener("resize", () => trace.resize());

  on("live", (m) => { if (m.on) { trace.reset(m); cueSpeed = m.speed || 1; } });
  on("samples", samples);
  on("cue", cue);
  on("verdict", verdict);
  on("event", detectorEvent);
  on("session", sessionMsg);
  on("checkin", checkin);
  on("pain", (m) => {
    say($("#train-status"), `pain ${m.when}: ${m.score === null ? "skipped" : m.score}`, "ok");
    if ((m.when === "after") === (checkinWhen === 1)) hideCheckin();
  });
  on("calibrated", (m) => {
    calibText = m.ok
      ? `Calibrated: your MVC is ${num(m.mvc)} ${m.unit} above your resting level of ${num(m.rest)} ${m.unit}; targets are % of it now.`
      : `Calibration failed: ${m.text}`;
    say($("#train-status"), calibText, m.ok ? "ok" : "error");
  });
  on("notice", (m) => say($("#train-status"), `trainer: ${m.text}`));
  tickCountdown();
}

export function show() {
  visible = true;
  watchLive(true);
  trace.start();
}

export function hide() {
  visible = false;
  watchLive(false);
  trace.stop();
}

export function trainerChanged(msg) {
  const connected = msg.state === "connected";
  $("#trainer-label").textContent = connected ? msg.label : msg.state === "connecting" ? `connecting to ${msg.label}…` : "none connected";
  $("#connect").disabled = msg.state === "connecting";
  $("#disconnect").hidden = !connected;
  if (msg.error) say($("#trainer-status"), msg.error, "error");
  else say($("#trainer-status"), connected ? `connected: ${msg.label}, ${msg.info.device}, firmware ${msg.info.firmware}` : "", connected ? "ok" : "");
  if (connected && msg.choice) {
    const r = $(`#trainer-form input[name=kind][value=${msg.choice.kind}]`);
    if (r) r.checked = true;
    showKind();
    $("#trainer-box").open = false;
  }
  fillPrograms(connected ? msg.info : null);
  running(msg.session !== null && msg.session !== undefined && connected ? msg.session : null);
  $("#start").disabled = !connected;
}

// ---- the trainer --------------------------------------------------------------

function showKind() {
  const kind = $("#trainer-form input[name=kind]:checked").value;
  for (const d of $$("#trainer-form [data-for]")) d.hidden = d.dataset.for !== kind;
}

async function loadPorts() {
  try {
    const doc = await get("/api/ports");
    clear($("#serial-ports"), doc.ports.map((p) => el("option", { value: p.device,
      label: `${p.likely ? "ESP32? " : ""}${p.description}` })));
    const input = $("#serial-port");
    const likely = doc.ports.find((p) => p.likely) || doc.ports[0];
    if (!input.value && likely) input.value = likely.device;
    input.placeholder = doc.ports.length ? doc.ports[0].device : "no serial port found: type one";
  } catch (e) { /* the status line shows connection errors */ }
}

async function scanBle() {
  const out = $("#ble-found");
  clear(out, el("li", { text: "scanning for 4 s…" }));
  try {
    const doc = await post("/api/ble/scan");
    clear(out, doc.note ? [el("li", { text: doc.note })] : doc.found.length ? doc.found.map((t) =>
      el("li", {}, el("button", { type: "button", class: "linkish", text: `${t.name} (${t.address})`,
        onclick: () => { $("#ble-name").value = t.address; } }))) : [el("li", { text: "no trainer advertising" })]);
  } catch (e) { clear(out, el("li", { text: e.message })); }
}

async function connect() {
  const kind = $("#trainer-form input[name=kind]:checked").value;
  const body = { kind, port: $("#serial-port").value.trim(), ble: $("#ble-name").value.trim(), pair: $("#ble-pair").checked };
  say($("#trainer-status"), "connecting…", "busy");
  try {
    await post("/api/trainer/connect", body);
  } catch (e) {
    say($("#trainer-status"), e.message, "error");
  }
}

function fillPrograms(info) {
  const sel = $("#program-select");
  const keep = sel.value;
  const names = info ? Array.from(new Set((info.programs || []).concat(info.custom_programs || []))).sort() : [];
  clear(sel, names.map((n) => el("option", { value: n, text: n })));
  if (names.includes(keep)) sel.value = keep;
  else if (names.includes("calibrate") && !(info && info.mvc)) sel.value = "calibrate";
  else if (names.includes("daily")) sel.value = "daily";
  describeProgram();
}

function describeProgram() {
  const name = $("#program-select").value;
  const p = programInfo[name];
  $("#program-about").textContent = p ? `${p.title} · ${p.length} · ${p.describe}` : name ? "a program of your own" : "connect a trainer first";
}

// ---- a session ----------------------------------------------------------------------

async function start() {
  const program = $("#program-select").value;
  if (!program) { say($("#train-status"), "choose a program", "error"); return; }
  painAfterGiven = false;
  try {
    const doc = await post("/api/live/start", { program, pain_before: painBefore });
    say($("#train-status"), `session ${doc.session} started: ${program}`, "ok");
  } catch (e) {
    say($("#train-status"), e.message, "error");
  }
}

function running(sid) {
  session = sid;
  $("#start").hidden = sid !== null;
  $("#stop").hidden = sid === null;
  $("#program-select").disabled = sid !== null;
  $("#page-train").classList.toggle("running", sid !== null);
}

function sessionMsg(m) {
  if (m.state === "running") {
    running(m.id);
    reps = { ok: 0, all: 0 };
    calibText = "";
    clear($("#cards"));
    $("#session-end").hidden = true;
    return;
  }
  running(null);
  hideCheckin();
  const end = $("#session-end");
  clear(end, `Session ${m.id} ended (${m.reason}). ${reps.all ? `${reps.ok} of ${reps.all} reps fully right. ` : ""}`,
    calibText ? `${calibText} ` : "", el("a", { href: "#/sync", text: "Sync it to this computer" }), ".");
  calibText = "";
  end.hidden = false;
  $("#pain-before-box").querySelector(".pain-scale").reset();
  painBefore = null;
}

function checkin(m) {
  if (m.when === 0 && painBefore !== null) return;          // given before the start
  if (m.when === 1 && painAfterGiven) return;
  checkinWhen = m.when;
  $("#checkin-q").textContent = m.when === 0 ? "Before you start: pain right now, 0 (none) to 10 (worst)?"
    : "Done. Pain right now, 0 (none) to 10 (worst)?";
  $("#checkin-scale").querySelector(".pain-scale").reset();
  say($("#checkin-status"), "");
  $("#checkin").hidden = false;
  const first = $("#checkin-scale button");
  if (first && visible) first.focus({ preventScroll: true });
}

function hideCheckin() {
  $("#checkin").hidden = true;
  checkinWhen = null;
}

async function answerCheckin(score) {
  const when = checkinWhen;
  if (when === null) return;
  if (when === 1) painAfterGiven = true;
  hideCheckin();
  if (score === null) {            // skipped: the trainer records it so when its wait ends
    post("/api/live/pain", { when, score: null }).catch(() => 0);
    return;
  }
  try {
    await post("/api/live/pain", { when, score });
    say($("#train-status"), `pain ${when ? "after" : "before"}: ${score}, thank you`, "ok");
  } catch (e) {
    say($("#train-status"), e.message, "error");
  }
}

// ---- the live view --------------------------------------------------------------------

function samples(m) {
  trace.push(m);
  trace.setLevel(m.rest, m.ref);
  const now = performance.now();
  if (now - lastLevel < 80) return;                  // words need not change 100 times a second
  lastLevel = now;
  $("#level-pct").textContent = m.pct === null ? "–" : `${Math.round(m.pct)} % ${m.of_best ? "of best" : "MVC"}`;
  $("#level-abs").textContent = m.lvl === null ? "" : `${m.lvl >= 0 ? "+" : ""}${num(m.lvl)} ${trace.unit} above rest`
    + (m.pct === null ? " · no MVC yet: % shows after the first squeeze (or calibrate)" : "");
  $("#state").textContent = STATE_WORDS[m.state] || m.state;
}

function cue(m) {
  const box = $("#cue");
  box.textContent = CUE_WORDS[m.cue] || m.cue;
  box.className = `cue cue-${m.cue}`;
  box.dataset.cue = m.cue;
  cueEnd = m.cue === "done" || m.cue === "pain" ? null : performance.now() + m.wall_ms;
  const parts = [];
  if (m.reps > 1 || m.cue === "squeeze" || m.cue === "hold") parts.push(`rep ${m.rep} of ${m.reps}`);
  if (m.target && (m.cue === "squeeze" || m.cue === "hold")) parts.push(`target ${m.target} % MVC`);
  $("#cue-detail").textContent = parts.join(" · ");
  trace.setCue(m);
  beep(m.cue);
}

function tickCountdown() {
  const node = $("#countdown");
  let shown = "";
  const tick = () => {
    let text = "";
    if (cueEnd !== null) {
      const left = ((cueEnd - performance.now()) / 1000) * cueSpeed;
      text = left > 0 ? `${left.toFixed(1)} s` : "";
    }
    if (text !== shown) { node.textContent = text; shown = text; }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}

function beep(cueName) {
  if (!audio || !$("#sound").checked || !BEEPS[cueName]) return;
  let t = audio.currentTime + 0.01;
  for (const [freq, dur] of BEEPS[cueName]) {
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.0001, t);
    gain.gain.exponentialRampToValueAtTime(0.25, t + 0.01);
    gain.gain.exponentialRampToValueAtTime(0.0001, t + dur);
    osc.connect(gain).connect(audio.destination);
    osc.start(t);
    osc.stop(t + dur + 0.02);
    t += dur + 0.06;
  }
  stats.beeps += 1;
}

function verdict(m) {
  const d = m.d;
  const squeeze = ["fast", "hold", "mvc"].includes(d.phase_kind);
  if (squeeze) { reps.all += 1; if (d.ok) reps.ok += 1; }
  const marks = Object.entries(d.checks).filter(([, v]) => v !== null)
    .map(([k, v]) => el("span", { class: `check ${v ? "pass" : "fail"}`, text: `${v ? "✓" : "✗"} ${k.replace("_", " ")}` }));
  const card = el("article", { class: `vcard ${d.ok ? "ok" : "bad"}`, dataset: { kind: d.phase_kind } },
    el("header", {}, el("span", { class: "mark", text: d.ok ? "✓" : "✗" }),
      el("strong", { text: `${d.phase_kind} ${d.rep}/${d.reps}` }),
      d.peak_pct_mvc !== null ? el("span", { class: "muted", text: `${Math.round(d.peak_pct_mvc)} % ${d.provisional ? "of best" : "MVC"}` }) : null),
    el("div", { class: "checks" }, marks),
    d.ok ? el("p", { class: "small muted", text: d.explain.join(" · ") })     // right: the numbers, briefly
      : el("ul", {}, d.explain.map((t) => el("li", { text: t }))));             // not quite: what to do, line by line
  $("#cards").prepend(card);
  const all = $("#cards").children;
  while (all.length > 60) all[all.length - 1].remove();
}

function detectorEvent(m) {
  if (session !== null) return;                      // in a program the coach's verdicts speak
  const card = el("article", { class: `vcard ${m.relaxed === false ? "bad" : "ok"} small`, dataset: { kind: m.kind } },
    el("div", { text: m.text }));
  $("#cards").prepend(card);
  const all = $("#cards").children;
  while (all.length > 60) all[all.length - 1].remove();
}
