# The ESP32 board code (firmware/espboard) on the MicroPython unix port with
# the virtual trainer's simulated machine (firmware/simboard/esp32_machine)
# on the HIL rig, in virtual time: profile -> drivers -> sampler -> ring with
# the HIL loopback, the button, the battery curve, and the ways boot refuses
# to start. MicroPython only (espboard imports `micropython`); run by
# tests/test_espboard.py.
import gc
import json
from simboard import esp32_machine
from simboard.esp32_rig import rig
from espboard.board import Esp32Board, lipo_percent
from espboard import boot
from knip import profile as PR
from knip import programs as PG

import os


def _find(rel):
    for base in ("", "../"):
        try:
            os.stat(base + rel)
            return base + rel
        except OSError:
            pass
    raise OSError("run from the repository or firmware/: " + rel)


HIL = _find("hardware/profiles/hil-loopback.json")


def _machine():
    return rig(esp32_machine.fresh())


def _board():
    return Esp32Board(PR.load(HIL), _machine(), "/tmp-unused")


def _ticks(b, n):
    for _ in range(n):
        b.sampler._tick(None)
    r = b.ring
    last = r.x[(r.head - 1) % r.size]
    r.tail = r.head
    return last


def test_board_from_the_hil_profile():
    b = _board()
    assert b.signal == "pressure" and b.unit == "cmH2O" and b.counts_per_unit == 20
    assert b.channels == 1 and b.rate_hz == 100 and b.ring.size == 256
    assert b.device_id == "knip-5e1f00000a01"
    pct, mv = b.battery()
    assert mv == 3900 and pct == lipo_percent(3900)
    info = b.extra_info()
    assert info["profile"] == "hil-loopback" and info["saturated"] == 0 and info["loopback"]["code"] == 30


def test_loopback_plays_the_cues_into_the_adc():
    b = _board()
    rest = _ticks(b, 20)
    assert abs(rest) < 20, rest                     # zeroed at start-up: 0 +- 1 cmH2O
    b.cue(PG.CUE_SQUEEZE, 1000, 0)
    up = _ticks(b, 60)
    assert 0.85 * 800 < up < 1.15 * 800, up          # 40 cmH2O at 20 counts per cmH2O
    b.cue(PG.CUE_RELAX, 2000, 0)
    down = _ticks(b, 60)
    assert abs(down) < 20, down
    assert b.loopback.cues == 2


def test_no_heap_per_sample_in_the_sampler_path():
    b = _board()
    b.cue(PG.CUE_SQUEEZE, 1000, 0)
    _ticks(b, 50)
    gc.collect()
    gc.disable()
    m0 = gc.mem_alloc()
    for _ in range(5):
        for _ in range(100):
            b.sampler._tick(None)
        b.ring.tail = b.ring.head
    m1 = gc.mem_alloc()
    gc.enable()
    # the drained loop itself allocates nothing either: every byte is the sampler's
    assert m1 - m0 == 0, m1 - m0


def test_button_short_long_and_pairing_press():
    b = _board()
    M = b.machine
    ui = b.ui
    pin = ui.btn.n
    wanted = []
    ui.on_pairing = lambda: wanted.append(1)
    ui.on_forget = lambda: wanted.append(2)
    for held_ms in (120, 1200, 3100, 10100):
        _hold(M, pin, held_ms)
    M.press(pin)                        # a bounce inside the debounce time: ignored
    M.vtime.sleep_ms(10)
    M.release(pin)
    assert [ui.read_button() for _ in range(5)] == [1, 2, 2, 2, 0]
    assert wanted == [1, 2]


def _hold(M, pin, held_ms):
    M.vtime.sleep_ms(40)
    M.press(pin)                        # the edges raise the button's IRQ
    M.vtime.sleep_ms(held_ms)
    M.release(pin)


class _Ble:
    """What the board asks of its BleLink for the pairing button."""

    def __init__(self):
        self.calls = []
        self.open = False

    def pairing(self, seconds):
        self.calls.append(seconds)
        self.open = seconds > 0

    def pairing_open(self):
        return self.open

    def forget_bonds(self):
        self.calls.append("forget")


