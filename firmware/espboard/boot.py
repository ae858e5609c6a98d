# Start-up on the ESP32: load /profile.json, honour the safe-mode pin, build
# the board and its links, run the application with Ctrl-C off, and always
# come back to the REPL (so `make deploy` never needs a reflash). Anything
# that stops the start is printed on the REPL port with what to do.
import sys
import asyncio
import micropython

PROFILE = "/profile.json"


def _say(text):
    sys.stdout.write("knip: %s\n" % text)


def _safe_mode(machine, prof):
    pin = prof.get("safe_mode_pin")
    if pin is None:
        pin = prof["ui"]["button"]
    p = machine.Pin(pin, machine.Pin.IN, machine.Pin.PULL_UP)
    return p.value() == 0, pin


def _links(board, prof):
    from links.serial_link import SerialLink
    usb = SerialLink()
    board.usb = usb
    name = None
    ble = prof.get("ble") or {}
    if ble.get("enabled", True):
        name = ble.get("name", "Knip")
    if name is None:
        return usb, "usb"
    try:
        from links.ble_link import BleLink
        from links.multi_link import MultiLink
    except ImportError as e:
        # aioble comes from mip (make deploy installs its peripheral parts)
        board.alerts.append("BLE off: %s; run make deploy to install aioble" % e)
        return usb, "usb (BLE off: aioble missing)"
    from knip.app import FIRMWARE
    try:
        board.ble = BleLink(name=name, device_id=board.device_id, battery=board.battery, firmware=FIRMWARE)
    except Exception as e:
        # a MicroPython built without BLE pairing, or a radio that will not start
        board.alerts.append("BLE off: %s" % e)
        return usb, "usb (BLE off: %s)" % e
    return MultiLink(usb, board.ble), "usb + ble %s" % name


def _load_profile(path):
    # The validator is big (~16 KB of bytecode in RAM) and needed once: it
    # is dropped again as soon as the profile has passed.
    from knip import profile as profiles
    try:
        return profiles.load(path)
    except profiles.ProfileError as e:
        _say(str(e))
        return None
    finally:
        import knip
        sys.modules.pop("knip.profile", None)
        if "profile" in knip.__dict__:
            del knip.__dict__["profile"]
        import gc
        gc.collect()


def run(machine=None, profile_path=PROFILE, fs_root="/sessions", announce=_say):
    """True after the application ran and returned (REPL request); None when
    it could not start (the reason is printed)."""
    # the virtual trainer passes a simulated machine, its profile and its
    # littlefs mount; on the ESP32 everything is the default
    if machine is None:
        import machine
    prof = _load_profile(profile_path)
    if prof is None:
        _say("the application did not start; the REPL is yours")
        return
    safe, pin = _safe_mode(machine, prof)
    if safe:
        _say("safe mode (GPIO%d held at boot): the application did not start; the REPL is yours" % pin)
        return
    from drivers import SensorError
    from espboard.board import Esp32Board
    from knip.app import App
    try:
        board = Esp32Board(prof, machine, fs_root)
    except SensorError as e:
        _say(str(e))
        _say("the application did not start (sessions on the device are kept); fix the sensor "
             "and press EN, or hold GPIO%d at boot for the REPL" % pin)
        return
    board.link, how = _links(board, prof)
    app = App(board)
    wire(board, app)
    announce("%s ready: %s, %d Hz, %s; send the REPL request or hold GPIO%d at boot for the REPL"
             % (prof["profile"], board.signal, board.rate_hz, how, pin))
    # frames carry 0x03 bytes: Ctrl-C must not interrupt the application
    micropython.kbd_intr(-1)
    try:
        asyncio.run(app.run())
    except MemoryError:
        # App.run has ended a running session (kept, reason "stopped")
        _say("out of memory (%d KB heap); the session so far is kept. A board without PSRAM needs "
             "the frozen build: docs/DEPLOY.md; press EN to start again" % (board.heap_size // 1024))
        return
    finally:
        micropython.kbd_intr(3)
        board.stop()
        if board.ble is not None:
            board.ble.close()
    _say("left the application; the REPL is yours (press EN to start it again)")
    return True


def wire(board, app):
    """What ties the board to the application: idle while nothing records,
    a heap running low ends the session (kept), a task dying of MemoryError
    too. (esp32_session.py, which measures memory, wires its board the same.)"""
    board.idle = lambda: app.session is None
    board.on_heap_low = app.end_for_memory
    _on_task_error(board)


def _on_task_error(board):
    """A task that dies of MemoryError ends the session (kept), shows the
    low-heap pattern and restarts the board once idle; other errors are
    printed as asyncio does."""
    loop = asyncio.get_event_loop()

    def handler(loop, ctx):
        if isinstance(ctx.get("exception"), MemoryError):
            try:
                board.out_of_heap("out of memory in a task; restarting once idle", restart=True)
                return
            except MemoryError:
                pass
        loop.default_exception_handler(loop, ctx)

    loop.set_exception_handler(handler)
