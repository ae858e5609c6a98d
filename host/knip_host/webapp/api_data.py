"""The routes over what is stored on this computer: her sessions (history,
one session with its trace, export), her progress, the physiotherapist's
report, and the programs (listed, checked with the firmware's own
validator, and the copies of the custom programs she made here).

Everything is computed by the host modules the commands use
(knip_host.database, sessionfile, trends, html_report, export,
commands.sessions.show_json, knip.programs); these handlers only carry it
to the page as JSON (or a file). Database work runs in a worker thread."""
from __future__ import annotations

import asyncio
import json
import re
import tempfile
from pathlib import Path
from typing import Any, Awaitable, Callable

from aiohttp import web

from knip import programs as PG

from ..commands.output import default_name, plain
from ..commands.program import describe
from ..commands.sessions import show_json
from ..commands.stored import local_time, program_name, status
from ..durations import minutes
from ..database import DatabaseError, SessionDatabase, default_path

FIELD_RE = re.compile(r"^((?:name|title|phases)(?:\[\d+\])?(?:\.[a-z_]+)?):\s")
EXPORTS = {"csv": (".csv", "text/csv"), "events": ("_events.csv", "text/csv"),
           "cues": ("_cues.csv", "text/csv"), "edf": (".edf", "application/octet-stream")}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def ok(doc: Any, status: int = 200) -> web.Response:
    return web.json_response(plain(doc), status=status, dumps=lambda d: json.dumps(d, allow_nan=False))


def fail(message: str, status: int = 400, **extra: Any) -> web.Response:
    return ok({"error": message, **extra}, status)


