# What the detector reports: event flags, and the fields of its records
# (preallocated array('i') of N_REC: det.cur, det.done, det.abd). Shared by
# the detector's parts, the coach, the store and the host.
from knip.fixed import const

# Event flags returned by update()
EV_START = const(1)        # cur: a squeeze started (tentative kind)
EV_PEAK = const(2)         # cur: its peak is confirmed
EV_END = const(4)          # done: a squeeze or cough ended (kind is final)
EV_RELAXED = const(8)      # done: back at the resting level after it
EV_NOT_RELAXED = const(16)  # done: still above the resting level
EV_ABD_START = const(32)   # abd: abdominal rise with a quiet pelvic floor
EV_ABD_END = const(64)     # abd: it ended: bearing down without a lift

KIND_SQUEEZE = const(0)
KIND_COUGH = const(1)
KIND_BEARING_DOWN = const(2)
KIND_ARTEFACT = const(3)   # a spike, saturation or a gap: never a squeeze
KIND_NAMES = ("squeeze", "cough", "bearing_down", "artefact")

TECH_UNKNOWN = const(0)   # one channel: we do not guess
TECH_LIFT = const(1)
TECH_CO = const(2)        # abdominal co-contraction
TECH_PUSH = const(3)
TECH_NAMES = (None, "lift", "co_contraction", "push")

# Record fields (times in ms, levels in signal counts)
R_SEQ = const(0)
R_KIND = const(1)
R_ONSET = const(2)
R_DETECTED = const(3)      # when EV_START was emitted (or the cough decided)
R_PEAK_T = const(4)
R_PEAK = const(5)
R_BASE = const(6)          # level just before the onset
R_REST = const(7)          # resting level (tone) at the onset
R_OFFSET = const(8)
R_ENDED = const(9)         # when EV_END was emitted
R_MEAN_HOLD = const(10)
R_HOLD_MS = const(11)      # time at or above 50 % of the rise
R_RISE_MS = const(12)      # onset to 90 % of the rise
R_RELEASE_MS = const(13)   # last 90 % to offset
R_AREA_HI = const(14)      # area above R_BASE, count*ms = HI*1024 + LO
R_AREA_LO = const(15)
R_RESIDUAL = const(16)     # level after the release minus R_REST
R_RELAXED = const(17)      # 1, 0, -1 unknown
R_REST_BEFORE = const(18)  # ms since the previous squeeze ended, -1 unknown
R_REST_OK = const(19)      # rest >= previous squeeze's duration: 1, 0, -1
R_ABD_RISE = const(20)     # -1 without a second channel
R_TECH = const(21)
R_NOISE = const(22)        # resting noise (mean abs deviation) at the onset
R_VERDICT_T = const(23)    # when the relaxation verdict was emitted
R_CHANNEL = const(24)      # 0 pelvic floor, 1 abdominal (straining only)
R_MARKS = const(25)        # M_* bits
N_REC = const(26)

# R_MARKS bits
M_QUICK = const(1)         # onset to offset within quick_ms: a quick squeeze
M_PLATEAU = const(2)       # started from the residual plateau of the one before
M_CUT = const(4)           # ended by a gap or an artefact, not by a release
M_SATURATED = const(8)     # artefact: the input sat at its rail
M_GAP = const(16)          # artefact: samples missing (NaN, lost, out of order)
M_FLAT = const(32)         # artefact: the very same value for a second (stuck)
M_SPIKE = const(64)        # artefact: a jump no muscle makes (an electrode pop)
M_MOTION = const(128)      # artefact: pressure swung below her rest with it (a movement)


def begin(r, seq, kind, onset, t):
    # A new record in r: all zero but its number, kind, onset and decision
    # time, and -1 where zero would be a claim (relaxed, the rest before it).
    for i in range(N_REC):
        r[i] = 0
    r[R_SEQ] = seq
    r[R_KIND] = kind
    r[R_ONSET] = onset
    r[R_DETECTED] = t
    r[R_RELAXED] = -1
    r[R_REST_BEFORE] = -1
    r[R_REST_OK] = -1
