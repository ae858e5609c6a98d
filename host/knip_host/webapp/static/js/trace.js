// The live trace: the last WINDOW_S seconds of both channels, scrolling
// smoothly (drawn on every animation frame, not only when samples come),
// with the target zone of the current cue and a mark at every cue.
//
// It also keeps the figures `make bench` reads (window.knipStats): frames
// drawn per second, and for every sample the time from entering the
// virtual trainer (board tick 0 on the wall clock + its tick / speed) to
// the first frame that drew it.

const WINDOW_S = 15;
const COLORS = { pf: "#7a2d8c", abd: "#3d8f6b", zone: "rgba(122,45,140,0.14)", zoneLine: "rgba(122,45,140,0.7)",
  rest: "rgba(61,143,107,0.14)", cue: "rgba(40,40,40,0.45)" };

export const stats = { frames: 0, since: 0, lat: [], drawnUpTo: -1, beeps: 0, fps: 0 };
window.knipStats = stats;

export class LiveTrace {
  constructor(node) {
    this.node = node;
    this.plot = null;
    this.reset({ rate: 100, channels: 1, speed: 1, unit: "", envelope: false, t0_ms: null });
    this.running = false;
    this.level = { rest: null, ref: null };
    this.zone = null;              // {lo, hi, kind} in % of ref
    this.marks = [];               // [{x, label}]
  }

  reset(live) {
    this.rate = live.rate || 100;
    this.channels = live.channels || 1;
    this.speed = live.speed || 1;
    this.unit = live.unit || "";
    this.envelope = !!live.envelope;
    this.t0 = live.t0_ms;          // wall ms of board tick 0 (virtual trainer only)
    this.batchS = (live.batch || 10) / this.rate;
    this.xs = [];
    this.ys = [[], []];
    this.off = null;               // device seconds minus wall seconds x speed
    this.lastT = null;
    this.right = null;
    this.pending = [];             // samples not drawn yet: [entry wall ms]
    this.dirty = true;
    this.marks = [];
    if (this.plot) { this.plot.destroy(); this.plot = null; }
  }

  _make() {
    const width = Math.max(320, this.node.clientWidth || 800);
    const series = [{}, { label: this.envelope ? "activity" : "pelvic floor", stroke: COLORS.pf, width: 2, points: { show: false } }];
    if (this.channels > 1 && !this.envelope) {
      series.push({ label: "abdominal", stroke: COLORS.abd, width: 1.5, points: { show: false } });
    }
    const opts = {
      width, height: 280, pxAlign: 0, legend: { show: true, live: false },
      cursor: { show: false }, scales: { x: { time: false }, y: { range: (u, lo, hi) => this._yRange(lo, hi) } },
      axes: [{ label: "seconds", size: 36, values: (u, vals) => vals.map((v) => v.toFixed(0)) },
             { label: this.unit, size: 52 }],
      series,
      hooks: { drawClear: [(u) => this._drawZone(u)], draw: [(u) => this._drawMarks(u)] },
    };
    const data = [this.xs, this.ys[0]];
    if (series.length > 2) data.push(this.ys[1]);
    this.plot = new uPlot(opts, data, this.node);
    this.node.setAttribute("data-ready", "1");
  }

  resize() {
    if (this.plot) this.plot.setSize({ width: Math.max(320, this.node.clientWidth), height: 280 });
  }

  setLevel(rest, ref) { this.level = { rest, ref }; }

  // cue: {cue, target}; the zone follows the coach: squeezes reach the target
  // (5 % below it passes), rests stay low (near her resting level)
  setCue(cue) {
    if ((cue.cue === "squeeze" || cue.cue === "hold") && cue.target) {
      this.zone = { lo: cue.target - 5, hi: Math.min(130, cue.target + 30), kind: "squeeze", target: cue.target };
    } else if (cue.cue === "rest" || cue.cue === "relax") {
      this.zone = { lo: -8, hi: 8, kind: "rest" };
    } else {
      this.zone = null;
    }
    if (this.lastT !== null && cue.cue !== "pain") {
      this.marks.push({ x: cue.i !== undefined ? cue.i / this.rate : this.lastT, label: cue.cue });
    }
  }

