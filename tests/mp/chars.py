# Characters made without interning them, for the tests that pass many
# distinct characters through the trainer's code: on MicroPython chr()
# interns each character it makes (a qstr per code point, never freed), so
# a test's own chr() calls would fill the heap; a str read from the
# character's UTF-8 bytes is not interned and is the same str. CPython
# cannot decode a lone surrogate from UTF-8, so there chr() it is.
import sys


def char(cp):
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


def text(cp, n):
    """n characters from code point cp on."""
    return "".join([char(c) for c in range(cp, cp + n)])