def test_pairing_button_opens_pairing_blinks_while_open_and_forgets_laptops():
    from espboard import ui as U
    b = _board()
    M = b.machine
    b.ble = ble = _Ble()
    _hold(M, b.ui.btn.n, 3100)
    b._pairing_step()
    assert ble.calls == [60] and b.ui.pattern is U._PAIRING
    b._pairing_step()
    assert b.ui.pattern is U._PAIRING           # still open: still blinking
    ble.open = False                            # the first bond closed it
    b._pairing_step()
    assert b.ui.pattern is U._REST
    _hold(M, b.ui.btn.n, 3100)
    b._pairing_step()
    b.cue(PG.CUE_SQUEEZE, 1000, 0)              # a session's cue replaces the blinking ...
    ble.open = False
    b._pairing_step()
    assert b.ui.pattern is U._SQUEEZE           # ... and is not cut off when pairing ends
    _hold(M, b.ui.btn.n, 10100)                 # a lost laptop: forget them all, then pair
    b._pairing_step()
    assert ble.calls == [60, 60, "forget", 60] and b.ui.pattern is U._PAIRING


def test_lipo_curve():
    assert lipo_percent(4250) == 100 and lipo_percent(4200) == 100
    assert lipo_percent(3300) == 0 and lipo_percent(3000) == 0
    assert lipo_percent(3870) == 60
    last = 101
    for mv in range(4200, 3290, -10):
        p = lipo_percent(mv)
        assert p <= last
        last = p


def _run_boot(path, held=None):
    M = _machine()
    if held is not None:
        M.press(held)
    said = []
    orig = boot._say
    boot._say = said.append
    try:
        ran = boot.run(machine=M, profile_path=path, fs_root="/tmp-unused")
    finally:
        boot._say = orig
    return ran, said


def test_boot_refuses_a_bad_profile_and_keeps_the_repl():
    doc = json.load(open(HIL))
    doc["sensor"]["pin"] = 25
    with open("/tmp/knip-bad-profile.json", "w") as f:
        f.write(json.dumps(doc))
    ran, said = _run_boot("/tmp/knip-bad-profile.json")
    assert ran is None and "sensor.pin: GPIO25 is not an ADC1 pin" in said[0] and "REPL" in said[1]
    ran, said = _run_boot("/tmp/knip-no-such-profile.json")
    assert ran is None and "make deploy" in said[0]


def test_boot_safe_mode_and_missing_sensor():
    ran, said = _run_boot(HIL, held=33)
    assert ran is None and "safe mode (GPIO33 held at boot)" in said[0]
    doc = json.load(open(HIL))
    doc["loopback"] = None            # nothing drives GPIO34: the ADC reads its floor
    doc["sensor"]["pin"] = 39
    with open("/tmp/knip-nosensor.json", "w") as f:
        f.write(json.dumps(doc))
    ran, said = _run_boot("/tmp/knip-nosensor.json")
    assert ran is None and "GPIO39" in said[0] and "sessions on the device are kept" in said[1], said


class _FakeEsp32:
    # esp32.idf_heap_info(HEAP_DATA) as the SPIRAM firmware on a WROVER-E
    # reports it: internal DRAM regions and one 4 MiB PSRAM region
    HEAP_DATA = 4

    def __init__(self, regions):
        self.regions = regions

    def idf_heap_info(self, caps):
        assert caps == self.HEAP_DATA
        return self.regions


def test_info_reports_the_heap_and_the_psram():
    b = _board()
    info = b.extra_info()
    assert info["module"] == "wrover" and info["heap"] > info["heap_free"] > 0
    assert info["psram"] is None                 # the unix port has no esp32 module
    assert info["spiram"] is False               # "linux [GCC ...] version"
    M = esp32_machine
    M.esp32 = _FakeEsp32([(180000, 90000, 60000, 50000), (4194252, 4100000, 4000000, 4000000),
                          (28000, 1000, 900, 800)])
    try:
        assert _board().psram == 4194252
        M.esp32 = _FakeEsp32([(180000, 90000, 60000, 50000), (110000, 30000, 20000, 10000)])
        assert _board().psram == 0               # a WROOM: internal regions only
    finally:
        del M.esp32


