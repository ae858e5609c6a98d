# Prints the program parser's verdict on names and titles holding each code
# point in a few ranges, one line each, so that the host (CPython) and the
# trainer (MicroPython) can be shown to give the same answers
# (tests/test_micropython.py runs it on both and compares).
import sys

from knip import programs as PG

RANGES = ((0, 0x3100), (0xD7F0, 0xE010), (0xFB00, 0x10000), (0x1F600, 0x1F610), (0x10FFF0, 0x110000))


def verdict(doc):
    try:
        PG.parse(doc)
    except PG.ProgramError as e:
        return str(e)
    return "ok"


def char(cp):
    # MicroPython's chr() interns each character it makes (a qstr per code
    # point, never freed: about 1 MB over these ranges, grown in ever larger
    # pools, and a 10 KB pool once failed to fit); a str read from the
    # character's UTF-8 bytes is not interned, and is the same str. CPython
    # cannot decode a lone surrogate from UTF-8, so it keeps chr().
    if sys.implementation.name != "micropython":
        return chr(cp)
    if cp < 0x80:
        b = [cp]
    elif cp < 0x800:
        b = [0xC0 | cp >> 6, 0x80 | cp & 63]
    elif cp < 0x10000:
        b = [0xE0 | cp >> 12, 0x80 | cp >> 6 & 63, 0x80 | cp & 63]
    else:
        b = [0xF0 | cp >> 18, 0x80 | cp >> 12 & 63, 0x80 | cp >> 6 & 63, 0x80 | cp & 63]
    return str(bytes(b), "utf-8")


def main():
    step = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    rest = [{"kind": "rest", "seconds": 3}]
    for lo, hi in RANGES:
        for cp in range(lo, hi, step):
            c = char(cp)
            print("%x name %s | title %s" % (cp, verdict({"name": "a" + c, "phases": rest}),
                                              verdict({"name": "a", "title": "t" + c, "phases": rest})))


main()