class DataRoutes:
    def __init__(self, db_path: str | Path | None):
        self.db_path = Path(db_path).expanduser() if db_path else default_path()

    @property
    def programs_dir(self) -> Path:
        """Her custom programs as she last pushed them from here (the trainer
        keeps only their running form, so this is what the editor opens)."""
        return self.db_path.parent / "programs"

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/api/sessions", self.sessions), web.get("/api/session", self.session),
                web.get("/api/export", self.export), web.get("/api/progress", self.progress),
                web.get("/api/report", self.report), web.get("/api/programs", self.programs),
                web.post("/api/programs/check", self.check)]

    def _open(self) -> SessionDatabase | None:
        if not self.db_path.exists():
            return None
        return SessionDatabase.open(self.db_path, create=False)

    async def _db(self, fn: Callable[[SessionDatabase | None], Any]) -> Any:
        def work() -> Any:
            db = self._open()
            try:
                return fn(db)
            finally:
                if db is not None:
                    db.close()
        return await asyncio.to_thread(work)

    # ---- history ----------------------------------------------------------------

    async def sessions(self, request: web.Request) -> web.Response:
        def rows(db: SessionDatabase | None) -> list[dict[str, Any]]:
            if db is None:
                return []
            out = []
            for r in reversed(db.list()):           # newest first
                summary = r.summary
                out.append(dict(r.to_json(), summary=None, start_local=local_time(r.start_epoch),
                                length=minutes(r.duration_s), program_name=program_name(r.program),
                                status=status(r.complete), judged=summary.get("judged"),
                                relaxed_fully=summary.get("relaxed_fully"),
                                pain=summary.get("pain"), scores=_brief_scores(summary)))
            return out
        try:
            found = await self._db(rows)
        except DatabaseError as exc:
            return fail(str(exc), 500)
        return ok({"database": str(self.db_path), "sessions": found})

    async def session(self, request: web.Request) -> web.Response:
        ref = request.query.get("ref", "")

        def load(db: SessionDatabase | None) -> dict[str, Any]:
            if db is None:
                raise DatabaseError(f"no session database at {self.db_path} yet: sync first")
            from ..coaching import PAIN_NOTE, pain_rose, score_lines
            from ..sessionfile import decode
            s = db.load(ref, decode)
            doc = show_json(s)
            doc["score_lines"] = score_lines(s.scores)
            doc["pain_note"] = PAIN_NOTE if pain_rose(s.pain) else None
            cpu = float(s.counts_per_unit) or 1.0
            doc.update(verdicts=s.verdicts, scores=s.scores, pain=s.pain, summary_device=s.summary,
                       trace={"t": [round(x / 1000.0, 3) for x in s.t_ms.tolist()],
                              "v": [round(x / cpu, 2) for x in s.values.tolist()],
                              "abd": None if s.abd is None else [round(x / cpu, 2) for x in s.abd.tolist()]})
            return doc
        try:
            return ok(await self._db(load))
        except DatabaseError as exc:
            return fail(str(exc), 404)

    async def export(self, request: web.Request) -> web.StreamResponse:
        ref = request.query.get("ref", "")
        part = request.query.get("format", "csv")
        if part not in EXPORTS:
            return fail(f"format must be one of {', '.join(EXPORTS)}")
        suffix, ctype = EXPORTS[part]

        def write(db: SessionDatabase | None) -> tuple[str, bytes]:
            if db is None:
                raise DatabaseError(f"no session database at {self.db_path} yet: sync first")
            from ..export import export_csv, export_edf
            from ..sessionfile import decode
            key = db.resolve(ref)
            s = db.load(f"{key[0]}/{key[1]}", decode)
            with tempfile.TemporaryDirectory(prefix="knip-export-") as tmp:
                if part == "edf":
                    path = export_edf(s, Path(tmp) / default_name(key, ".edf"))
                else:
                    base = Path(tmp) / default_name(key, ".csv")
                    written = {p.name: p for p in export_csv(s, base)}
                    name = default_name(key, suffix)
                    if name not in written:
                        raise DatabaseError(f"{s.key} has no {part} table (no coaching program)")
                    path = written[name]
                return path.name, path.read_bytes()
        try:
            name, data = await self._db(write)
        except (DatabaseError, ValueError) as exc:
            return fail(str(exc), 404)
        return web.Response(body=data, content_type=ctype,
                            headers={"Content-Disposition": f'attachment; filename="{name}"'})

    # ---- progress and report -----------------------------------------------------

    async def progress(self, request: web.Request) -> web.Response:
        def build(db: SessionDatabase | None) -> dict[str, Any]:
            from .. import trends as T
            from ..html_report import other_notes, pain_notes
            from ..trend_plots import PANELS, panels_with_data
            rows = db.list() if db is not None else []
            tr = T.build(rows)
            return {"database": str(self.db_path), **tr.to_json(),
                    "notes": pain_notes(tr) + other_notes(tr) + tr.notes(),
                    "panels": [{"name": n, "title": PANELS[n].title, "caption": PANELS[n].caption}
                               for n in panels_with_data(tr)]}
        try:
            return ok(await self._db(build))
        except DatabaseError as exc:
            return fail(str(exc), 500)

    async def report(self, request: web.Request) -> web.Response:
        def render(db: SessionDatabase | None) -> str | None:
            from ..html_report import render as html
            rows = db.list() if db is not None else []
            return html(rows, database=str(self.db_path)) if rows else None
        try:
            text = await self._db(render)
        except DatabaseError as exc:
            return fail(str(exc), 500)
        if text is None:
            return fail("no sessions yet: sync your trainer first, then the report has something to show", 404)
        headers = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:"}
        if request.query.get("download"):
            headers["Content-Disposition"] = 'attachment; filename="knip-report.html"'
        return web.Response(text=text, content_type="text/html", headers=headers)

    # ---- programs ------------------------------------------------------------

    def local_programs(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        folder = self.programs_dir
        if folder.is_dir():
            for p in sorted(folder.glob("*.json")):
                try:
                    doc = json.loads(p.read_text(encoding="utf-8"))
                    name, _title, _phases = PG.parse(doc, p.stem)
                except (OSError, ValueError):
                    continue
                out[name] = doc
        return out

    def save_program(self, doc: dict[str, Any]) -> None:
        self.programs_dir.mkdir(parents=True, exist_ok=True)
        path = self.programs_dir / f"{doc['name']}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)

    def drop_program(self, name: str) -> None:
        if re.fullmatch(r"[a-z0-9_-]{1,24}", name):
            (self.programs_dir / f"{name}.json").unlink(missing_ok=True)

    async def programs(self, request: web.Request) -> web.Response:
        builtin = []
        for name in sorted(PG.BUILTIN_NAMES):
            _n, title, phases = PG.builtin(name)
            builtin.append(program_entry(name, title, phases))
        local = []
        for name, doc in (await asyncio.to_thread(self.local_programs)).items():
            _n, title, phases = PG.parse(doc, name)
            local.append(program_entry(name, title, phases))
        return ok({"builtin": builtin, "local": local})

    async def check(self, request: web.Request) -> web.Response:
        try:
            doc = await request.json()
        except ValueError:
            return fail("not JSON")
        return ok(check_program(doc.get("doc") if isinstance(doc, dict) and "doc" in doc else doc))


def program_entry(name: str, title: str, phases: list[tuple[int, ...]]) -> dict[str, Any]:
    return {"name": name, "title": title, "duration_s": PG.duration_ms(phases) / 1000,
            "length": minutes(PG.duration_ms(phases) / 1000), "squeezes": PG.squeezes(phases),
            "describe": describe(phases), "doc": PG.to_doc(name, title, phases)}


def check_program(doc: Any) -> dict[str, Any]:
    """The firmware's validator on a program the page sends: {"ok": True,
    program...} or {"ok": False, "error", "field"} (the field the error
    names, e.g. "phases[1].rest_s", for the page to show it beside)."""
    try:
        name, title, phases = PG.parse(doc)
    except PG.ProgramError as exc:
        text = str(exc)
        m = FIELD_RE.match(text)
        return {"ok": False, "error": text, "field": m.group(1) if m else None}
    if name in PG.BUILTIN_NAMES:
        return {"ok": False, "error": f"name: '{name}' is a built-in program; choose another name",
                "field": "name"}
    return {"ok": True, **program_entry(name, title, phases)}


def _brief_scores(summary: dict[str, Any]) -> dict[str, Any] | None:
    sc = summary.get("scores")
    if not isinstance(sc, dict):
        return None
    keep = ("mvc", "power", "power_pct_mvc", "oxford", "oxford_label", "endurance_s", "repetitions",
            "fast", "calibrated", "unit")
    return {k: sc.get(k) for k in keep if k in sc}
