# Training programs as data. A program is a tuple of blocks:
#   (kind, reps, squeeze_ms, relax_ms, target_pct)
# "rest" blocks have no squeeze: one cue to rest for relax_ms. Every squeeze
# is followed by a relax cue at least as long as it (she must rest as long
# as she squeezed: ../shared/REFERENCE.md section 1).
from knip.fixed import const

CUE_REST = const(0)
CUE_SQUEEZE = const(1)
CUE_RELAX = const(2)
CUE_DONE = const(3)
CUE_NAMES = ("rest", "squeeze", "relax", "done")

_SETTLE = ("rest", 1, 0, 5000, 0)
SPRINT_SET = ("fast", 10, 1000, 3000, 80)     # quick, hard, full relaxation between
HOLD_SET = ("hold", 5, 10000, 12000, 60)      # up to 10 s holds; rest covers the release too

PROGRAMS = {
    "sprint": (_SETTLE, SPRINT_SET, ("rest", 1, 0, 20000, 0), SPRINT_SET,
               ("rest", 1, 0, 20000, 0), SPRINT_SET),
    "marathon": (_SETTLE, HOLD_SET),
    "daily": (_SETTLE, SPRINT_SET, ("rest", 1, 0, 10000, 0), HOLD_SET),
}


def check(program):
    """Raise ValueError naming the first bad block."""
    if not program:
        raise ValueError("program has no blocks")
    for i, b in enumerate(program):
        if len(b) != 5:
            raise ValueError("block %d: expected (kind, reps, squeeze_ms, relax_ms, target_pct)" % i)
        kind, reps, on, off, tgt = b
        if reps < 1 or on < 0 or off < 0:
            raise ValueError("block %d: reps must be >= 1 and durations >= 0" % i)
        if on and off < on:
            raise ValueError("block %d: relax (%d ms) shorter than the squeeze (%d ms)" % (i, off, on))
        if not 0 <= tgt <= 100:
            raise ValueError("block %d: target %d %% MVC is outside 0-100" % (i, tgt))


def duration_ms(program):
    return sum(b[1] * (b[2] + b[3]) for b in program)


def steps(program):
    """Yield (cue, dur_ms, target_pct, block, rep, reps) in order."""
    for bi, (kind, reps, on, off, tgt) in enumerate(program):
        for r in range(reps):
            if on:
                yield CUE_SQUEEZE, on, tgt, bi, r + 1, reps
                yield CUE_RELAX, off, 0, bi, r + 1, reps
            else:
                yield CUE_REST, off, 0, bi, r + 1, reps
    yield CUE_DONE, 0, 0, len(program), 0, 0
