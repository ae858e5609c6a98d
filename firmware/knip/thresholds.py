# The detector's settings, and margin(): how its thresholds are made of
# them (noise multiples, % of an amplitude, a floor). Set-up and per-event
# code, but margin() also runs per sample at rest: small ints only.


def margin(noise, k10, amp, pct, floor):
    # The largest of: k10/10 noise units, pct % of an amplitude, a floor.
    m = noise * k10 // 10
    a = amp * pct // 100
    if a > m:
        m = a
    return m if m > floor else floor


class DetectorConfig:
    """Thresholds in ms, % of the squeeze or reference amplitude, and tenths
    of the resting noise, so one detector works from ~1 Hz to 2 kHz."""

    def __init__(self, signal="pressure"):
        emg = signal == "emg"
        self.confirm_ms = 30 if emg else 20      # above threshold this long
        self.on_k10 = 45 if emg else 40          # onset: x noise / 10 ...
        self.on_pct = 5                          # ... or % of reference amp
        self.onset_k10 = 15                      # back-track to this band
        self.chord_ms = 0 if emg else 400        # ... then along the rise's chord to the
                                                 # floor, at most this far (0: off)
        self.onset_fit = emg                     # onset by a flat+ramp fit instead
        self.fit_pre_ms = 400                    # ... over this much rest before the crossing
        self.steep_pct = 0 if emg else 10        # ... and this % of the steepest rise
        self.flat_k10 = 10 if emg else 4         # ... and faster than this x noise
                                                 # / 10 per 100 ms
        self.refit_pre_ms = 1000 if emg else 0   # EMG: refit a slow rise's onset at its end,
                                                 # fitted from this long before the crossing (0: off)
        self.refit_keep_ms = 1200                # ... to this long after it (coarse history)
        self.refit_min_ms = 250                  # ... when half her hold came this long after it
        self.refit_back_pct = 200                # ... moving it at most this % of that earlier
        self.release_pct = 35 if emg else 50     # % of the hold level: releasing
        self.drop_pct = 40                       # ... or fell this % of the rise below
        self.hold_ms = 1000 if emg else 600      # ... her recent hold level (a release
                                                 # to a residual plateau); it falls
        self.hold_up_ms = 300 if emg else 100    # over hold_ms, rises over this
        self.fall_ms = 0 if emg else 1000        # pressure: or fell that much within this
        self.drop_ms = 150 if emg else 0         # the fall is judged on the signal
                                                 # smoothed over this (noisy envelope)
        self.peak_drop_pct = 10                  # peak confirmed after this drop
        self.reclimb_pct = 30                    # rising again this much: new squeeze
        self.settle_ms = 150 if emg else 300     # flat this long: release over
        self.dip_ms = 500 if emg else 600        # after a hold of dip_hold_ms, a dip
        self.dip_hold_ms = 2000                  # back to the hold within this is no release
        self.settle_k10 = 20                     # "flat": within x noise / 10
        self.settle_pct = 4                      # ... or % of amplitude
        self.relax_ms = 1000                     # residual averaged over this
        self.relax_k10 = 20 if emg else 30       # relaxed: residual below
        self.relax_pct = 10                      # x noise / 10 or % of amp
        self.relax_power = emg                   # EMG: residual and rise above the
                                                 # background in power (they add so)
        self.cough_rise_ms = 350                 # a cough peaks this fast
        self.cough_dur_ms = 800                  # and is over this soon; and it needs
        self.cough_rate = 0                      # evidence: the abdomen, or a rise
                                                 # faster than this (counts/s, 0: off)
        self.quick_ms = 1500                     # onset to offset: a quick squeeze
        self.min_squeeze_ms = 150                # shorter: an artefact, not a squeeze
        self.plateau_pct = 30 if emg else 20     # a new squeeze from a plateau rises this %
        self.plateau_res = 0 if emg else 3       # of the last squeeze's rise, or (pressure)
                                                 # of this x its residual if less (0: off)
        self.plateau_hold_ms = 4000              # pressure: the tone holds on a residual
                                                 # plateau until the level has stayed
                                                 # steady this long at rest (then it follows)
        self.end_k10 = 10                        # offset: within this of the settled level
        self.end_pct = 10 if emg else 2          # ... or this % of the fall to it
        self.surge_ms = 0 if emg else 1000       # pressure: a level that stood this long (0: off),
        self.surge_pct = 300                     # then a climb of this % of its rise from it,
        self.surge_hold_ms = 500                 # held this long: her rest moved, the climb is
        self.surge_quick_ms = 200                # her squeeze (re-timed); this long if it
                                                 # climbed slower than cough_rate; only for a
        self.surge_ref_pct = 20                  # level this % of her best squeeze at most
        self.max_squeeze_ms = 90000              # high this long: a level shift (a probe
                                                 # that moved), not a squeeze; the longest
                                                 # clinical hold is 60 s (Glazer)
        self.push_pct = 150 if emg else 95       # abd rise >= this % of PF: push (EMG:
                                                 # two muscles' amplitudes, docs/DETECTOR.md)
        self.cough_abd_pct = 95                  # fast and brief, abd >= this % of PF: cough
        self.co_pct = 50                         # PF < 2x abd: co-contraction
        self.abd_min_ms = 500                    # abd-only strain this long
        self.abd_pct = 50 if emg else 20         # ... and this % of her best squeeze
        self.warmup_ms = 1500                    # learn rest before detecting
        self.breath_ms = 0 if emg else 10000     # pressure: until she has been at rest this
        self.breath_pct = 200                    # long (a breath at 6/min), a rise must also
                                                 # pass this % of min_on (4 cmH2O, a deep
                                                 # breath) over the lowest point seen
        self.relearn_x = 2                       # rest learnt again (after a gap) while her level
                                                 # moved: noise at most this x what it was (0: off)
        self.level_ms = 3000                     # pre-squeeze level tracker
        self.rest_up_ms = 4000 if not emg else 20000   # resting tone: EMG rises
        self.rest_down_ms = 4000 if not emg else 1500  # slowly, falls fast (a
                                                 # relaxed floor is its lowest level);
                                                 # pressure follows the breathing
                                                 # cycle's mean, not its troughs
        self.band_k10 = 0 if emg else 20         # relaxed within this x the rest's
                                                 # slow swing (breathing) / 10 too
        self.dip_pct = 0 if emg else 20          # pressure below her rest by this % of
                                                 # the rise (and 3x its slow swing) just
                                                 # before or after: a movement (0: off)
        self.recover_ms = 8000                   # ... but not in the recovery from an
                                                 # event (back within that margin of her
                                                 # rest, or this long after it)
        self.ring_pct = 10                       # ... a cough's filter ring explains a dip
                                                 # of this % of its rise (it rings ~3.4 %)
        self.noise_ms = 4000
        self.abd_comp = not emg                  # two pressure channels: the abdomen's share
                                                 # of the residual (breathing) is taken off
        self.climb_pct = 50                      # at rest, above this % of the onset margin:
        self.climb_ms = 4000                     # a rise building up; the onset threshold
                                                 # from before it holds for up to this long
                                                 # (a slow squeeze would lift its own; 0: off)