def test_low_heap_ends_the_session_keeps_it_and_shows_the_pattern():
    import asyncio
    import vfs
    from simboard.blockdev import BlockDev
    from espboard import ui as U
    from knip.app import App
    bdev = BlockDev(None, 4096, 128)
    vfs.VfsLfs2.mkfs(bdev)
    vfs.mount(vfs.VfsLfs2(bdev), "/heaplow")
    try:
        b = Esp32Board(PR.load(HIL), _machine(), "/heaplow/sessions")
        app = App(b)
        b.on_heap_low = app.end_for_memory

        async def go():
            sid = app.start_session("sprint")
            for _ in range(250):
                b.sampler._tick(None)
            try:
                await asyncio.wait_for_ms(app.process(), 200)
            except asyncio.TimeoutError:
                pass
            assert b.watch_heap() > 16384 and not b.heap_low      # plenty: nothing happens
            b.watch_heap(low=1 << 30)                             # as if it ran out
            return sid

        sid = asyncio.run(go())
        assert app.session is None and b.heap_low and b.ui.pattern is U._HEAP_LOW
        assert b.alerts[-1].startswith("heap low: ") and b.alerts[-1].endswith(
            "session %d ended and kept" % sid), b.alerts
        assert app.runner.ended == (sid, "memory")
        s = [x for x in app.store.list() if x["id"] == sid][0]
        assert s["closed"], s
        data = b""
        for name in os.listdir("/heaplow/sessions"):
            data += open("/heaplow/sessions/" + name, "rb").read()
        assert b'"reason": "memory"' in data and b'"samples": 250' in data
        n = len(b.alerts)
        b.watch_heap(low=1 << 30)                                 # said once, until it recovers
        assert len(b.alerts) == n
        b.cue(PG.CUE_SQUEEZE, 1000, 0)                            # the next cue takes over
        assert b.ui.pattern is not U._HEAP_LOW
    finally:
        vfs.umount("/heaplow")


def test_memory_error_in_the_sample_loop_ends_the_session_and_the_loop_goes_on():
    # the sample task must not die of it: nothing would announce the end and
    # the host would wait for ever (issue 13: "a hang instead of a message")
    from espboard import ui as U
    try:
        b, app, sid, sent = _oom_session("/oom", 0)
        assert app.session is None and b.heap_low and b.ui.pattern is U._HEAP_LOW
        assert "out of memory in the sample task" in b.alerts[-1] and b.alerts[-1].endswith(
            "session %d ended and kept" % sid), b.alerts
        _ended_and_kept(app, sid, sent, "/oom", "memory")
    finally:
        vfs_umount("/oom")


def test_any_other_error_in_the_sample_loop_ends_the_session_said_and_the_loop_goes_on():
    # not only MemoryError: a bug or a failing driver must not stop the
    # loop silently while the program runs on (the session would record
    # nothing and no one would know why)
    try:
        b, app, sid, sent = _oom_session("/err", 0, ValueError("a driver said no"))
        assert b.alerts[-1] == "error in the sample task: ValueError: a driver said no", b.alerts
        _ended_and_kept(app, sid, sent, "/err", "error")
    finally:
        vfs_umount("/err")


def _ended_and_kept(app, sid, sent, mount, reason):
    """After an error in the sample loop: the loop went on, the host was
    told the session ended for `reason`, and the file is closed with it."""
    from knip import protocol as P
    assert app.session is None and app.n >= 299         # the loop went on after the error
    rx = P.FrameReader()
    notices = []
    for frame in sent:
        st, _ = rx.feed(frame, 0, len(frame))
        if st == P.R_FRAME and rx.mtype == P.NOTICE and rx.payload[0] == P.N_SESSION_ENDED:
            notices.append(bytes(rx.payload[1:]).decode())
    assert notices == ["%d %s" % (sid, reason)], notices  # the host is told
    s = [x for x in app.store.list() if x["id"] == sid][0]
    assert s["closed"], s
    data = b""
    for name in os.listdir(mount + "/sessions"):
        data += open(mount + "/sessions/" + name, "rb").read()
    assert ('"reason": "%s"' % reason).encode() in data and b'"samples": 99' in data


