# Command-line options of the virtual trainer's entry points (main.py,
# esp32_main.py): "--name value" pairs over a dict of defaults.
import sys


def parse(argv, opts):
    i = 0
    while i < len(argv):
        k = argv[i]
        if k not in opts or i + 1 >= len(argv):
            sys.stderr.write("knip-sim: bad option %s; options: %s\n" % (k, " ".join(sorted(opts))))
            sys.exit(2)
        opts[k] = argv[i + 1]
        i += 2
    return opts
