# The ESP32 board (DevKitC + a sensor build described by a profile,
# hardware/profiles/*.json): implements the board interface of
# docs/BOARD.md with a hardware Timer sampler, the profile's sensor
# driver(s), LED/buzzer/vibration cues, the button, a battery divider and
# littlefs at "/". The hardware is reached only through the `machine`
# module passed in, so the same class runs on the unix port with a
# simulated machine in tests.
import sys
import asyncio
from micropython import const

from knip.ring import SampleRing
from drivers import clock, open_sensor
from espboard.sampler import Sampler
from espboard.ui import Ui

_TIMER = const(0)
_RESTART_MS = const(0x20000000)  # ~6.2 days up: restart while idle so ticks_ms never wraps
# LiPo open-circuit voltage (mV) at 100, 90, ..., 0 %
_LIPO = (4200, 4060, 3980, 3920, 3870, 3820, 3790, 3770, 3740, 3680, 3300)


def lipo_percent(mv):
    if mv >= _LIPO[0]:
        return 100
    for i in range(1, len(_LIPO)):
        hi, lo = _LIPO[i - 1], _LIPO[i]
        if mv >= lo:
            return 100 - 10 * i + (mv - lo) * 10 // (hi - lo)
    return 0


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

    # ---- clock and sampler --------------------------------------------

    def ticks_ms(self):
        # the sampler stamps with the same clock; it wraps at 2**30 ms
        # (12.4 days), so the board restarts itself while idle before that
        return self._t.ticks_ms()

    async def sleep_ms(self, ms):
        await asyncio.sleep_ms(ms)

    def start(self):
        self.sampler.start()
        if self.ble is not None:
            self.ble.start()        # advertise; re-advertises after every disconnect
        self._tasks = [asyncio.create_task(self.ui.play()), asyncio.create_task(self._housekeeping())]

    def stop(self):
        self.sampler.stop()
        for t in self._tasks:
            t.cancel()
        self._tasks = []
        self.ui.off()

    async def wait_samples(self):
        await self.sampler.flag.wait()

    async def _housekeeping(self):
        while True:
            await asyncio.sleep_ms(1000)
            self._pairing_step()
            if self._t.ticks_ms() > _RESTART_MS and self.idle is not None and self.idle():
                self.machine.reset()

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
             "sampler": {"ticks": s.ticks, "late_max_us": s.late_max_us},
             "micropython": ".".join(str(v) for v in sys.implementation.version[:3]),
             "alerts": self.alerts,
             "usb_power": self.link is not None and getattr(self.link, "active", self.usb) is self.usb}
        if self.ble is not None:
            d["ble"] = self.ble.info()
        if self.loopback is not None:
            d["loopback"] = self.loopback.info()
        return d
