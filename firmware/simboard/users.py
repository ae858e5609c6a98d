# The virtual trainer's simulated women: trait overrides for
# simboard.synth.make_user. Plain data, so the host's tests can read it too.
# What a physiotherapist would see in each: docs/COACHING.md, "Simulated users".
USERS = {
    "good": {"relaxes": True, "p_push": 0.0, "p_co": 0.0, "effort": 0.9,
             "pain_before": 1, "pain_after": 1},
    "typical": {"pain_before": 2, "pain_after": 2},
    "weak": {"mvc": 18.0, "effort": 0.7, "relaxes": True, "p_push": 0.0, "p_co": 0.0},
    "no_relax": {"relaxes": False, "p_push": 0.0, "p_co": 0.0},
    "pusher": {"p_push": 0.7, "p_co": 0.0, "relaxes": True},
    "short_rest": {"early_s": 4.0, "relaxes": True, "p_push": 0.0, "p_co": 0.0, "effort": 0.9},
    "stops_early": {"max_hold_s": 4.0, "relaxes": True, "p_push": 0.0, "p_co": 0.0, "effort": 0.9,
                    "pain_before": 3, "pain_after": 6},
}