def _oom_session(mount, end_fails, exc=None):
    # A MemoryError in the sample loop of a session with a host listening;
    # with end_fails, the heap is so short that closing the session fails
    # as well: the summary's JSON once (1), or the store's end every time (99).
    # Returns (board, app, session id, every frame the board sent).
    import asyncio
    import json
    import vfs
    from simboard.blockdev import BlockDev
    from knip.app import App
    import knip.recorder as KR
    bdev = BlockDev(None, 4096, 128)
    vfs.VfsLfs2.mkfs(bdev)
    vfs.mount(vfs.VfsLfs2(bdev), mount)
    b = Esp32Board(PR.load(HIL), _machine(), mount + "/sessions")
    sent = []

    class Link:
        async def write(self, data):
            sent.append(bytes(data))
    b.link = Link()
    app = App(b)
    boot.wire(b, app)
    app.stream.samples.start(10)            # a host listens
    push = app.chain.push
    fail = [100]

    def flaky(t, x, a):
        fail[0] -= 1
        if fail[0] == 0:
            raise exc or MemoryError("memory allocation failed, allocating 512 bytes")
        return push(t, x, a)
    app.chain.push = flaky
    left = [end_fails]

    class ShortJson:
        @staticmethod
        def dumps(o):
            if isinstance(o, dict) and "reason" in o and left[0] > 0:
                left[0] -= 1
                raise MemoryError("memory allocation failed, allocating 600 bytes")
            return json.dumps(o)
    store_end = app.store.end

    def end(body):
        if left[0] > 0:
            left[0] -= 1
            raise MemoryError("memory allocation failed, allocating 64 bytes")
        return store_end(body)
    if end_fails == 1:
        KR.json = ShortJson
    elif end_fails:
        app.store.end = end

    async def go():
        sid = app.start_session("sprint")
        task = asyncio.create_task(app.process())
        for _ in range(300):
            b.sampler._tick(None)
            await asyncio.sleep_ms(0)
        await asyncio.sleep_ms(300)         # the loop pauses 100 ms after the error
        task.cancel()
        return sid
    try:
        sid = asyncio.run(go())
    finally:
        asyncio.get_event_loop().set_exception_handler(None)
        KR.json = json
    return b, app, sid, sent


def test_no_heap_for_the_summary_still_closes_the_session():
    # before: the recorder forgot the session before its summary was made, so
    # a MemoryError there left the file open and every later START refused
    try:
        b, app, sid, _ = _oom_session("/oom1", 1)
        assert app.session is None and app.store.open_id is None
        assert [x["closed"] for x in app.store.list() if x["id"] == sid] == [True]
        data = b""
        for name in os.listdir("/oom1/sessions"):
            data += open("/oom1/sessions/" + name, "rb").read()
        assert b'{"reason": "memory", "summary_lost": true}' in data
        assert app.start_session("sprint") == sid + 1      # the next session starts
    finally:
        vfs_umount("/oom1")


def test_a_session_that_cannot_be_closed_restarts_the_board_even_while_recording():
    try:
        b, app, sid, _ = _oom_session("/oom2", 99)
        assert app.store.open_id == sid and app.session == sid      # still open: kept, not forgotten
        assert b._restart_at is not None and b._restart_stuck       # restart, then recover() closes it
    finally:
        vfs_umount("/oom2")


def vfs_umount(point):
    import vfs
    vfs.umount(point)


