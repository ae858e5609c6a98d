# The virtual trainer running the ESP32 board code itself (espboard/, the
# drivers, the sampler, the HIL loopback) on a simulated `machine` under
# the MicroPython unix port:
#   micropython simboard/esp32_main.py --image FILE --profile FILE [--blocks N] [--safe 1]
#       [--clock virtual --ctl PATH]
# stdin/stdout are the "USB serial" (a pseudo-terminal from the host), as
# for simboard/main.py; messages for people go to stderr.
import sys


def _args(argv):
    from simboard.options import parse
    return parse(argv, {"--image": "knip-esp32.img", "--profile": "../hardware/profiles/hil-loopback.json",
                "--blocks": "512", "--safe": "0", "--clock": "wall", "--ctl": ""})


def main():
    o = _args(sys.argv[1:])
    from simboard.blockdev import mount, pin_store_id
    mount(o["--image"], "/flash", 4096, int(o["--blocks"]))
    if o["--clock"] == "virtual":
        pin_store_id("/flash/sessions", 1)     # the same bytes every run
    from simboard import esp32_machine
    from simboard.esp32_rig import rig
    # a trainer runs on the wall clock, or on virtual time the host grants
    # (simboard/hostclock.py): the machine's VClock is asyncio's clock then
    virtual = o["--clock"] == "virtual"
    machine = rig(esp32_machine.fresh(virtual=virtual))
    clock = None
    if virtual:
        from simboard import hostclock
        clock = hostclock.HostClock(o["--ctl"], hostclock.MachineTime(machine.vtime)).install()
        import links.serial_link
        links.serial_link.SerialLink = hostclock.GatedLink     # boot makes the USB link
        import asyncio
        asyncio.ThreadSafeFlag = hostclock.EventFlag           # the sampler's flag
    from knip import profile as profiles
    if o["--safe"] == "1":
        try:
            prof = profiles.load(o["--profile"])
            machine.press(prof.get("safe_mode_pin", prof["ui"]["button"]))
        except profiles.ProfileError:
            pass
    from espboard import boot
    say = boot._say

    def echo(text):
        # the board says it on its port; the host's log sees it too
        say(text)
        if clock is not None:
            clock.extra_tx += len(("knip: %s\n" % text).encode())
        sys.stderr.write("knip-sim: %s\n" % text)

    boot._say = echo

    def ready(text):
        boot._say(text)
        sys.stderr.write("knip-sim: ready (esp32 board: %s)\n" % text)

    if boot.run(machine=machine, profile_path=o["--profile"], fs_root="/flash/sessions", announce=ready):
        sys.stderr.write("knip-sim: left the application (REPL requested)\n")
    else:
        sys.stderr.write("knip-sim: the application did not start (at the REPL on a real board)\n")


main()
