# Training programs as data. A program is a list of phases; each phase is
#   (kind, reps, squeeze_ms, rest_ms, target_pct, rest_rule)
# kind "rest" and "relax" have no squeeze: one window of rest_ms per rep.
# The same JSON form is used for the built-ins and for custom programs
# pushed from the host (`knip program push`), and `parse` validates both, so
# a bad program is refused with the field named and never replaces a good
# one. Why each built-in looks as it does: ../docs/COACHING.md.
from knip.fixed import const

CUE_REST = const(0)
CUE_SQUEEZE = const(1)
CUE_RELAX = const(2)
CUE_DONE = const(3)
CUE_HOLD = const(4)        # the squeeze is up: keep holding
CUE_PAIN = const(5)        # pain check-in: 0-10 on the button (or the host asks)
CUE_NAMES = ("rest", "squeeze", "relax", "done", "hold", "pain")

K_REST = const(0)          # lie still: resting level and its variability
K_RELAX = const(1)         # down-training: let go, stay low and steady
K_MVC = const(2)           # maximal squeeze (calibration)
K_FAST = const(3)          # quick, hard squeeze, full relaxation after
K_HOLD = const(4)          # long hold
KIND_NAMES = ("rest", "relax", "mvc", "fast", "hold")

RULE_FIXED = const(0)      # rest exactly rest_ms
RULE_EQUAL = const(1)      # ... and at least as long as she actually squeezed
RULE_RELAXED = const(2)    # ... and until she is back at rest (at most 2 x rest_ms)
RULE_NAMES = ("fixed", "equal", "relaxed")

MAX_PHASES = const(32)
MAX_REPS = const(100)
MAX_SQUEEZE_MS = const(120000)
MAX_REST_MS = const(600000)
MAX_TOTAL_MS = const(3600000)
NAME_MAX = const(24)
TITLE_MAX = const(80)


def _rest(s):
    return {"kind": "rest", "seconds": s}


# The built-in programs' names; their definitions (builtin_docs(), below)
# are built when asked for, so the device does not keep them in RAM (~1.5 KB).
BUILTIN_NAMES = ("calibrate", "sprint", "marathon", "assessment", "relax", "daily")


def builtin_docs():
    """{name: program object} of the built-in programs, made afresh on each call."""
    return {
        # rest baseline, then three maximal squeezes: her MVC and resting level
        "calibrate": {"title": "Calibrate: resting level and maximal squeeze", "phases": [
            _rest(30),
            {"kind": "mvc", "reps": 3, "squeeze_s": 5, "rest_s": 15, "rest_rule": "relaxed"}]},
        # fast fibres: 3 sets of 10 quick, hard squeezes, full relaxation between
        "sprint": {"title": "Sprint: 3 sets of 10 quick squeezes", "phases": [
            _rest(10),
            {"kind": "fast", "reps": 10, "squeeze_s": 1, "rest_s": 3, "target_pct": 70, "rest_rule": "relaxed"},
            _rest(30),
            {"kind": "fast", "reps": 10, "squeeze_s": 1, "rest_s": 3, "target_pct": 70, "rest_rule": "relaxed"},
            _rest(30),
            {"kind": "fast", "reps": 10, "squeeze_s": 1, "rest_s": 3, "target_pct": 70, "rest_rule": "relaxed"}]},
        # slow fibres: 5 holds of up to 10 s, resting at least as long
        "marathon": {"title": "Marathon: 5 holds of 10 s", "phases": [
            _rest(10),
            {"kind": "hold", "reps": 5, "squeeze_s": 10, "rest_s": 10, "target_pct": 50, "rest_rule": "equal"}]},
        # Glazer assessment: fixed timing so results compare across sessions
        "assessment": {"title": "Assessment (Glazer protocol)", "phases": [
            _rest(60),
            {"kind": "fast", "reps": 5, "squeeze_s": 2, "rest_s": 2, "rest_rule": "fixed"},
            {"kind": "hold", "reps": 5, "squeeze_s": 10, "rest_s": 10, "rest_rule": "fixed"},
            {"kind": "hold", "reps": 1, "squeeze_s": 60, "rest_s": 60, "rest_rule": "fixed"}]},
        # down-training for a pelvic floor that does not let go
        "relax": {"title": "Relax: letting go, low and steady", "phases": [
            _rest(30),
            {"kind": "relax", "reps": 3, "seconds": 20},
            {"kind": "hold", "reps": 4, "squeeze_s": 3, "rest_s": 15, "target_pct": 30, "rest_rule": "relaxed"},
            {"kind": "relax", "reps": 2, "seconds": 20}]},
        # the demo's short mix: one sprint set and one marathon set
        "daily": {"title": "Daily: a sprint set and a marathon set", "phases": [
            _rest(5),
            {"kind": "fast", "reps": 10, "squeeze_s": 1, "rest_s": 3, "target_pct": 70, "rest_rule": "relaxed"},
            _rest(10),
            {"kind": "hold", "reps": 5, "squeeze_s": 10, "rest_s": 10, "target_pct": 50, "rest_rule": "equal"}]},
    }


