# Portable tests of programs-as-data validation, the coach's judgement and
# the session scores (CPython and MicroPython run the same bodies: the
# device validates pushed programs and scores sessions itself).
from knip import programs as PG
from knip import coach as C
from knip.scores import session_scores, oxford
from chars import text      # (not chr(): see chars.py)
from knip.detector import ST_REST
from knip.record import (EV_START, EV_END, EV_RELAXED, N_REC, R_SEQ, R_KIND, R_ONSET, R_PEAK, R_PEAK_T,
                         R_BASE, R_OFFSET, R_HOLD_MS, R_RELEASE_MS, R_RESIDUAL, R_RELAXED, R_TECH,
                         R_ABD_RISE, TECH_LIFT)


def _error(doc):
    try:
        PG.parse(doc)
    except PG.ProgramError as e:
        return str(e)
    return None


def test_builtins_are_valid_and_round_trip():
    for name in PG.BUILTIN_NAMES:
        n, title, phases = PG.builtin(name)
        assert n == name and phases
        assert PG.parse(PG.to_doc(n, title, phases))[2] == phases
    assert PG.squeezes(PG.builtin("sprint")[2]) == 30
    assert PG.squeezes(PG.builtin("assessment")[2]) == 11
    # the names the device lists are those of the definitions it builds on demand
    assert sorted(PG.BUILTIN_NAMES) == sorted(PG.builtin_docs()) and PG.builtin("nonesuch") is None


def test_bad_programs_name_the_field():
    ok = {"kind": "hold", "reps": 2, "squeeze_s": 3, "rest_s": 4, "target_pct": 40}
    cases = [
        ({"name": "x", "phases": [dict(ok, squeeze_s=-3)]}, "phases[0].squeeze_s"),
        ({"name": "x", "phases": [ok, {"kind": "jump"}]}, "phases[1].kind: unknown cue"),
        ({"name": "x", "phases": [dict(ok, target_pct=120)]}, "phases[0].target_pct"),
        ({"name": "x", "phases": [dict(ok, rest_s=2)]}, "phases[0].rest_s"),
        ({"name": "x", "phases": [dict(ok, reps=0)]}, "phases[0].reps"),
        ({"name": "x", "phases": [dict(ok, rest_rule="never")]}, "phases[0].rest_rule"),
        ({"name": "x", "phases": [dict(ok, colour="red")]}, "phases[0].colour"),
        ({"name": "x", "phases": [{"kind": "rest"}]}, "phases[0].seconds"),
        ({"name": "Bad Name", "phases": [ok]}, "name:"),
        ({"name": "x", "phases": []}, "phases:"),
        ({"name": "x", "phases": [dict(ok, reps=True)]}, "phases[0].reps"),
    ]
    for doc, words in cases:
        err = _error(doc)
        assert err is not None and words in err, (words, err)
    assert _error({"name": "x", "phases": [ok]}) is None


def _rec(seq, onset, peak_t, peak, base, offset, hold, release, relaxed=1, tech=TECH_LIFT):
    r = [0] * N_REC
    r[R_SEQ], r[R_KIND], r[R_ONSET], r[R_PEAK_T], r[R_PEAK], r[R_BASE] = seq, 0, onset, peak_t, peak, base
    r[R_OFFSET], r[R_HOLD_MS], r[R_RELEASE_MS], r[R_RELAXED] = offset, hold, release, relaxed
    r[R_RESIDUAL], r[R_TECH], r[R_ABD_RISE] = 2, tech, 10
    return r


