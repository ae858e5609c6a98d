# The ESP32 board (DevKitC + a sensor build described by a profile,
# hardware/profiles/*.json): implements the board interface of
# docs/BOARD.md with a hardware Timer sampler, the profile's sensor
# driver(s), LED/buzzer/vibration cues, the button, a battery divider and
# littlefs at "/". The hardware is reached only through the `machine`
# module passed in, so the same class runs on the unix port with a
# simulated machine in tests. INFO reports the heap and the PSRAM; a heap
# that runs low while she trains ends the session (what was recorded is
# kept) and shows its own LED pattern.
import gc
import sys
import asyncio
from micropython import const

from knip.ring import SampleRing
from drivers import clock, open_sensor
from espboard.sampler import Sampler
from espboard.ui import Ui

_TIMER = const(0)
_RESTART_MS = const(0x20000000)  # ~6.2 days up: restart while idle so ticks_ms never wraps
_LOW_FREE = const(16384)         # heap free below this (after a collect): running out
_PSRAM_REGION = const(0x100000)  # an IDF heap region this big is PSRAM (internal RAM is 520 KB)
_RESTART_AFTER_MS = const(10000) # after a task died of MemoryError: restart this long after, once idle
_SMALL_HEAP = const(262144)      # a heap below this (a board without PSRAM) is kept in one piece:
_GC_STEP = const(4096)           # ... a collection after every this many bytes allocated
_BIG_HEAP = const(0x100000)      # a GC heap this big is in PSRAM (a WROOM's is ~110 KB): no heap watch
# LiPo open-circuit voltage (mV) at 100, 90, ..., 0 %
_LIPO = (4200, 4060, 3980, 3920, 3870, 3820, 3790, 3770, 3740, 3680, 3300)


def esp32_module(machine):
    """The `esp32` module (idf_heap_info), or what a simulated machine offers
    as machine.esp32; None where there is neither (the unix port)."""
    e = getattr(machine, "esp32", None)
    if e is not None:
        return e
    try:
        import esp32
        return esp32
    except ImportError:
        return None


def psram_bytes(esp32):
    """PSRAM in the IDF heap: the SPIRAM firmware puts it there (0 when it
    found none; the plain firmware never looks). None without `esp32`."""
    if esp32 is None:
        return None
    try:
        return sum(r[0] for r in esp32.idf_heap_info(esp32.HEAP_DATA) if r[0] >= _PSRAM_REGION)
    except (AttributeError, OSError, TypeError):
        return None


def lipo_percent(mv):
    if mv >= _LIPO[0]:
        return 100
    for i in range(1, len(_LIPO)):
        hi, lo = _LIPO[i - 1], _LIPO[i]
        if mv >= lo:
            return 100 - 10 * i + (mv - lo) * 10 // (hi - lo)
    return 0


_FAST_RATE_HZ = const(500)      # sample rates from here run the CPU at _FAST_CPU_HZ
_FAST_CPU_HZ = const(240000000)


