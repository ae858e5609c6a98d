# Portable calibration tests (CPython and MicroPython).
from knip.calibration import Calibration
from knip.chain import PressureChain
from knip import replay
from knip import record as D      # the detector's record layout
from signals import Lcg, pressure_track


def test_rest_level_and_noise():
    cal = Calibration()
    g = Lcg(9)
    for _ in range(3000):
        cal.add_rest(200 + int(20 * g.uniform()))   # uniform +-10: mean |dev| = 5
    assert abs(cal.rest_level() - 200) <= 1
    assert 3 <= cal.noise() <= 7


def test_mvc_from_two_strongest_of_three_or_given():
    cal = Calibration()
    assert cal.mvc() == 0
    for p in (700, 900, 500, 800):
        cal.add_peak(p)
    assert cal.mvc() == 850
    cal.set_mvc(1000)
    assert cal.mvc() == 1000


def test_calibrated_detector_finds_a_squeeze_at_once():
    cal = Calibration()
    ts, xs, _ = pressure_track(50, 10, [(1.0, 0.5, 2.0, 0.5, 30, 0)])
    for x in xs[:40]:                 # the first 0.8 s is rest
        cal.add_rest(x)
    cal.add_peak(40 * 20)
    ch = PressureChain(50)
    cal.apply(ch.det)
    recs = replay.run(ch, ts, xs)
    assert [D.KIND_NAMES[r[D.R_KIND]] for r in recs] == ["squeeze"]
    assert abs(recs[0][D.R_ONSET] - 1000) < 150