def test_coach_judges_a_hold_and_a_rest():
    c = C.Coach(10, mvc=800, floor=20)
    c.window_start(0, 0, PG.K_REST, 1, 1, 10000, 100)
    for t in range(0, 10000, 10):
        c.sample(t, 100 + (t // 10) % 3)
    c.window_end(10000)
    rest = c.ready.pop(0)
    assert rest[C.V_JUDGED] & C.C_STEADY and rest[C.V_PASSED] & C.C_STEADY and rest[C.V_MEAN] == 101
    # a 10 s hold at 60 % target: she squeezes 0.4 s after the cue, holds, relaxes
    c.squeeze(10000, 1, PG.K_HOLD, 1, 5, 10000, 10000, 60, PG.RULE_EQUAL)
    r = _rec(1, 10400, 11000, 700, 100, 20900, 10100, 300)
    c.event(EV_START, 10460, r, 1)
    c.relax(20000, 700)
    c.event(EV_END, 21200, r, 3)
    c.event(EV_RELAXED, 22200, r, ST_REST)
    assert c.rest_more(30000) > 0            # she squeezed 10.2 s: rest that long
    assert c.rest_more(30900) == 0
    c.finish(30900)
    v = c.ready.pop(0)
    names = [C.CHECK_NAMES[i] for i in range(8) if v[C.V_JUDGED] & (1 << i)]
    assert names == ["on_cue", "target", "held", "relaxed", "rested", "technique"]
    assert v[C.V_PASSED] == v[C.V_JUDGED]
    assert v[C.V_REACTION] == 400 and v[C.V_AMP] == 600 and v[C.V_SQUEEZE] == 10200
    sc = session_scores([rest, v], 20, "pressure", "cmH2O", 800)
    assert sc["calibrated"] and sc["power"] == 30.0 and sc["oxford"] == 3 and sc["repetitions"] == 1
    assert sc["resting_tone"] == 5.05 and sc["held"] == 1 and sc["judged"]["held"] == 1


def test_coach_judges_her_reaction_from_a_re_timed_start():
    # a squeeze that began at a posture shift 2 s before her cue is re-timed
    # by the detector to her real rise, 0.3 s after the cue (a second START
    # of the same number, knip.kinds shifted): she was on cue
    for before in (True, False):
        c = C.Coach(10, mvc=800, floor=20)
        if before:
            c.squeeze(10000, 1, PG.K_HOLD, 1, 5, 3000, 3000, 60, PG.RULE_EQUAL)
        r = _rec(1, 8000, 8500, 180, 100, 13600, 3000, 300)
        c.event(EV_START, 8100, r, 2)            # the step
        if not before:
            c.squeeze(10000, 1, PG.K_HOLD, 1, 5, 3000, 3000, 60, PG.RULE_EQUAL)
        r = _rec(1, 10300, 10800, 700, 180, 13600, 3000, 300)
        c.event(EV_START, 10500, r, 2)           # re-timed
        c.relax(13000, 700)
        c.event(EV_END, 13800, r, 3)
        c.event(EV_RELAXED, 14800, r, ST_REST)
        c.finish(20000)
        v = c.ready.pop(0)
        assert v[C.V_SEQ] == 1 and v[C.V_REACTION] == 300, (before, v[C.V_SEQ], v[C.V_REACTION])
        assert v[C.V_JUDGED] & C.C_ON_CUE and v[C.V_PASSED] & C.C_ON_CUE, before


def test_coach_says_when_she_lets_go_early_or_starts_before_the_cue():
    c = C.Coach(10, mvc=800, floor=20)
    c.squeeze(0, 0, PG.K_HOLD, 1, 2, 10000, 10000, 50, PG.RULE_EQUAL)
    r = _rec(1, 400, 900, 700, 100, 4500, 3800, 300)
    c.event(EV_START, 460, r, 1)
    c.event(EV_END, 4800, r, 3)
    c.event(EV_RELAXED, 5800, r, ST_REST)
    c.relax(10000, 100)
    r2 = _rec(2, 16000, 16500, 700, 100, 30000, 10000, 300)
    c.event(EV_START, 16060, r2, 1)          # 4 s before the next cue
    c.finish(20000)
    v = c.ready.pop(0)
    assert v[C.V_JUDGED] & C.C_HELD and not v[C.V_PASSED] & C.C_HELD
    c.squeeze(20000, 0, PG.K_HOLD, 2, 2, 10000, 10000, 50, PG.RULE_EQUAL)
    assert c.v[C.V_REACTION] == -4000 and not c.v[C.V_PASSED] & C.C_ON_CUE


def test_an_answer_to_a_squeeze_cue_is_never_thrown_away_as_a_cough():
    # a quick squeeze cue, and a brisk burst that the detector calls a cough
    # (the abdomen rose with it): it started on the cue, so it is her rep
    from knip.record import KIND_COUGH
    c = C.Coach(10, mvc=800, floor=20)
    c.squeeze(0, 0, PG.K_FAST, 1, 10, 1000, 2000, 50, PG.RULE_FIXED)
    r = _rec(1, 300, 450, 700, 100, 700, 150, 200)
    r[R_KIND] = KIND_COUGH
    c.event(EV_START, 360, r, 1)
    c.event(EV_END, 900, r, ST_REST)
    c.relax(1000, 100)
    c.finish(3000)
    v = c.ready.pop(0)
    assert v[C.V_SEQ] == 1 and v[C.V_AMP] == 600 and v[C.V_FLAGS] & C.F_COUGH
    assert v[C.V_JUDGED] & C.C_ON_CUE and v[C.V_PASSED] & C.C_ON_CUE


def test_oxford_bands():
    assert [oxford(x) for x in (5.0, 7.5, 20.0, 30.0, 50.0, 70.0)] == [0, 1, 2, 3, 4, 5]


# ---- the same verdicts on every Python ---------------------------------------
# The host checks a program with this parser before it pushes it, and the
# trainer (MicroPython) parses it again: a name or title must get the same
# answer on both. These cases once differed: str.isalpha, islower and isdigit
# know non-ASCII letters and digits on CPython but not on MicroPython.

def _named(name, title=None):
    doc = {"name": name, "phases": [{"kind": "rest", "seconds": 3}]}
    if title is not None:
        doc["title"] = title
    return doc


def test_names_are_ascii_on_every_python():
    for name in ("gentle", "my-program_2", "a", "x" * 24, "0-9_"):
        assert _error(_named(name)) is None, name
    for name in ("caf\u00e9", "\u00e9t\u00e9", "Gentle", "two words", "x" * 25, "", "a.b", "a/b",
                 "\u0663", "x\u00b2", "\u0131", "\u212a", "\uff41", "\u00df", "\ud800", "a\n", 3,
                 None, ["a"], {"a": 1}, True):
        err = _error(_named(name))
        assert err is not None and err.startswith("name: "), (name, err)
        assert PG.name_ok(name) is False


def test_titles_are_one_line_of_text():
    assert _error(_named("x", "Caf\u00e9 \u2615, gentle 3 x 10 s")) is None
    assert _error(_named("x", "\U0001f600" * 80)) is None
    for title, words in (("a\nb", "control character"), ("tab\there", "control character"),
                         ("\x7f", "control character"), ("ok \ud800", "surrogate"),
                         ("\udfff", "surrogate"), ("x" * 81, "at most 80"), (5, "expected text")):
        err = _error(_named("x", title))
        assert err is not None and err.startswith("title: ") and words in err, (title, err)


def test_nan_and_huge_numbers_are_refused_by_name():
    nan = float("nan")
    inf = float("inf")
    hold = {"kind": "hold", "reps": 2, "squeeze_s": 3, "rest_s": 4, "target_pct": 40}
    cases = [
        ({"kind": "rest", "seconds": nan}, "phases[0].seconds: NaN"),
        (dict(hold, squeeze_s=nan), "phases[0].squeeze_s: NaN"),
        (dict(hold, rest_s=nan), "phases[0].rest_s: NaN"),
        (dict(hold, target_pct=nan), "phases[0].target_pct: NaN"),
        (dict(hold, squeeze_s=inf), "phases[0].squeeze_s: inf is outside"),
        (dict(hold, target_pct=-inf), "phases[0].target_pct"),
        (dict(hold, reps=10 ** 30), "phases[0].reps"),
        (dict(hold, squeeze_s=1e300), "phases[0].squeeze_s"),
        (dict(hold, kind=["hold"]), "phases[0].kind: unknown cue a list"),
        (dict(hold, rest_rule={"a": 1}), "phases[0].rest_rule: unknown rule an object"),
    ]
    for phase, words in cases:
        err = _error({"name": "x", "phases": [phase]})
        assert err is not None and words in err, (words, err)
        assert len(err) < 200, err


def test_messages_are_short_single_lines():
    for doc in ({"name": "x", "phases": [{"kind": "rest", "seconds": 3}], "n\u00e4me\n" * 20: 1},
                {"name": "x" * 5000, "phases": []},
                {"name": "x", "phases": [{"kind": "rest", "seconds": 3, "k\ud800\n": 1}]},
                {"name": "x", "phases": [{"kind": "y" * 5000}]}):
        err = _error(doc)
        assert err is not None and "\n" not in err and len(err) < 200, err
        for c in err:
            assert " " <= c <= "~", err          # printable ASCII: safe on any terminal


def test_names_and_titles_leave_nothing_behind():
    # The trainer checks programs pushed to it: a name or title is read by
    # its UTF-8 bytes, never a character at a time (on MicroPython a
    # character taken out of a str is interned for good, a qstr per distinct
    # character: checking these 4,000 distinct characters kept 58 KB).
    # The verdicts are the ones a character at a time gives.
    import gc
    docs = []
    for k in range(100):
        docs.append(_named("a" + text(0x4E00 + 40 * k, 20)))                     # bad names
        docs.append(_named("x", "t" + text(0x3400 + 20 * k, 20)))                # good titles
    docs.append(_named("x", "ok " + text(0x7F, 1)))
    docs.append(_named("x", "ok " + text(0x85, 1)))
    gc.collect()
    before = gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0
    for d in docs:
        _error(d)
    gc.collect()
    grew = (gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0) - before
    assert grew < 2048, grew
    errs = [_error(d) for d in docs]
    assert all(e.startswith("name: 'a\\u") and "' cannot be a program name" in e for e in errs[0:200:2]), errs[:4]
    assert errs[0].startswith("name: 'a\\u4e00\\u4e01\\u4e02") and "\\u4e13' cannot be" in errs[0], errs[0]
    assert errs[1:200:2] == [None] * 100, errs[1:6]
    assert "character 4 is a control character" in errs[200] and "character 4 is a control" in errs[201], errs[200:]