  push(msg) {
    const now = Date.now();
    const v = msg.v;
    const n = v[0].length;
    for (let k = 0; k < n; k++) {
      const idx = msg.i + k;
      this.xs.push(idx / this.rate);
      this.ys[0].push(v[0][k]);
      if (this.channels > 1 && !this.envelope) this.ys[1].push(v[1] ? v[1][k] : null);
      if (this.t0 !== null && this.t0 !== undefined) {
        this.pending.push(this.t0 + (idx * 1000) / this.rate / this.speed);
      }
    }
    this.lastT = (msg.i + n) / this.rate;
    const sample = this.lastT - (now / 1000) * this.speed;
    this.off = this.off === null || Math.abs(sample - this.off) > 2 * this.speed ? sample : this.off + (sample - this.off) * 0.1;
    const keep = this.xs.length - Math.ceil((WINDOW_S + 2) * this.rate / (this.envelope ? this.rate * this.batchS : 1));
    if (keep > 256) {                     // trim in chunks: cheap and amortised
      this.xs.splice(0, keep);
      this.ys[0].splice(0, keep);
      if (this.ys[1].length) this.ys[1].splice(0, keep);
    }
    const left = this.lastT - WINDOW_S - 2;
    while (this.marks.length && this.marks[0].x < left) this.marks.shift();
    this.dirty = true;
  }

  start() {
    if (this.running) return;
    this.running = true;
    stats.since = performance.now();
    stats.frames = 0;
    const tick = () => {
      if (!this.running) return;
      this.draw();
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  }

  stop() { this.running = false; }

  draw() {
    if (!this.xs.length) return;
    if (!this.plot) this._make();
    const now = Date.now();
    let right = (now / 1000) * this.speed + this.off;
    right = Math.min(right, this.lastT + this.batchS);            // never far past the data
    if (this.right !== null && right < this.right) right = this.right;  // never backwards
    this.right = right;
    if (this.dirty) {
      const data = [this.xs, this.ys[0]];
      if (this.plot.series.length > 2) data.push(this.ys[1]);
      this.plot.setData(data, false);
      this.dirty = false;
    }
    this.plot.setScale("x", { min: right - WINDOW_S, max: right });
    const drawn = Date.now();
    for (const entry of this.pending) stats.lat.push(drawn - entry);
    if (stats.lat.length > 20000) stats.lat.splice(0, stats.lat.length - 20000);
    this.pending.length = 0;
    stats.frames += 1;
    stats.drawnUpTo = this.lastT;
    const secs = (performance.now() - stats.since) / 1000;
    if (secs > 0.5) stats.fps = stats.frames / secs;
  }

  _yRange(lo, hi) {
    const { rest, ref } = this.level;
    let a = lo, b = hi;
    if (rest !== null && rest !== undefined) {
      a = Math.min(a, rest - 2);
      b = Math.max(b, rest + (ref ? ref * 1.15 : 10));
    }
    if (!(b > a)) b = a + 1;
    return [a, b];
  }

  _drawZone(u) {
    const { rest, ref } = this.level;
    const z = this.zone;
    if (!z || rest === null || rest === undefined || !ref) return;
    const ctx = u.ctx;
    const { left, width } = u.bbox;
    const y1 = u.valToPos(rest + (z.hi / 100) * ref, "y", true);
    const y0 = u.valToPos(rest + (z.lo / 100) * ref, "y", true);
    ctx.save();
    ctx.fillStyle = z.kind === "rest" ? COLORS.rest : COLORS.zone;
    ctx.fillRect(left, Math.min(y0, y1), width, Math.abs(y0 - y1));
    if (z.target) {
      const yt = u.valToPos(rest + (z.target / 100) * ref, "y", true);
      ctx.strokeStyle = COLORS.zoneLine;
      ctx.setLineDash([6, 4]);
      ctx.beginPath();
      ctx.moveTo(left, yt);
      ctx.lineTo(left + width, yt);
      ctx.stroke();
    }
    ctx.restore();
  }

  _drawMarks(u) {
    const ctx = u.ctx;
    const { top, height } = u.bbox;
    const min = u.scales.x.min, max = u.scales.x.max;
    ctx.save();
    ctx.strokeStyle = COLORS.cue;
    ctx.fillStyle = COLORS.cue;
    ctx.font = `${Math.round(11 * devicePixelRatio)}px sans-serif`;
    for (const m of this.marks) {
      if (m.x < min || m.x > max) continue;
      const x = u.valToPos(m.x, "x", true);
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x, top + height);
      ctx.stroke();
      ctx.fillText(m.label, x + 3, top + 12 * devicePixelRatio);
    }
    ctx.restore();
  }
}
