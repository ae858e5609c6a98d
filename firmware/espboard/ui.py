# What she sees, hears and feels: an LED, a passive buzzer (PWM) and an
# optional vibration motor play a short pattern per coaching cue (and one
# for alerts, pairing and a heap that runs out); a button gives pain scores
# (short press = one point, long press = confirm), opens BLE pairing (held
# 3 s) and makes the trainer forget every laptop before opening it (held
# 10 s: after a laptop was lost). cue() only picks a pattern; the play() task
# steps it, so the coach never waits for a beep.
import asyncio
from micropython import const

from drivers import clock

_TICK_MS = const(20)
_DEBOUNCE_MS = const(30)
_LONG_MS = const(1000)       # a long press confirms a pain score
PAIRING_MS = const(3000)     # held this long: open BLE pairing
FORGET_MS = const(10000)     # held this long: forget every laptop, then open pairing
_QUEUE = const(8)

# a pattern is steps of (ms, led 0/1, tone Hz or 0, vibration 0/1); a
# pattern ending in None repeats
_SQUEEZE = ((120, 1, 2000, 1), (0, 1, 0, 0))
_HOLD = ((40, 1, 2600, 0), (0, 1, 0, 0))
_RELAX = ((70, 0, 900, 1), (60, 0, 0, 0), (70, 0, 900, 1), (0, 0, 0, 0))
_REST = ((0, 0, 0, 0),)
_DONE = ((100, 1, 1500, 1), (60, 0, 0, 0), (100, 1, 2000, 0), (60, 0, 0, 0), (180, 1, 2600, 1),
         (0, 0, 0, 0))
_PAIN = ((500, 1, 0, 0), (500, 0, 0, 0), None)
_ALERT = ((80, 1, 3000, 1), (80, 0, 0, 0), None)
_PAIRING = ((150, 1, 0, 0), (150, 0, 0, 0), (150, 1, 0, 0), (850, 0, 0, 0), None)
# the heap ran low: the session was ended and kept; three short flashes and a
# low tone every 2 s until the next cue (knip info says why)
_HEAP_LOW = ((60, 1, 500, 0), (140, 0, 0, 0), (60, 1, 0, 0), (140, 0, 0, 0), (60, 1, 0, 0),
             (1540, 0, 0, 0), None)
# knip.programs CUE_REST, SQUEEZE, RELAX, DONE, HOLD, PAIN
_BY_CUE = (_REST, _SQUEEZE, _RELAX, _DONE, _HOLD, _PAIN)


class Ui:
    def __init__(self, machine, cfg):
        Pin = machine.Pin
        self._t = clock(machine)           # press lengths in the machine's time
        self.led = Pin(cfg["led"], Pin.OUT, value=0) if cfg.get("led") is not None else None
        self.vib = Pin(cfg["vibration"], Pin.OUT, value=0) if cfg.get("vibration") is not None else None
        self.pwm = None
        if cfg.get("buzzer") is not None:
            self.pwm = machine.PWM(Pin(cfg["buzzer"], Pin.OUT), freq=2000, duty_u16=0)
        self.pattern = _REST
        self.step = 0
        self.left = 0
        self._wake = asyncio.Event()
        self.on_pairing = None             # set by the board: called on a 3 s press
        self.on_forget = None              # and on a 10 s press
        # button: a falling edge starts a press, a rising edge ends it; the
        # IRQ only stores times, presses are classified here
        self.btn = Pin(cfg["button"], Pin.IN, Pin.PULL_UP)
        self.q = bytearray(_QUEUE)
        self.qh = 0
        self.qt = 0
        self._down = -1
        self._last = 0
        self.presses = 0
        self.btn.irq(self._edge, Pin.IRQ_FALLING | Pin.IRQ_RISING)

    # ---- button --------------------------------------------------------

    def _edge(self, pin):
        t = self._t
        now = t.ticks_ms()
        if t.ticks_diff(now, self._last) < _DEBOUNCE_MS:
            return
        self._last = now
        if pin.value() == 0:
            self._down = now
        elif self._down >= 0:
            held = t.ticks_diff(now, self._down)
            self._down = -1
            self._put(2 if held >= _LONG_MS else 1)
            if held >= FORGET_MS and self.on_forget is not None:
                self.on_forget()
            elif held >= PAIRING_MS and self.on_pairing is not None:
                self.on_pairing()

    def _put(self, code):
        nh = (self.qh + 1) % _QUEUE
        if nh != self.qt:               # full: the press is dropped
            self.q[self.qh] = code
            self.qh = nh
            self.presses += 1

    def read_button(self):
        if self.qt == self.qh:
            return 0
        code = self.q[self.qt]
        self.qt = (self.qt + 1) % _QUEUE
        return code

    # ---- patterns ------------------------------------------------------

    def cue(self, cue):
        self.show(_BY_CUE[cue] if 0 <= cue < len(_BY_CUE) else _REST)

    def alert(self):
        self.show(_ALERT)

    def pairing(self, on=True):
        """Blink while BLE pairing is open; pairing(False) ends the blinking
        (unless a cue has replaced it meanwhile)."""
        if on:
            self.show(_PAIRING)
        elif self.pattern is _PAIRING:
            self.show(_REST)

    def heap_low(self):
        self.show(_HEAP_LOW)

    def show(self, pattern):
        self.pattern = pattern
        self.step = 0
        self.left = 0
        self._apply(pattern[0])
        self._wake.set()

    def _apply(self, s):
        ms, led, tone, vib = s
        if self.led is not None:
            self.led.value(led)
        if self.vib is not None:
            self.vib.value(vib)
        if self.pwm is not None:
            if tone:
                self.pwm.freq(tone)
                self.pwm.duty_u16(32768)
            else:
                self.pwm.duty_u16(0)
        self.left = ms

    async def play(self):
        while True:
            if self.left <= 0:
                # a 0 ms step holds until the next cue
                await self._wake.wait()
                self._wake.clear()
                continue
            await asyncio.sleep_ms(_TICK_MS)
            self.left -= _TICK_MS
            if self.left > 0:
                continue
            p = self.pattern
            self.step += 1
            if self.step >= len(p):
                continue
            if p[self.step] is None:
                self.step = 0
            self._apply(p[self.step])

    def off(self):
        self.show(_REST)