_SQUEEZE_FIELDS = ("kind", "reps", "squeeze_s", "rest_s", "target_pct", "rest_rule")
_WINDOW_FIELDS = ("kind", "reps", "seconds")


class ProgramError(ValueError):
    """A program that cannot run; the message names the field."""


def _shown(v):
    """A bad value for a message: short, one line, ASCII; a list or object by
    its kind only (its repr could be huge or nested past the stack)."""
    if isinstance(v, (list, tuple)):
        return "a list"
    if isinstance(v, dict):
        return "an object"
    if isinstance(v, str):
        if _plain(v, 40):
            return "'" + v + "'"
        # its first 30 characters, read from its UTF-8 bytes (on MicroPython
        # a character taken out of a str is interned for good: a qstr per
        # distinct character): printable ASCII as it is, any other as \\uXXXX
        bs = v.encode("utf-8", "surrogatepass")
        out = ""
        j = n = 0
        while j < len(bs) and n < 30:
            b = bs[j]
            k = 1 if b < 0x80 else 2 if b < 0xE0 else 3 if b < 0xF0 else 4
            o = b if k == 1 else b & (0x7F >> k)
            for m in range(1, k):
                o = o << 6 | bs[j + m] & 63
            out += "%c" % b if 32 <= b <= 126 and b != 39 and b != 92 else "\\u%04x" % o
            j += k
            n += 1
        return "'" + out + ("...'" if len(v) > 30 else "'")
    r = repr(v)
    return r if len(r) <= 40 else r[:30] + "..."


def _plain(s, most):
    """Printable ASCII and at most `most` characters: safe to echo as it is."""
    if len(s) > most:
        return False
    for b in s.encode("utf-8", "surrogatepass"):     # (bytes: see _shown)
        if not 32 <= b <= 126:
            return False
    return True


def _num(v, where, lo, hi, integer=False):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and not isinstance(v, int)):
        raise ProgramError("%s: expected %s, got %s" % (where, "a whole number" if integer else "a number",
                                                        _shown(v)))
    if v != v:
        raise ProgramError("%s: NaN is not a number; give a number from %g to %g" % (where, lo, hi))
    if v < lo or v > hi:
        raise ProgramError("%s: %s is outside %g-%g" % (where, _shown(v), lo, hi))
    return v


def _ms(v, where, lo_ms, hi_ms):
    if isinstance(v, (int, float)) and not isinstance(v, bool) and v <= 0:
        raise ProgramError("%s: durations must be positive, got %s" % (where, _shown(v)))
    return int(_num(v, where, lo_ms / 1000, hi_ms / 1000) * 1000 + 0.5)


def _phase(d, where):
    if not isinstance(d, dict):
        raise ProgramError("%s: expected an object such as {\"kind\": \"hold\", ...}" % where)
    kind = d.get("kind")
    if kind not in KIND_NAMES:
        raise ProgramError("%s.kind: unknown cue %s; use one of %s" % (where, _shown(kind), ", ".join(KIND_NAMES)))
    k = KIND_NAMES.index(kind)
    squeeze = k >= K_MVC
    allowed = _SQUEEZE_FIELDS if squeeze else _WINDOW_FIELDS
    for key in d:
        if key not in allowed:
            raise ProgramError("%s.%s: not a field of a %s phase (fields: %s)"
                               % (where, _field(key), kind, ", ".join(allowed)))
    reps = _num(d.get("reps", 1), where + ".reps", 1, MAX_REPS, True)
    if not squeeze:
        if "seconds" not in d:
            raise ProgramError("%s.seconds: missing (how long to %s)" % (where, kind))
        return (k, reps, 0, _ms(d["seconds"], where + ".seconds", 1000, MAX_REST_MS), 0, RULE_FIXED)
    for key in ("squeeze_s", "rest_s"):
        if key not in d:
            raise ProgramError("%s.%s: missing" % (where, key))
    on = _ms(d["squeeze_s"], where + ".squeeze_s", 500, MAX_SQUEEZE_MS)
    off = _ms(d["rest_s"], where + ".rest_s", 500, MAX_REST_MS)
    if off < on:
        raise ProgramError("%s.rest_s: %g s is shorter than squeeze_s %g s; she must rest at least as "
                           "long as she squeezes" % (where, off / 1000, on / 1000))
    if k == K_MVC:
        if d.get("target_pct", 100) != 100:
            raise ProgramError("%s.target_pct: an mvc phase is a maximal squeeze; leave the target out" % where)
        tgt = 100
    else:
        tgt = _num(d.get("target_pct", 0), where + ".target_pct", 0, 100)
        if tgt > 100:
            raise ProgramError("%s.target_pct: above 100 %% MVC" % where)
    rule = d.get("rest_rule", "equal")
    if rule not in RULE_NAMES:
        raise ProgramError("%s.rest_rule: unknown rule %s; use one of %s" % (where, _shown(rule),
                                                                            ", ".join(RULE_NAMES)))
    return (k, reps, on, off, int(tgt + 0.5), RULE_NAMES.index(rule))


