// Programs: the built-in ones, hers (on the trainer and/or saved here), and
// an editor. Every change is checked by the firmware's own validator on
// the server (knip.programs.parse); its error is shown beside the field it
// names (e.g. phases[1].rest_s), and a valid program is pushed to the trainer.

import { get, post } from "./api.js";
import { $, $$, el, clear, say } from "./ui.js";

const KINDS = ["rest", "relax", "mvc", "fast", "hold"];
const RULES = ["equal", "relaxed", "fixed"];
const WINDOW = (kind) => kind === "rest" || kind === "relax";
let phases = [];
let timer = null;
let lastTrainer = null;
let valid = false;
let local = {};

export function init() {
  $("#program-new").addEventListener("click", () => load({ name: "", title: "", phases: [{ kind: "rest", seconds: 10 },
    { kind: "hold", reps: 5, squeeze_s: 5, rest_s: 8, target_pct: 40, rest_rule: "equal" }] }, "New program"));
  $("#ed-add-window").addEventListener("click", () => { phases.push({ kind: "rest", seconds: 10 }); renderPhases(); changed(); });
  $("#ed-add-squeeze").addEventListener("click", () => {
    phases.push({ kind: "fast", reps: 10, squeeze_s: 1, rest_s: 3, target_pct: 70, rest_rule: "relaxed" });
    renderPhases();
    changed();
  });
  const form = $("#editor");
  form.addEventListener("input", (ev) => { readField(ev.target); changed(); });
  form.addEventListener("change", (ev) => { if (ev.target.dataset.key === "kind") { readField(ev.target); renderPhases(); changed(); } });
  form.addEventListener("submit", (ev) => { ev.preventDefault(); push(); });
  load({ name: "", title: "", phases: [{ kind: "rest", seconds: 10 },
    { kind: "hold", reps: 5, squeeze_s: 5, rest_s: 8, target_pct: 40, rest_rule: "equal" }] }, "New program", true);
}

export function show(_arg, state) {
  lastTrainer = state.trainer;
  refresh();
}

export function trainerChanged(msg) {
  lastTrainer = msg;
  if (!$("#page-programs").hidden) refresh();
  $("#ed-push").disabled = msg.state !== "connected";
}

async function refresh() {
  let doc;
  try { doc = await get("/api/programs"); } catch (e) { say($("#ed-status"), e.message, "error"); return; }
  clear($("#programs-builtin"), doc.builtin.map((p) => item(p, [
    el("button", { type: "button", class: "secondary", text: "Make my own from it",
      onclick: () => load({ ...p.doc, name: "", title: `${p.doc.title} (mine)`.slice(0, 80) }, `New, from ${p.name}`) })])));
  local = {};
  for (const p of doc.local) local[p.name] = p;
  const info = lastTrainer && lastTrainer.state === "connected" ? lastTrainer.info : null;
  const onTrainer = new Set(info ? info.custom_programs || [] : []);
  const names = Array.from(new Set([...Object.keys(local), ...onTrainer])).sort();
  clear($("#programs-custom"), names.length ? names.map((n) => {
    const p = local[n] || { name: n, title: "made elsewhere: only its name is known here", length: "", describe: "" };
    const where = [onTrainer.has(n) ? "on the trainer" : info ? "not on this trainer" : null, local[n] ? "saved here" : null]
      .filter(Boolean).join(", ");
    return item(p, [
      local[n] ? el("button", { type: "button", class: "secondary", text: "Edit", onclick: () => load(local[n].doc, `Edit ${n}`) }) : null,
      onTrainer.has(n) || local[n] ? el("button", { type: "button", class: "secondary danger", text: onTrainer.has(n) ? "Remove from trainer" : "Forget",
        onclick: () => remove(n) }) : null], where);
  }) : [el("li", { class: "muted", text: "none yet: make one with “New program” or from a built-in one" })]);
  if (info && info.program_errors && info.program_errors.length) {
    $("#programs-custom").append(el("li", { class: "status error", text: `unreadable on the trainer: ${info.program_errors.join("; ")}` }));
  }
}

function item(p, buttons, where) {
  return el("li", { dataset: { program: p.name } },
    el("div", {}, el("strong", { text: p.name }), " ", el("span", { text: p.title }), p.length ? el("span", { class: "muted", text: ` · ${p.length}` }) : null,
      where ? el("span", { class: "tag", text: where }) : null),
    p.describe ? el("div", { class: "muted small", text: p.describe }) : null,
    el("div", { class: "row" }, buttons));
}

// ---- the editor -------------------------------------------------------------------

function load(doc, heading, quiet) {
  $("#editor-title").textContent = heading;
  $("#ed-name").value = doc.name || "";
  $("#ed-title").value = doc.title || "";
  phases = (doc.phases || []).map((p) => ({ ...p }));
  renderPhases();
  say($("#ed-status"), "");
  if (!quiet) { changed(); $("#ed-name").focus(); }
}

function input(i, key, value, attrs) {
  const field = `phases[${i}].${key}`;
  const id = `ed-${i}-${key}`;
  return el("div", { class: "field small" },
    el("label", { for: id, text: attrs.label }),
    attrs.options ? el("select", { id, "data-field": field, "data-key": key, "data-index": String(i), "aria-describedby": `err-${id}` },
      attrs.options.map((o) => el("option", { value: o, text: o, selected: o === value })))
      : el("input", { id, type: "number", step: "any", inputmode: "decimal", value: value ?? "", "data-field": field,
        "data-key": key, "data-index": String(i), "aria-describedby": `err-${id}` }),
    el("span", { class: "field-error", id: `err-${id}`, "data-error-for": field }));
}

