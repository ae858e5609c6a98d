# The virtual trainer: the board, the simulated ESP32 and the synthetic user.
# Simulation only: nothing here is deployed to a board (knip_host.esp32.release).
# Runs under the MicroPython unix port and CPython (host, bench, tests).
try:
    from micropython import const
except ImportError:  # CPython: const() is just the value
    def const(x):
        return x
