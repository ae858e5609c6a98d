// Small helpers for building the pages: elements (text is always set as
// text, never as HTML), numbers, the 0-10 pain scale, messages.

export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export function clear(node, ...children) {
  node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

export const $ = (sel, root) => (root || document).querySelector(sel);
export const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));

export function num(x, nd = 1, unit = "") {
  if (x === null || x === undefined || Number.isNaN(x)) return "–";
  return x.toFixed(nd) + (unit ? ` ${unit}` : "");
}

export function kib(bytes) {
  return `${(bytes / 1024).toFixed(1)} KiB`;
}

export function pct(n, of) {
  return of ? `${n}/${of} (${Math.round((100 * n) / of)} %)` : "–";
}

// A row of 11 buttons (0-10) and "skip"; onPick(score|null). role=radiogroup,
// arrow keys move between the scores, as in any radio group.
export function painScale(label, onPick, opts = {}) {
  const group = el("div", { class: "pain-scale", role: "radiogroup", "aria-label": label });
  const buttons = [];
  const pick = (score) => {
    for (const b of buttons) {
      const on = b.dataset.score === String(score);
      b.setAttribute("aria-checked", on ? "true" : "false");
      b.tabIndex = on ? 0 : -1;
    }
    group.dataset.value = score === null ? "" : String(score);
    onPick(score);
  };
  for (let i = 0; i <= 10; i++) {
    const b = el("button", { type: "button", role: "radio", class: "pain", "aria-checked": "false",
      dataset: { score: String(i) }, tabindex: i === 0 ? "0" : "-1", title: painWord(i), text: String(i) });
    b.addEventListener("click", () => pick(i));
    b.addEventListener("keydown", (ev) => {
      const d = { ArrowRight: 1, ArrowUp: 1, ArrowLeft: -1, ArrowDown: -1 }[ev.key];
      if (d) {
        ev.preventDefault();
        const j = Math.max(0, Math.min(10, i + d));
        buttons[j].focus();
        pick(j);
      }
    });
    buttons.push(b);
    group.append(b);
  }
  if (opts.skip !== false) {
    group.append(el("button", { type: "button", class: "pain-skip secondary", text: opts.skipText || "skip",
      onclick: () => pick(null) }));
  }
  group.reset = () => {
    for (const b of buttons) { b.setAttribute("aria-checked", "false"); b.tabIndex = b.dataset.score === "0" ? 0 : -1; }
    delete group.dataset.value;
  };
  return group;
}

function painWord(i) {
  return i === 0 ? "no pain" : i <= 3 ? "mild" : i <= 6 ? "moderate" : i <= 9 ? "severe" : "worst pain";
}

// a status line for a section: kind "" | "ok" | "error" | "busy"
export function say(node, text, kind = "") {
  node.textContent = text || "";
  node.className = `status ${kind}`.trim();
  node.hidden = !text;
}

export function localDate(epochS) {
  if (epochS === null || epochS === undefined) return "clock not set";
  const d = new Date(epochS * 1000);
  return d.toLocaleString(undefined, { year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit" });
}
