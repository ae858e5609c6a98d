# RAM the trainer holds after start-up, with the ESP32's own objects: the
# real Esp32Board built from a board profile (ring size, rate, channels,
# drivers) on the simulated `machine` (simboard/esp32_machine.py on the
# virtual trainer's rig, wall clock), the USB
# link as boot.py sets it up, and App(board) on a littlefs in RAM (or the
# port's own filesystem where there is no littlefs: the WebAssembly port).
# Run with the deployed .mpy tree first on the path so code loads as on
# the board.
#   micropython esp32_heap.py PROFILE.json
# Prints "key value" pairs: code (bytes held by the imported modules),
# app (board + links + App), total, and the profile's ring/rate/channels.
import gc
import sys
import vfs

from simboard import esp32_machine
from simboard.esp32_rig import rig, at_rest

machine = rig(esp32_machine.fresh(virtual=False))


def alloc():
    gc.collect()
    gc.collect()
    return gc.mem_alloc()


def main(path):
    root = "/sessions"
    if hasattr(vfs, "VfsLfs2"):
        from simboard.blockdev import mount
        mount(None, "/flash")        # the ESP32's 2 MiB data partition, in RAM
        root = "/flash/sessions"
    m0 = alloc()
    # what espboard/boot.py imports on the way to App.run()
    from knip.app import App
    from espboard import boot
    from espboard.board import Esp32Board
    from links.serial_link import SerialLink  # noqa: F401  (boot._links imports it)
    m1 = alloc()
    prof = boot._load_profile(path)    # validated, then the validator is dropped, as at boot
    at_rest(machine, prof)
    board = Esp32Board(prof, machine, root)
    try:
        board.link, how = boot._links(board, prof)
    except AttributeError as e:      # a port without asyncio streams (WebAssembly): no USB link
        board.link, how = None, "none (%s)" % e
    app = App(board)
    m2 = alloc()
    print("code", m1 - m0, "app", m2 - m1, "total", m2 - m0, "ring", board.ring.size,
          "rate", board.rate_hz, "channels", board.channels, "free", gc.mem_free(),
          "links", how.replace(" ", "_"), "app_ok", int(app is not None))


if __name__ == "__main__":
    main(sys.argv[1])