def _field(key):
    return key if isinstance(key, str) and _plain(key, 40) else _shown(key)


def name_ok(name):
    """The one rule for a program name, the same on every Python: 1-24 of
    a-z, 0-9, - and _ (ASCII only: str.isalpha and islower answer
    differently on CPython and MicroPython for letters such as 'e' with an
    accent, and a name is a file name on the trainer)."""
    if not isinstance(name, str) or not 1 <= len(name) <= NAME_MAX:
        return False
    for b in name.encode("utf-8", "surrogatepass"):  # (bytes: see _shown)
        if not (97 <= b <= 122 or 48 <= b <= 57 or b == 45 or b == 95):
            return False
    return True


def check_name(name):
    if not name_ok(name):
        raise ProgramError("name: %s cannot be a program name; use 1-%d of a-z, 0-9, - and _ "
                           "(no capitals, spaces or accents)" % (_shown(name), NAME_MAX))


def _check_title(title):
    if not isinstance(title, str) or len(title) > TITLE_MAX:
        raise ProgramError("title: expected text of at most %d characters" % TITLE_MAX)
    # its UTF-8 bytes (see _shown): character i starts at each byte that is
    # no continuation; a C0 control or DEL is one byte, a C1 control 0xC2
    # 0x80-0x9F, a lone surrogate 0xED 0xA0-0xBF and one more
    bs = title.encode("utf-8", "surrogatepass")
    i = 0
    for j in range(len(bs)):
        b = bs[j]
        if b & 0xC0 == 0x80:
            continue
        i += 1
        if b < 32 or b == 127 or b == 0xC2 and bs[j + 1] < 0xA0:
            raise ProgramError("title: character %d is a control character (such as a line break); "
                               "write the title as one line of text" % i)
        if b == 0xED and bs[j + 1] >= 0xA0:
            raise ProgramError("title: character %d is a lone UTF-16 surrogate (\\u%04x), not text; "
                               "write the title as plain text" % (i, 0xD000 | (bs[j + 1] & 63) << 6 | bs[j + 2] & 63))


def parse(doc, name=None):
    """A program object (dict, as from JSON) -> (name, title, phases).
    Raises ProgramError naming the first bad field."""
    if not isinstance(doc, dict):
        raise ProgramError("a program is a JSON object with \"name\" and \"phases\"")
    for key in doc:
        if key not in ("name", "title", "phases"):
            raise ProgramError("%s: not a program field (fields: name, title, phases)" % _field(key))
    name = doc.get("name", name)
    check_name(name)
    title = doc.get("title", name)
    _check_title(title)
    phases = doc.get("phases")
    if not isinstance(phases, list) or not phases:
        raise ProgramError("phases: expected a non-empty list of phases")
    if len(phases) > MAX_PHASES:
        raise ProgramError("phases: %d phases; at most %d" % (len(phases), MAX_PHASES))
    out = [_phase(p, "phases[%d]" % i) for i, p in enumerate(phases)]
    if duration_ms(out) > MAX_TOTAL_MS:
        raise ProgramError("phases: the program lasts %d min; at most %d" % (duration_ms(out) // 60000,
                                                                            MAX_TOTAL_MS // 60000))
    return name, title, out


def to_doc(name, title, phases):
    """The JSON form of parsed phases (parse(to_doc(...)) gives them back)."""
    out = []
    for k, reps, on, off, tgt, rule in phases:
        if k < K_MVC:
            out.append({"kind": KIND_NAMES[k], "reps": reps, "seconds": off / 1000})
        else:
            d = {"kind": KIND_NAMES[k], "reps": reps, "squeeze_s": on / 1000, "rest_s": off / 1000,
                 "rest_rule": RULE_NAMES[rule]}
            if k != K_MVC:
                d["target_pct"] = tgt
            out.append(d)
    return {"name": name, "title": title, "phases": out}


def builtin(name):
    """Parsed built-in program, or None."""
    if name not in BUILTIN_NAMES:
        return None
    return parse(builtin_docs()[name], name)


def duration_ms(phases):
    """Nominal length (rests may stretch under the equal/relaxed rules)."""
    return sum(p[1] * (p[2] + p[3]) for p in phases)


def squeezes(phases):
    return sum(p[1] for p in phases if p[0] >= K_MVC)


def has_squeeze_target(phases):
    return any(p[0] >= K_FAST and p[4] for p in phases)
