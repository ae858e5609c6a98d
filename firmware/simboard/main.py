# Virtual trainer entry point (MicroPython unix port):
#   micropython simboard/main.py --image FILE [--speed X] [--seed N]
#       [--user KIND] [--signal pressure|emg] [--rate HZ] [--baud B] [--id ID]
#       [--clock virtual --ctl PATH]
# stdin/stdout are the "USB serial" (the host gives us a pseudo-terminal);
# messages for people go to stderr.
import sys
import asyncio


def _args(argv):
    from simboard.options import parse
    return parse(argv, {"--image": "knip-sim.img", "--speed": "1", "--seed": "1", "--user": "good",
                "--signal": "pressure", "--rate": "0", "--baud": "115200", "--id": "sim-0001",
                "--blocks": "512", "--channels": "0", "--clock": "wall", "--ctl": ""})


def main():
    from simboard.board import SimBoard
    from links.serial_link import SerialLink
    from knip.app import App
    o = _args(sys.argv[1:])
    virtual = o["--clock"] == "virtual"
    board = SimBoard(o["--image"], speed=float(o["--speed"]), seed=int(o["--seed"]), user=o["--user"],
                     signal=o["--signal"], rate_hz=int(o["--rate"]) or None, device_id=o["--id"],
                     blocks=int(o["--blocks"]), channels=int(o["--channels"]),
                     clock="virtual" if virtual else "wall")
    if virtual:
        # the host owns the clock (simboard/hostclock.py): time moves when it says
        from simboard.hostclock import HostClock, SimBoardTime, GatedLink
        HostClock(o["--ctl"], SimBoardTime(board)).install()
        board.stepped = True
        board.link = GatedLink()
    else:
        board.link = SerialLink(baud=int(o["--baud"]))
    app = App(board)
    for sid, valid, lost in app.recovered:
        sys.stderr.write("knip-sim: session %d recovered after a power cut: %d bytes kept, %d discarded\n"
                         % (sid, valid, lost))
    sys.stderr.write("knip-sim: ready (%s, %d Hz, speed %s, user %s, %s clock)\n"
                     % (board.signal, board.rate_hz, o["--speed"], o["--user"], o["--clock"]))
    loop = asyncio.get_event_loop()
    # a task's unexpected error must never be printed on the protocol port
    loop.set_exception_handler(lambda _loop, ctx: sys.print_exception(ctx["exception"], sys.stderr))
    loop.run_until_complete(app.run())
    sys.stderr.write("knip-sim: left the application (REPL requested)\n")


main()