def test_memory_error_while_serving_ends_the_session_and_serving_goes_on():
    import asyncio
    import vfs
    from simboard.blockdev import BlockDev
    from knip.app import App
    from knip import protocol as P
    bdev = BlockDev(None, 4096, 128)
    vfs.VfsLfs2.mkfs(bdev)
    vfs.mount(vfs.VfsLfs2(bdev), "/oom2")
    sent = []
    w = P.FrameWriter()

    class Link:
        def __init__(self):
            self.reads = 0

        async def readinto(self, buf):
            self.reads += 1
            await asyncio.sleep_ms(5)
            if self.reads == 2:
                raise MemoryError("memory allocation failed, allocating 256 bytes")
            if self.reads == 4:
                data = w.message(P.PING, 9, b"hi")
            elif self.reads == 5:
                data = w.message(P.REPL, 10)
            else:
                return 0
            buf[:len(data)] = data
            return len(data)

        async def write(self, data):
            sent.append(bytes(data))

    try:
        b = Esp32Board(PR.load(HIL), _machine(), "/oom2/sessions")
        b.link = Link()
        app = App(b)
        boot.wire(b, app)
        sid = app.start_session("sprint")

        async def go():
            await asyncio.wait_for_ms(app.run(), 2000)   # returns on the REPL request

        try:
            asyncio.run(go())
        finally:
            asyncio.get_event_loop().set_exception_handler(None)
        assert app.session is None and b.heap_low and b._restart_at is not None
        assert "out of memory in the protocol task" in b.alerts[-1] and b.alerts[-1].endswith(
            "session %d ended and kept" % sid), b.alerts
        rx = P.FrameReader()
        got = []
        for frame in sent:
            st, _ = rx.feed(frame, 0, len(frame))
            if st == P.R_FRAME:
                got.append(rx.mtype)
        assert P.PONG in got and P.OK in got, got          # it answered after the error
        s = [x for x in app.store.list() if x["id"] == sid][0]
        assert s["closed"], s
    finally:
        vfs.umount("/oom2")


def test_a_task_dying_of_memory_error_ends_the_session_and_restarts_when_idle():
    import asyncio
    b = _board()
    ended = []
    b.on_heap_low = lambda: ended.append("memory") or 7
    boot._on_task_error(b)

    async def dies():
        raise MemoryError("memory allocation failed, allocating 4096 bytes")

    async def go():
        asyncio.create_task(dies())
        await asyncio.sleep_ms(20)

    try:
        asyncio.run(go())
    finally:
        asyncio.get_event_loop().set_exception_handler(None)
    assert ended == ["memory"] and b.heap_low and b._restart_at is not None
    assert "out of memory in a task" in b.alerts[-1] and "session 7 ended and kept" in b.alerts[-1]


def test_raw_emg_runs_the_cpu_at_240_mhz():
    m = _machine()
    b = Esp32Board(PR.load(HIL), m, "/tmp-unused")          # pressure at 100 Hz: the default
    assert m.freq() == 160000000 and b.cpu_mhz == 160 and b.extra_info()["cpu_mhz"] == 160
    prof = PR.load(HIL)
    prof["rate_hz"] = 1000
    m = _machine()
    b = Esp32Board(prof, m, "/tmp-unused")
    assert m.freq() == 240000000 and b.cpu_mhz == 240


def test_raw_emg_reads_in_the_interrupt_and_converts_in_runs():
    # MyoWare RAW at 1 kHz: the interrupt stores the bare ADC reading, the
    # app converts a run of them (counts_run) to what read() would give
    from simboard.esp32_rig import at_rest
    from drivers.myoware import MyoWare
    prof = PR.load(_find("hardware/profiles/emg-myoware-raw.json"))
    m = _machine()
    at_rest(m, prof)
    b = Esp32Board(prof, m, "/tmp-unused")
    assert b.sampler.wake_n == 30
    b.sampler.start()
    pin = prof["sensor"]["pin"]
    vals = [1650000, 1651234, 1600000, 3300000, 0, 1700000, 1649999, 2100000, 1234567, 1650001] * 3
    for uv in vals:
        m.set_adc(pin, uv)
        m.vtime.advance_us(1000)
    b.sampler.stop()
    ring = b.ring
    assert ring.count() == len(vals)
    assert [ring.x[i] for i in range(len(vals))] == [min(max(v, 142000), 3160000) for v in vals]   # raw uV
    sat0 = b.sensor.saturated
    b.convert(0, len(vals))
    ref = MyoWare(prof["sensor"], 1000, m)
    ref.offset_uv = b.sensor.offset_uv
    got = []
    for uv in vals:
        m.set_adc(pin, uv)
        got.append(ref.read())
    assert [ring.x[i] for i in range(len(vals))] == got
    assert b.sensor.saturated - sat0 == ref.saturated > 0
    # a run that wraps round the end of the ring converts in two parts
    n = ring.size
    for k, slot in enumerate((n - 2, n - 1, 0, 1)):
        ring.x[slot] = min(max(vals[k], 142000), 3160000)        # as the ADC read them
    b.convert(n - 2, 2)
    assert [ring.x[s] for s in (n - 2, n - 1, 0, 1)] == got[:4]
