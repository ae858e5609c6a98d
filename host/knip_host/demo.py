"""`make demo`: a synthetic woman trains a sprint set and a marathon set; the
device detector (the portable core) analyses it exactly as `knip analyze`
would, and the result is checked against the ground truth she was given.
The virtual trainer over a serial link comes with the end-to-end work."""
from __future__ import annotations

import csv
import sys
from pathlib import Path

from knip import synth

from . import cli

OUT = Path("out")


def write_csv(path: Path, rate: float, pf: list[float], abd: list[float]) -> None:
    with path.open("w", newline="") as f:
        f.write("# unit: cmH2O\n")
        w = csv.writer(f)
        w.writerow(["time_s", "pelvic_floor", "abdominal"])
        for i, (x, a) in enumerate(zip(pf, abd)):
            w.writerow([f"{i / rate:.3f}", f"{x:.2f}", f"{a:.2f}"])


def main() -> int:
    OUT.mkdir(exist_ok=True)
    seed = 7
    user = synth.make_user(seed, relaxes=True)
    plan = synth.sprint_plan(seed, user, sets=1, reps=10) + synth.marathon_plan(seed, user, reps=5)
    print(f"Synthetic user (seed {seed}): MVC {user['mvc']:.1f} cmH2O, "
          f"{'relaxes fully' if user['relaxes'] else 'does not relax fully'}; "
          "plan: 10 quick squeezes, then 5 holds of 10 s")
    values, abd, truth, info = synth.render(plan, "pressure", 50, seed, user=user, abd=True)
    path = OUT / "demo_session.csv"
    write_csv(path, info["rate_hz"], values, abd)
    print(f"Wrote {path} ({info['duration_s']:.0f} s at {info['rate_hz']:g} Hz, two channels)\n")

    # The same path as `knip analyze FILE --abdominal abdominal --plot PNG`.
    result = cli.analyze_file(str(path), abdominal="abdominal", plot=str(OUT / "demo.png"))

    # Compare with what she was told to do and did (ground truth).
    true_sq = [t for t in truth if t["kind"] == "squeeze"]
    found = 0
    for t in true_sq:
        if any(e["kind"] == "squeeze" and abs(e["onset_s"] - t["onset_s"]) <= 0.25 for e in result.events):
            found += 1
    print(f"\nGround truth: {len(true_sq)} squeezes (+{len(truth) - len(true_sq)} other events); "
          f"the device detector matched {found} of them within 250 ms.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