class Esp32Board:
    name = "esp32"

    def __init__(self, prof, machine, fs_root="/sessions"):
        self.machine = machine
        self.profile = prof
        self.signal = prof["signal"]
        self.rate_hz = prof["rate_hz"]
        self.channels = 2 if prof.get("abdominal") is not None else 1
        self.fs_root = fs_root
        self.device_id = "knip-" + "".join("%02x" % b for b in machine.unique_id())
        self._t = clock(machine)     # `time` on the ESP32; a simulated machine may keep virtual time
        # Raw EMG (500 Hz and up) runs the CPU at its rated 240 MHz: at the
        # port's default 160 MHz a 1 kHz two-channel session with BLE live
        # would leave too little headroom (docs/FROZEN.md, CPU budget).
        self.cpu_mhz = 0
        f = getattr(machine, "freq", None)
        if f is not None:
            if self.rate_hz >= _FAST_RATE_HZ:
                f(_FAST_CPU_HZ)
            self.cpu_mhz = f() // 1000000
        self.loopback = None
        if prof.get("loopback") is not None:
            # the rig's DAC drives the sensor pin: at rest level before the check
            from espboard.loopback import DacUser
            self.loopback = DacUser(machine, prof["loopback"])
        # the sensors must answer before anything starts (SensorError says why)
        self.sensor = open_sensor(prof["sensor"], self.rate_hz, machine)
        self.sensor.check()
        self.abd = None
        if prof.get("abdominal") is not None:
            self.abd = open_sensor(prof["abdominal"], self.rate_hz, machine)
            self.abd.check()
        self.unit = self.sensor.unit
        self.counts_per_unit = self.sensor.counts_per_unit
        if self.signal == "pressure":
            # zero with the probe in place and relaxed (re-done by the calibrate program's rest)
            self.sensor.zero()
            if self.abd is not None:
                self.abd.zero()
        self.ring = SampleRing(prof.get("ring", 256))
        self.sampler = Sampler(self.ring, self.sensor, self.abd, self.rate_hz, clock=self._t.ticks_ms,
                               machine=machine, timer_id=_TIMER,
                               before=self.loopback.step if self.loopback else None)
        self.ui = Ui(machine, prof["ui"])
        self.ui.on_pairing = self._pairing_request
        self.ui.on_forget = self._forget_request
        self._bat = None
        bat = prof.get("battery")
        if bat is not None:
            self._bat = machine.ADC(machine.Pin(bat["pin"]), atten=machine.ADC.ATTN_11DB)
            self._bat_mul = int(bat["divider"] * 1000)
        self.link = None
        self.ble = None             # the BleLink, when BLE runs (boot.py)
        self.usb = None             # the SerialLink
        self.alerts = []
        self._tasks = []
        self._pair_wanted = 0       # 1: open BLE pairing; 2: forget every laptop first
        self._pair_shown = False
        self.idle = None            # set by boot: a callable, True while no session records
        self.module = prof.get("module", "wrover")
        self.psram = psram_bytes(esp32_module(machine))
        self.heap_low = False       # the heap ran low (cleared when it recovers)
        self.on_heap_low = None     # set by boot (App.end_for_memory): ends a running session, keeping it
        self._restart_at = None     # ticks after which to restart once idle (a task died)
        self._restart_stuck = False  # ... and even while recording (a file that would not close)
        # gc.mem_free() walks the whole heap's allocation table with Python
        # stopped: ~2 ms for a WROOM's 110 KB, 0.1-0.3 s for 4 MB of PSRAM
        # (docs/FROZEN.md), far longer than the sampler's soft IRQs can
        # wait (8 periods). So only a small heap is watched once a second;
        # a PSRAM heap, which the firmware's few hundred KB never fill, is
        # not (a MemoryError is still caught: boot.py), and INFO reports its
        # free heap as found here, before the sampler runs.
        self.heap_free0 = gc.mem_free()
        self.heap_size = self.heap_free0 + gc.mem_alloc()
        self.watching = self.heap_size < _BIG_HEAP

    # ---- clock and sampler --------------------------------------------

    def ticks_ms(self):
        # the sampler stamps with the same clock; it wraps at 2**30 ms
        # (12.4 days), so the board restarts itself while idle before that
        return self._t.ticks_ms()

    async def sleep_ms(self, ms):
        await asyncio.sleep_ms(ms)

    def start(self):
        self.tune_gc()
        self.sampler.start()
        if self.ble is not None:
            self.ble.start()        # advertise; re-advertises after every disconnect
        self._tasks = [asyncio.create_task(self.ui.play()), asyncio.create_task(self._housekeeping())]

    def stop(self):
        self.sampler.stop()
        gc.threshold(-1)            # the REPL gets MicroPython's default back
        for t in self._tasks:
            t.cancel()
        self._tasks = []
        self.ui.off()

    async def wait_samples(self):
        await self.sampler.flag.wait()

    def convert(self, start, end):
        """Ring slots start..end to counts where the sampler stored raw ADC
        readings (raw EMG: docs/BOARD.md); the app calls it before using them."""
        self.sampler.convert(start, end)

    async def _housekeeping(self):
        while True:
            await asyncio.sleep_ms(1000)
            self._pairing_step()
            if self.watching:
                self.watch_heap()
            now = self._t.ticks_ms()
            due = now > _RESTART_MS or (self._restart_at is not None and now > self._restart_at)
            if due and self.idle is not None and (self.idle() or self._restart_stuck):
                self.machine.reset()

    # ---- the heap ------------------------------------------------------

    def tune_gc(self):
        """On a small heap (no PSRAM), collect after every _GC_STEP bytes
        allocated. MicroPython allocates first-fit from the bottom of the
        heap and collects only when it is full: whatever is alive at that
        moment was allocated last, near the top, and stays there, so the free
        heap ends up in small pieces between such leftovers. Collecting early
        keeps new objects low and the top of the heap in one piece (a 2 ms
        pause at most, absorbed by the sampler ring). A PSRAM heap keeps the
        application's budget (knip.app: a collection every 64 KB)."""
        if self.heap_size < _SMALL_HEAP:
            gc.collect()
            gc.threshold(_GC_STEP)

    def watch_heap(self, low=_LOW_FREE):
        """Once a second: below `low` bytes free even after a collect, the heap
        is running out: out_of_heap() once, until it recovers."""
        free = gc.mem_free()
        if free >= low:
            if free >= 2 * low:
                self.heap_low = False
            return free
        gc.collect()
        free = gc.mem_free()
        if free < low and not self.heap_low:
            self.out_of_heap("heap low: %d KB free" % (free // 1024))
        return free

    def out_of_heap(self, why, restart=False):
        """End a running session (what was recorded so far stays in its file,
        reason "memory"), show the low-heap pattern and keep `why` in INFO's
        alerts. `restart`: a task died of it, so restart once idle."""
        self.heap_low = True
        ended = self.on_heap_low() if self.on_heap_low is not None else None
        if ended is not None:
            why += "; session %d ended and kept" % ended
        self.alerts.append(why)
        del self.alerts[:-4]
        self.ui.heap_low()
        if restart:
            self.restart_when_idle()

    def restart_when_idle(self, stuck=False):
        """Restart _RESTART_AFTER_MS from now, once no session records;
        `stuck`: a session file that could not be closed (out of memory),
        so restart then even if it still counts as recording: recover()
        closes it at start, keeping every record that reached the flash."""
        if self._restart_at is None:
            self._restart_at = self._t.ticks_ms() + _RESTART_AFTER_MS
        if stuck:
            self._restart_stuck = True

    def _pairing_step(self):
        """Open BLE pairing for 60 s when the button asked (forgetting every
        laptop first after a 10 s press); blink while it is open."""
        want = self._pair_wanted
        self._pair_wanted = 0
        ble = self.ble
        if ble is None:
            return
        if want == 2:
            ble.forget_bonds()
        if want:
            ble.pairing(60)
            self.ui.pairing()
            self._pair_shown = True
        elif self._pair_shown and not ble.pairing_open():
            self._pair_shown = False             # bonded or timed out
            self.ui.pairing(False)

    def _pairing_request(self):
        # called from the button IRQ: only flag it, the task does the work
        self._pair_wanted = self._pair_wanted or 1

    def _forget_request(self):
        self._pair_wanted = 2

    # ---- user interface ------------------------------------------------

    def cue(self, cue, dur_ms, target_pct):
        self.ui.cue(cue)
        if self.loopback is not None:
            self.loopback.cue(cue)

    def read_button(self):
        return self.ui.read_button()

    def alert(self, text):
        self.alerts.append(text)
        del self.alerts[:-4]
        self.ui.alert()

    def battery(self):
        if self._bat is None:
            return -1, 0
        mv = self._bat.read_uv() * self._bat_mul // 1000000
        return lipo_percent(mv), mv

    def extra_info(self):
        s = self.sampler
        d = {"profile": self.profile["profile"], "sensor": self.profile["sensor"]["driver"],
             "saturated": self.sensor.saturated + (self.abd.saturated if self.abd else 0),
             "sampler": {"ticks": s.ticks, "late_max_us": s.late_max_us}, "cpu_mhz": self.cpu_mhz,
             "micropython": ".".join(str(v) for v in sys.implementation.version[:3]),
             "alerts": self.alerts,
             "usb_power": self.link is not None and getattr(self.link, "active", self.usb) is self.usb,
             # the heap (on the ESP32 mem_free counts the IDF heap it may still grow
             # into), the PSRAM found, and whether the firmware is a SPIRAM build
             # (only that one looks for PSRAM: 0 from the plain build means "not looked");
             # a PSRAM heap's free bytes are those at start (see watching)
             "module": self.module, "heap": self.heap_size,
             "heap_free": gc.mem_free() if self.watching else self.heap_free0,
             "psram": self.psram, "spiram": "SPIRAM" in getattr(sys.implementation, "_machine", "").upper()}
        if self.ble is not None:
            d["ble"] = self.ble.info()
        if self.loopback is not None:
            d["loopback"] = self.loopback.info()
        return d
