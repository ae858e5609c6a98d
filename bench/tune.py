#!/usr/bin/env python
"""The detector's tuning loop: Knip on the project's own synthetic user
(simboard.synth), TRAIN seeds only, plus the failure cases seen on the real
recordings. Nothing here touches the second generator (bench/physio_gen.py)
or the TEST seeds: those are for `make bench` to report on.

    .venv/bin/python bench/tune.py [--sets NAME,...] [--sessions sprint,...] [-v]
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as R  # noqa: E402
import metrics as M  # noqa: E402


def _one(key):
    k, rec = R.gen_record(key)
    R.RECORDS[k] = rec
    _, sc, extra = R.knip_record(k)
    return k, sc, extra


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sets", default=",".join(s["name"] for s in R.SETS))
    ap.add_argument("--sessions", default=",".join(R.SESSIONS))
    ap.add_argument("-v", action="store_true", help="per-record lines")
    args = ap.parse_args(argv)
    sets = args.sets.split(",")
    sessions = args.sessions.split(",")
    keys = [(s, "train", seed, sess) for s in sets for seed in R.TRAIN_SEEDS for sess in sessions]
    with mp.get_context("fork").Pool(2) as pool:
        res = pool.map(_one, keys)
    cols = ("f1", "fp", "fn", "onset_err_median_ms", "offset_err_median_ms", "offset_bias_median_ms",
            "latency_median_ms", "relax_balanced_accuracy", "cough_rejection", "push_detection",
            "false_alarms_per_min")
    print("%-22s %-8s" % ("set", "session") + "".join("%9s" % c[:9] for c in cols) + "  kinds")
    for s in sets:
        for sess in sessions + ["ALL"]:
            rows = [(k, sc, ex) for k, sc, ex in res if k[0] == s and (sess == "ALL" or k[3] == sess)]
            if not rows:
                continue
            sm = M.summarize(M.pool([sc for _, sc, _ in rows]))
            kinds: dict[str, int] = {}
            for _, _, ex in rows:
                for kk, n in ex["events"].items():
                    kinds[kk] = kinds.get(kk, 0) + n
            cells = "".join("%9s" % ("-" if sm[c] is None else ("%.3f" % sm[c] if isinstance(sm[c], float) else sm[c]))
                            for c in cols)
            art = sum(ex.get("artefacts", 0) for _, _, ex in rows)
            art_sq = sum(ex.get("artefact_squeezes", 0) for _, _, ex in rows)
            print("%-22s %-8s%s  %s%s" % (s, sess, cells, kinds,
                                          "  motion->squeeze %d/%d" % (art_sq, art) if art else ""))
            if args.v and sess != "ALL":
                for k, sc, ex in rows:
                    one = M.summarize(M.pool([sc]))
                    print("    seed %d: f1 %s fp %d fn %d" % (k[2], one["f1"], one["fp"], one["fn"]))


if __name__ == "__main__":
    main()
