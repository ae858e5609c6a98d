// Sync (with its progress bar) and History (her sessions, newest first).

import { get, post, on } from "./api.js";
import { $, el, clear, num, kib, say, localDate } from "./ui.js";

let syncing = false;

export function init() {
  $("#sync-now").addEventListener("click", sync);
  on("sync", progress);
}

// ---- sync --------------------------------------------------------------------

export const syncPage = {
  show(_arg, state) {
    const connected = state.trainer.state === "connected";
    $("#sync-now").disabled = syncing || !connected;
    if (!connected && !syncing) say($("#sync-status"), "Connect a trainer on the Train page first.", "");
  },
};

async function sync() {
  syncing = true;
  $("#sync-now").disabled = true;
  say($("#sync-status"), "asking the trainer what it holds…", "busy");
  try {
    await post("/api/sync");
  } catch (e) {
    say($("#sync-status"), e.message, "error");
  } finally {
    syncing = false;
    $("#sync-now").disabled = false;
  }
}

function progress(m) {
  const bar = $("#sync-bar");
  const text = $("#sync-text");
  if (m.state === "running") {
    bar.max = Math.max(1, m.total);
    bar.value = m.done;
    text.textContent = m.total ? `${kib(m.done)} of ${kib(m.total)}${m.session !== undefined ? `, session ${m.session}` : ""}`
      : "nothing new on the trainer";
    if (!m.total) bar.value = 0;
    say($("#sync-status"), `fetching ${m.sessions} session${m.sessions === 1 ? "" : "s"}…`, "busy");
  } else if (m.state === "done") {
    bar.max = 1;
    bar.value = 1;
    const n = m.fetched.length;
    text.textContent = m.bytes ? `${kib(m.bytes)} in ${num(m.seconds)} s` : "";
    const parts = [`${n} new session${n === 1 ? "" : "s"}`];
    if (m.already.length) parts.push(`${m.already.length} already here`);
    if (m.recording.length) parts.push(`session ${m.recording.join(", ")} is still recording: sync again when it ends`);
    if (m.bad.length) parts.push(`session ${m.bad.join(", ")} is unreadable and stays on the trainer`);
    const status = $("#sync-status");
    say(status, `Synced ${m.device}: ${parts.join("; ")}. `, "ok");
    status.append(el("a", { href: "#/history", text: "See your history" }));
  } else if (m.state === "failed") {
    say($("#sync-status"), `${m.error} (what was fetched so far is kept: sync again to resume)`, "error");
  }
}

// ---- history ------------------------------------------------------------------

export async function show() {
  const body = $("#history tbody");
  say($("#history-status"), "loading…", "busy");
  let doc;
  try {
    doc = await get("/api/sessions");
  } catch (e) {
    say($("#history-status"), e.message, "error");
    return;
  }
  $("#history-where").textContent = `${doc.sessions.length} session${doc.sessions.length === 1 ? "" : "s"} in ${doc.database}`;
  if (!doc.sessions.length) {
    clear(body);
    say($("#history-status"), "No sessions yet: train, then sync your trainer.", "");
    return;
  }
  say($("#history-status"), "");
  clear(body, doc.sessions.map(row));
}

function row(s) {
  const href = `#/session/${encodeURIComponent(s.device_id)}/${s.session_id}`;
  const pain = s.pain || {};
  const painText = pain.before === undefined && pain.after === undefined ? "–"
    : `${pain.before ?? "–"} → ${pain.after ?? "–"}`;
  const sc = s.scores || {};
  return el("tr", { dataset: { key: s.key } },
    el("td", {}, el("a", { href, text: s.start_epoch === null ? `${s.key} (clock not set)` : localDate(s.start_epoch) })),
    el("td", { text: s.program_name }),
    el("td", { class: "num", text: s.length }),
    el("td", { class: "num", text: String(s.n_squeezes) }),
    el("td", { class: "num", text: s.judged ? `${s.relaxed_fully}/${s.judged}` : "–" }),
    el("td", { class: "num", text: sc.power !== undefined && sc.power !== null ? `${num(sc.power)} ${s.unit}` : "–" }),
    el("td", { class: "num", text: painText }),
    el("td", { text: s.status }));
}
