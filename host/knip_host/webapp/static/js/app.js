// The page: one view per nav entry, chosen by the URL's hash (#/train,
// #/session/DEVICE/N, ...), the trainer badge, and the WebSocket.

import { connectSocket, on, link } from "./api.js";
import { $, $$ } from "./ui.js";
import * as train from "./train.js";
import * as history from "./history.js";
import * as session from "./session.js";
import * as progress from "./progress.js";
import * as programs from "./programs.js";
import * as device from "./device.js";

export const state = { trainer: { state: "disconnected", info: {} } };

const PAGES = {
  train: train, sync: history.syncPage, history: history, session: session,
  progress: progress, report: { show() {} }, programs: programs, device: device,
};

let current = null;

function route() {
  const hash = location.hash.replace(/^#\/?/, "");
  const [name, ...rest] = hash.split("/");
  const page = PAGES[name] ? name : "train";
  if (current && current !== page && PAGES[current].hide) PAGES[current].hide();
  for (const s of $$(".page")) s.hidden = s.id !== `page-${page}`;
  for (const a of $$("nav a")) {
    if (a.dataset.page === page || (page === "session" && a.dataset.page === "history")) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const first = current === null;
  const changed = current !== page;
  current = page;
  PAGES[page].show(rest.map(decodeURIComponent).join("/"), state);
  if (changed) {
    const h = $(`#page-${page} h1`);
    document.title = `Knip: ${h ? h.textContent : page}`;
    if (!first) $("#main").focus({ preventScroll: true });    // a new page: the keyboard starts there
  }
}

function badge(msg) {
  const b = $("#badge");
  const info = msg.info || {};
  let text = "no trainer";
  if (msg.state === "connected") {
    text = `● ${msg.label || "trainer"}`;
    if (info.battery_pct >= 0) text += ` · ${info.battery_pct} %`;
    if (msg.session !== null && msg.session !== undefined) text += ` · session ${msg.session}`;
  } else if (msg.state === "connecting") {
    text = `connecting to ${msg.label || "the trainer"}…`;
  } else if (msg.error) {
    text = "trainer lost";
  }
  b.textContent = text;
  b.className = `badge ${msg.state}`;
  b.title = msg.error || "";
}

function init() {
  on("trainer", (msg) => {
    state.trainer = msg;
    badge(msg);
    for (const p of [train, device, programs]) if (p.trainerChanged) p.trainerChanged(msg, state);
  });
  on("socket", (msg) => { if (!msg.open) $("#badge").textContent = "knip app is not answering…"; });
  $("#report-open").href = link("/api/report");
  $("#report-save").href = link("/api/report", { download: "1" });
  train.init(state);
  history.init(state);
  session.init(state);
  progress.init(state);
  programs.init(state);
  device.init(state);
  window.addEventListener("hashchange", route);
  connectSocket();
  route();
}

init();