function renderPhases() {
  const box = $("#ed-phases");
  clear(box, phases.map((p, i) => {
    const row = el("fieldset", { class: "phase", dataset: { index: String(i) } },
      el("legend", { text: `Phase ${i + 1}` }),
      input(i, "kind", p.kind, { label: "what", options: KINDS }),
      input(i, "reps", p.reps ?? 1, { label: "times" }));
    if (WINDOW(p.kind)) {
      row.append(input(i, "seconds", p.seconds, { label: "seconds" }));
    } else {
      row.append(input(i, "squeeze_s", p.squeeze_s, { label: "squeeze s" }), input(i, "rest_s", p.rest_s, { label: "rest s" }));
      if (p.kind !== "mvc") row.append(input(i, "target_pct", p.target_pct, { label: "target % MVC" }));
      row.append(input(i, "rest_rule", p.rest_rule || "equal", { label: "rest rule", options: RULES }));
    }
    row.append(el("span", { class: "field-error", "data-error-for": `phases[${i}]` }),
      el("div", { class: "row phase-tools" },
        el("button", { type: "button", class: "secondary", "aria-label": `move phase ${i + 1} up`, text: "↑", disabled: i === 0,
          onclick: () => { [phases[i - 1], phases[i]] = [phases[i], phases[i - 1]]; renderPhases(); changed(); } }),
        el("button", { type: "button", class: "secondary", "aria-label": `move phase ${i + 1} down`, text: "↓", disabled: i === phases.length - 1,
          onclick: () => { [phases[i + 1], phases[i]] = [phases[i], phases[i + 1]]; renderPhases(); changed(); } }),
        el("button", { type: "button", class: "secondary danger", "aria-label": `remove phase ${i + 1}`, text: "✕",
          onclick: () => { phases.splice(i, 1); renderPhases(); changed(); } })));
    return row;
  }));
}

function readField(node) {
  if (node.dataset.index === undefined) return;
  const p = phases[Number(node.dataset.index)];
  const key = node.dataset.key;
  if (node.tagName === "SELECT") {
    p[key] = node.value;
    if (key === "kind") reshape(p);
    return;
  }
  if (node.value === "") delete p[key];
  else p[key] = Number(node.value);
}

function reshape(p) {           // the fields of the new kind, keeping what still fits
  const keep = WINDOW(p.kind) ? ["kind", "reps", "seconds"] : ["kind", "reps", "squeeze_s", "rest_s", "target_pct", "rest_rule"];
  for (const k of Object.keys(p)) if (!keep.includes(k)) delete p[k];
  if (WINDOW(p.kind)) p.seconds = p.seconds ?? 10;
  else {
    p.squeeze_s = p.squeeze_s ?? 3;
    p.rest_s = p.rest_s ?? 6;
    p.rest_rule = p.rest_rule ?? "equal";
    if (p.kind === "mvc") delete p.target_pct; else p.target_pct = p.target_pct ?? 50;
  }
}

function current() {
  const doc = { name: $("#ed-name").value.trim(), phases: phases.map((p) => ({ ...p })) };
  const title = $("#ed-title").value.trim();
  if (title) doc.title = title;
  return doc;
}

function changed() {
  clearTimeout(timer);
  timer = setTimeout(check, 200);
}

function showError(field, text) {
  for (const n of $$("#editor [data-error-for]")) n.textContent = "";
  for (const n of $$("#editor [aria-invalid]")) n.removeAttribute("aria-invalid");
  if (!text) return;
  let spot = null;
  let f = field;
  while (f && !spot) {                  // phases[1].rest_s, else phases[1], else phases
    spot = $(`#editor [data-error-for="${f}"]`);
    f = f.includes(".") ? f.slice(0, f.lastIndexOf(".")) : f.includes("[") ? f.slice(0, f.indexOf("[")) : null;
  }
  (spot || $("#editor [data-error-for=phases]")).textContent = text;
  const input = field ? $(`#editor [data-field="${field}"]`) : null;
  if (input) input.setAttribute("aria-invalid", "true");
}

async function check() {
  let res;
  try { res = await post("/api/programs/check", { doc: current() }); } catch (e) { say($("#ed-status"), e.message, "error"); return; }
  valid = res.ok;
  showError(res.ok ? null : res.field, res.ok ? null : res.error);
  $("#ed-summary").textContent = res.ok ? `Valid: ${res.length}, ${res.squeezes} squeezes; ${res.describe}` : "";
  return res;
}

async function push() {
  const res = await check();
  if (!res || !res.ok) { say($("#ed-status"), "fix the field marked in red first", "error"); return; }
  say($("#ed-status"), "putting it on the trainer…", "busy");
  try {
    const doc = await post("/api/programs/push", { doc: current() });
    say($("#ed-status"), `Stored '${doc.name}' on the trainer: choose it on the Train page.`, "ok");
    refresh();
  } catch (e) {
    showError(e.field, e.message);
    say($("#ed-status"), e.message, "error");
  }
}

async function remove(name) {
  try {
    await post("/api/programs/remove", { name });
    say($("#ed-status"), `removed '${name}'`, "ok");
  } catch (e) {
    say($("#ed-status"), e.message, "error");
  }
  refresh();
}
