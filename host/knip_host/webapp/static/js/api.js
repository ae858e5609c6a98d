// The server: JSON requests with the page's key, and the one WebSocket
// whose messages are handed to whoever listens for their type.

const params = new URLSearchParams(location.search);
export const TOKEN = params.get("token") || "";

export class ApiError extends Error {
  constructor(message, status, body) {
    super(message);
    this.status = status;
    this.body = body || {};
    this.field = this.body.field || null;
  }
}

async function request(method, path, body) {
  const opts = { method, headers: { "X-Knip-Token": TOKEN }, cache: "no-store" };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, opts);
  } catch (e) {
    throw new ApiError("knip app is not answering: is it still running in the terminal?", 0);
  }
  let doc = {};
  try { doc = await resp.json(); } catch (e) { doc = {}; }
  if (!resp.ok) throw new ApiError(doc.error || `${resp.status} ${resp.statusText}`, resp.status, doc);
  return doc;
}

export const get = (path) => request("GET", path);
export const post = (path, body) => request("POST", path, body === undefined ? {} : body);

// a link the browser follows itself (downloads, the report): the key rides in the query
export function link(path, query) {
  const q = new URLSearchParams(query || {});
  q.set("token", TOKEN);
  return `${path}?${q.toString()}`;
}

// ---- the WebSocket -----------------------------------------------------------

const listeners = new Map();     // type -> Set of functions
let socket = null;
let watching = false;
let retry = 250;

export function on(type, fn) {
  if (!listeners.has(type)) listeners.set(type, new Set());
  listeners.get(type).add(fn);
}

function dispatch(msg) {
  const fns = listeners.get(msg.type);
  if (fns) for (const fn of fns) {
    try { fn(msg); } catch (e) { console.error(e); }
  }
  const all = listeners.get("*");
  if (all) for (const fn of all) fn(msg);
}

export function connectSocket() {
  const url = `ws://${location.host}/ws?token=${encodeURIComponent(TOKEN)}`;
  socket = new WebSocket(url);
  socket.onopen = () => {
    retry = 250;
    dispatch({ type: "socket", open: true });
    if (watching) socket.send(JSON.stringify({ type: "watch", on: true }));
  };
  socket.onmessage = (ev) => {
    const data = JSON.parse(ev.data);
    if (Array.isArray(data)) data.forEach(dispatch); else dispatch(data);
  };
  socket.onclose = () => {
    dispatch({ type: "socket", open: false });
    setTimeout(connectSocket, retry);
    retry = Math.min(retry * 2, 4000);
  };
}

// the live stream runs while some page shows it
export function watchLive(on) {
  watching = on;
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "watch", on }));
}
