# Minimal test runner for the MicroPython unix port: runs every test_*
# function of the given portable test modules and prints a pytest-like tally.
import sys


def main(names):
    passed = failed = 0
    for name in names:
        mod = __import__(name)
        for attr in sorted(dir(mod)):
            if not attr.startswith("test_"):
                continue
            try:
                getattr(mod, attr)()
                passed += 1
                print("PASS", name, attr)
            except Exception as e:
                failed += 1
                print("FAIL", name, attr, repr(e))
                sys.print_exception(e)
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


main(sys.argv[1:])
