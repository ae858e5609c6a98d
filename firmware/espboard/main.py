# /main.py on the ESP32: start the Knip trainer (firmware/espboard/boot.py).
# Files that do not load (copied for another MicroPython version, or
# missing) leave the REPL free with a note on what to do.
try:
    from espboard.boot import run
except (ImportError, ValueError) as e:
    print("knip: cannot load the firmware files (%s); run `make deploy PORT=...` again "
          "(after `make flash PORT=...` if the MicroPython version differs)" % e)
else:
    run()
