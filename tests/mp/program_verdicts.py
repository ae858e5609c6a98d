# Prints the program parser's verdict on names and titles holding each code
# point in a few ranges, one line each, so that the host (CPython) and the
# trainer (MicroPython) can be shown to give the same answers
# (tests/test_micropython.py runs it on both and compares).
import sys

from knip import programs as PG
from chars import char      # (not chr(): see chars.py)

RANGES = ((0, 0x3100), (0xD7F0, 0xE010), (0xFB00, 0x10000), (0x1F600, 0x1F610), (0x10FFF0, 0x110000))


def verdict(doc):
    try:
        PG.parse(doc)
    except PG.ProgramError as e:
        return str(e)
    return "ok"


def main():
    step = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    rest = [{"kind": "rest", "seconds": 3}]
    for lo, hi in RANGES:
        for cp in range(lo, hi, step):
            c = char(cp)
            print("%x name %s | title %s" % (cp, verdict({"name": "a" + c, "phases": rest}),
                                              verdict({"name": "a", "title": "t" + c, "phases": rest})))


main()
