# Heap the application allocates, counted even when freed at once (see
# transient_check.py): the real App fed from its ring by the bench board of
# app_heap.py, 100 samples a wake, after 15 s of warm-up.
#   micropython app_transient.py MODE SECONDS THRESHOLD_BYTES   (MODE: idle | live | record | session)
# Prints "collected <True|False> samples <n>": True if the samples after
# the warm-up allocated THRESHOLD_BYTES or more.
import sys
import asyncio
from app_heap import make_app, RATE
from transient_check import count_from, counted

_WARM = 1500


async def run(mode, seconds, threshold):
    if RATE * seconds <= _WARM:
        # the count starts after the warm-up: it would wait for ever
        raise SystemExit("app_transient: SECONDS must give more than %d samples at %d Hz" % (_WARM, RATE))
    app, board = make_app(mode, seconds)
    proc = asyncio.create_task(app.process())
    while board.i < _WARM:
        await asyncio.sleep_ms(0)
    n0 = app.n
    count_from(threshold)
    await board.done.wait()
    hit = counted()
    proc.cancel()
    print("collected", hit, "samples", app.n - n0)


asyncio.run(run(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
