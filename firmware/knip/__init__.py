# Knip portable core: runs on the ESP32, the MicroPython unix port and CPython.
VERSION = "0.1.0"
