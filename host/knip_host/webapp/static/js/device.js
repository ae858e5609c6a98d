// Device: what the trainer is and holds (INFO): firmware, sensor, battery,
// storage, sessions, clock, and over Bluetooth the pairing state.

import { get, post } from "./api.js";
import { $, el, clear, say } from "./ui.js";

let last = null;

export function init() {
  $("#device-refresh").addEventListener("click", () => act("GET", "/api/trainer/info"));
  $("#device-clock").addEventListener("click", () => act("POST", "/api/trainer/clock", "clock set to this computer's time"));
}

export function show(_arg, state) {
  render(state.trainer);
  if (state.trainer.state === "connected") act("GET", "/api/trainer/info");
}

export function trainerChanged(msg) {
  last = msg;
  if (!$("#page-device").hidden) render(msg);
}

async function act(method, path, done) {
  try {
    await (method === "GET" ? get(path) : post(path));
    say($("#device-status"), done || "", "ok");
  } catch (e) {
    say($("#device-status"), e.message, "error");
  }
}

function bar(value, max, text) {
  return el("span", { class: "meter-row" }, el("meter", { min: "0", max: String(max), value: String(value), low: String(max * 0.2),
    optimum: String(max) }), ` ${text}`);
}

function render(msg) {
  last = msg || last;
  const body = $("#device-info tbody");
  const connected = last && last.state === "connected";
  $("#device-refresh").disabled = !connected;
  $("#device-clock").disabled = !connected;
  if (!connected) {
    clear(body, el("tr", {}, el("td", { text: last && last.error ? `not connected: ${last.error}` : "No trainer connected: choose one on the Train page." })));
    return;
  }
  const i = last.info || {};
  const total = i.storage_total || 0, free = i.storage_free || 0;
  const rows = [
    ["link", last.label],
    ["device", `${i.device} (${i.board})`],
    ["firmware", `${i.firmware}, protocol ${i.protocol}${i.micropython ? `, MicroPython ${i.micropython}` : ""}`],
    ["sensor", `${i.signal} in ${i.unit}, ${i.rate_hz} Hz, ${i.channels} channel${i.channels > 1 ? "s" : ""}${i.sensor ? ` (${i.sensor})` : ""}`],
    ["battery", i.battery_pct >= 0 ? bar(i.battery_pct, 100, `${i.battery_pct} % (${i.battery_mv} mV)${i.usb_power ? ", on USB power" : ""}`) : "unknown"],
    ["storage", total ? bar(free, total, `${(free / 1024).toFixed(0)} KiB free of ${(total / 1024).toFixed(0)} KiB${i.storage_full ? ": FULL, sync now" : ""}`) : "–"],
    ["sessions", `${i.sessions} on the trainer, ${i.unsynced} to sync`],
    ["clock", i.clock_ms ? new Date(i.clock_ms).toLocaleString() : "not set"],
    ["state", i.state === "session" ? `recording session ${i.session} (${i.program})` : "idle"],
    ["calibration", i.mvc ? `MVC ${(i.mvc / (i.level_div || 1)).toFixed(1)} ${i.unit} above rest` : "not calibrated yet: run 'calibrate'"],
    ["programs", (i.programs || []).join(", ")],
    ["Bluetooth", ble(i, last.choice)],
  ];
  if (i.profile) rows.splice(2, 0, ["profile", i.profile]);
  if (i.alerts && i.alerts.length) rows.push(["alerts", i.alerts.join("; ")]);
  if (i.recovered && i.recovered.length) rows.push(["recovered", `sessions ${i.recovered.join(", ")} after a power cut`]);
  clear(body, rows.map(([k, v]) => el("tr", { dataset: { key: k } }, el("th", { scope: "row", text: k }), el("td", {}, v))));
}

function ble(i, choice) {
  const b = i.ble;
  if (!b) return choice && choice.kind === "ble" ? "connected over Bluetooth" : "not used (this trainer is on a cable or virtual)";
  const parts = [`name ${b.name}`, b.connected ? "a computer is connected" : "nothing connected",
    b.encrypted ? "encrypted" : "not encrypted", b.bonded ? "paired with this computer" : "not paired",
    b.pairing ? "pairing is open now" : "pairing closed", `${b.bonds ?? 0} paired computer${b.bonds === 1 ? "" : "s"}`];
  return parts.join(", ");
}
