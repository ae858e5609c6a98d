"""Putting Knip on an ESP32 (docs/DEPLOY.md): the pinned MicroPython release
(release), the firmware build (build), the MicroPython image (image),
flashing it with esptool (flash), copying the build with mpremote (mpremote,
deploy), the Knip app as these meet it on the board (app), and the board's
serial port (board_port). tools runs the external programs. frozen lists
what a firmware image freezes; mp32 builds and caches the 32-bit unix port
with it frozen in, which the tests and the bench run."""
