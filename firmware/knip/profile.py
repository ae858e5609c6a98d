# Board profiles: which pins, which sensor driver, which rate and which
# calibration constants a board uses (hardware/profiles/*.json, deployed as
# /profile.json). One validator for the device (at boot) and the host
# (`knip profile check`, `knip deploy`): every error names the field and
# says what to use instead. Portable: no machine, no bluetooth.
import json

CHIP = "esp32"
# The module on the board: "wrover" (ESP32-WROVER-E, e.g. ESP32-DevKitC-VE:
# PSRAM, the stock ESP32_GENERIC SPIRAM firmware, megabytes of heap; the
# reference board) or "wroom" (ESP32-WROOM-32E, no PSRAM: about 110 KB of
# heap, which Knip outgrows unless its modules are frozen into the firmware).
MODULES = ("wrover", "wroom")
MODULE = "wrover"               # when a profile does not say
_GPIO = (0, 1, 2, 3, 4, 5, 12, 13, 14, 15, 16, 17, 18, 19, 21, 22, 23, 25, 26, 27,
         32, 33, 34, 35, 36, 37, 38, 39)
_ADC1 = (32, 33, 34, 35, 36, 37, 38, 39)
_INPUT_ONLY = (34, 35, 36, 37, 38, 39)
_FLASH = (6, 7, 8, 9, 10, 11)   # the SPI flash (and a WROVER's PSRAM data lines)
_PSRAM = (16, 17)               # WROVER: PSRAM chip select and clock, not on the headers
_DAC = (25, 26)
_UART0 = (1, 3)                 # the USB serial link (REPL) itself
# the pin lists the messages suggest, per module
_VALID = {"wroom": "0-5, 12-19, 21-23, 25-27, 32-39", "wrover": "0-5, 12-15, 18, 19, 21-23, 25-27, 32-39"}
_OUTPUTS = {"wroom": "0-5, 12-19, 21-23, 25-27, 32, 33", "wrover": "0-5, 12-15, 18, 19, 21-23, 25-27, 32, 33"}
_ATTEN = (0, 2.5, 6, 11)
_ADS_RATES = (125, 250, 500, 1000, 2000, 4000, 8000)
_ADS_GAINS = (1, 2, 3, 4, 6, 8, 12)

# driver -> (signal, {field: kind}); kinds: "in" input pin, "adc" ADC1 pin,
# "out" output pin, "io" bidirectional pin, "pin?" optional input pin,
# "int" positive int, "num" number, "str", plus the special checks below
DRIVERS = {
    "analog_pressure": ("pressure", {"pin": "adc", "atten_db": "atten", "zero_uv": "uv",
                                     "uv_per_unit": "pos", "counts_per_unit": "cpu"}),
    "hx710b": ("pressure", {"dout": "in", "sck": "out", "rate": "hxrate", "raw_per_unit": "pos",
                            "counts_per_unit": "cpu"}),
    "mprls": ("pressure", {"sda": "io", "scl": "out", "addr": "i2c", "eoc": "pin?",
                           "counts_per_unit": "cpu"}),
    "myoware": ("emg", {"pin": "adc", "atten_db": "atten", "mode": "mode", "uv_per_unit": "pos",
                        "counts_per_unit": "cpu"}),
    "ads1292r": ("emg", {"sclk": "out", "mosi": "out", "miso": "in", "cs": "out", "drdy": "in",
                         "start": "out", "reset": "out", "spi_id": "spi", "gain": "gain",
                         "channel": "chan", "counts_per_unit": "cpu"}),
}
IMUS = {"mpu6050": (0x68, 0x69), "lsm6ds3": (0x6A, 0x6B)}
SIGNALS = ("pressure", "emg")
UNITS = {"pressure": "cmH2O", "emg": "uV"}
_TOP = ("profile", "title", "chip", "module", "signal", "rate_hz", "ring", "sensor", "abdominal", "imu",
        "ui", "safe_mode_pin", "battery", "ble", "loopback")
_OPTIONAL = ("title", "module", "ring", "abdominal", "imu", "safe_mode_pin", "battery", "ble", "loopback")


class ProfileError(ValueError):
    pass


def _int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _num(v):
    return (_int(v) or isinstance(v, float)) and not isinstance(v, bool)


class _Check:
    def __init__(self, module=MODULE):
        self.errors = []
        self.used = {}          # pin -> field, to catch a pin used twice
        self.module = module

    def err(self, field, text):
        self.errors.append("%s: %s" % (field, text))

    def pin(self, field, v, kind, shared=False):
        if v is None and kind == "pin?":
            return
        if not _int(v):
            self.err(field, "%r is not a GPIO number" % (v,))
            return
        if v in _FLASH:
            self.err(field, "GPIO%d is wired to the SPI flash and cannot be used; pick a free pin "
                            "(see hardware/WIRING.md)" % v)
            return
        if v in _UART0:
            self.err(field, "GPIO%d is the USB serial port (the REPL); pick another pin" % v)
            return
        if v in _PSRAM and self.module == "wrover":
            self.err(field, "GPIO%d is taken by the PSRAM of the ESP32-WROVER module (it is not on the "
                            "DevKitC-VE's headers); pick a free pin (hardware/WIRING.md), or set "
                            "\"module\": \"wroom\" if the board has no PSRAM" % v)
            return
        if v not in _GPIO:
            self.err(field, "GPIO%d does not exist on the ESP32; valid pins are %s" % (v, _VALID[self.module]))
            return
        if kind == "adc" and v not in _ADC1:
            self.err(field, "GPIO%d is not an ADC1 pin (ADC2 fails while Bluetooth runs); use "
                            "GPIO32-39" % v)
            return
        if kind in ("out", "io") and v in _INPUT_ONLY:
            self.err(field, "GPIO%d is input only and cannot drive this line; use an output-capable "
                            "pin (%s)" % (v, _OUTPUTS[self.module]))
            return
        if kind == "dac" and v not in _DAC:
            self.err(field, "GPIO%d has no DAC; the ESP32's DAC is on GPIO25 or GPIO26" % v)
            return
        other = self.used.get(v)
        if other is not None and not shared:
            self.err(field, "GPIO%d is already used by %s; give each line its own pin" % (v, other))
            return
        self.used[v] = field

    def sensor(self, field, sec, signal, rate):
        if not isinstance(sec, dict):
            self.err(field, "must be an object with a \"driver\" key")
            return
        drv = sec.get("driver")
        if drv not in DRIVERS:
            self.err(field + ".driver", "%r is not a driver; use one of %s"
                     % (drv, ", ".join(sorted(DRIVERS))))
            return
        kind, fields = DRIVERS[drv]
        if kind != signal:
            self.err(field + ".driver", "%s measures %s but the profile's signal is %s"
                     % (drv, kind, signal))
        for k in sorted(sec):
            if k != "driver" and k not in fields:
                self.err(field + "." + k, "unknown field for %s; known: %s"
                         % (drv, ", ".join(sorted(fields))))
        for k in sorted(fields):
            how = fields[k]
            f = field + "." + k
            if k not in sec:
                if how != "pin?":
                    self.err(f, "missing (%s needs it)" % drv)
                continue
            v = sec[k]
            if how in ("adc", "in", "out", "io", "pin?"):
                # the I2C bus is shared with the IMU
                self.pin(f, v, how, shared=k in ("sda", "scl"))
            elif how == "atten":
                if v not in _ATTEN:
                    self.err(f, "%r dB is not an ADC attenuation; use 0, 2.5, 6 or 11" % (v,))
            elif how == "uv":
                if not _int(v) or not 0 <= v <= 3300000:
                    self.err(f, "%r must be microvolts at the ADC pin, 0-3300000" % (v,))
            elif how == "pos":
                if not _num(v) or v <= 0:
                    self.err(f, "%r must be a number above 0" % (v,))
            elif how == "cpu":
                if not _int(v) or not 1 <= v <= 1000:
                    self.err(f, "%r must be an integer 1-1000 (sample counts per %s)"
                             % (v, UNITS.get(kind, "unit")))
            elif how == "hxrate":
                if v not in (10, 40):
                    self.err(f, "%r: the HX710B converts at 10 or 40 Hz" % (v,))
                elif rate is not None and rate != v:
                    self.err("rate_hz", "%r differs from %s %d Hz; set both to the same rate"
                             % (rate, f, v))
            elif how == "i2c":
                if v != 0x18:
                    self.err(f, "%r: the MPRLS answers at address 24 (0x18) only" % (v,))
            elif how == "mode":
                if v not in ("envelope", "raw"):
                    self.err(f, "%r must be \"envelope\" (ENV output, 100 Hz) or \"raw\" (RAW output, "
                                "1000 Hz)" % (v,))
                elif rate is None:
                    pass
                elif v == "envelope" and not 20 <= rate <= 200:
                    self.err("rate_hz", "%r: the MyoWare envelope is sampled at 20-200 Hz (100 is "
                                        "usual)" % (rate,))
                elif v == "raw" and not 500 <= rate <= 2000:
                    self.err("rate_hz", "%r: raw EMG needs 500-2000 Hz (1000 is usual)" % (rate,))
            elif how == "spi":
                if v not in (1, 2):
                    self.err(f, "%r: use hardware SPI bus 1 (HSPI) or 2 (VSPI)" % (v,))
            elif how == "gain":
                if v not in _ADS_GAINS:
                    self.err(f, "%r is not an ADS1292R gain; use one of 1, 2, 3, 4, 6, 8, 12" % (v,))
            elif how == "chan":
                if v not in (1, 2):
                    self.err(f, "%r: the ADS1292R has channels 1 and 2" % (v,))
        if rate is None:
            return
        if drv == "ads1292r" and rate not in _ADS_RATES:
            self.err("rate_hz", "%r is not an ADS1292R data rate; use 500 or 1000 (or 125, 250, "
                                "2000, 4000, 8000)" % (rate,))
        if drv == "analog_pressure" and not 10 <= rate <= 200:
            self.err("rate_hz", "%r: sample pressure at 10-200 Hz (100 is usual)" % (rate,))
        if drv == "mprls" and not 10 <= rate <= 100:
            self.err("rate_hz", "%r: the MPRLS needs about 5 ms per conversion; use 10-100 Hz" % (rate,))


    # ---- the sections of a profile (validate() calls them in this order) ----

    def top(self, doc):
        """Fields, name, chip, module, signal, rate and ring; returns (signal, rate)."""
        for k in sorted(doc):
            if k not in _TOP:
                self.err(k, "unknown field; known fields: %s" % ", ".join(_TOP))
        for k in _TOP:
            if k not in doc and k not in _OPTIONAL:
                self.err(k, "missing")
        name = doc.get("profile")
        if name is not None and (not isinstance(name, str) or not name or len(name) > 32
                                 or [ch for ch in name if not (ch.isalpha() or ch.isdigit() or ch in "-_")]):
            self.err("profile", "%r must be a short name of letters, digits, - and _" % (name,))
        if "chip" in doc and doc["chip"] != CHIP:
            self.err("chip", "%r is not supported; Knip runs on the classic ESP32 (\"esp32\")" % (doc["chip"],))
        if "module" in doc and doc["module"] not in MODULES:
            self.err("module", "%r: use \"wrover\" (ESP32-WROVER-E with PSRAM, e.g. ESP32-DevKitC-VE: the "
                               "reference board) or \"wroom\" (ESP32-WROOM-32E, no PSRAM: needs the frozen "
                               "build, docs/DEPLOY.md)" % (doc["module"],))
        signal = doc.get("signal")
        if "signal" in doc and signal not in SIGNALS:
            self.err("signal", "%r must be \"pressure\" or \"emg\"" % (signal,))
        rate = doc.get("rate_hz")
        if "rate_hz" in doc and (not _int(rate) or not 10 <= rate <= 8000):
            self.err("rate_hz", "%r must be an integer sample rate, 10-8000 Hz" % (rate,))
            rate = None                 # no rate rule of a driver can be judged then
        ring = doc.get("ring", 256)
        if not _int(ring) or not 16 <= ring <= 4096:
            self.err("ring", "%r must be an integer 16-4096 (sample slots)" % (ring,))
        return signal, rate

    def abdominal(self, doc, signal, rate):
        self.sensor("abdominal", doc["abdominal"], signal, rate)
        a, s = doc["abdominal"], doc.get("sensor")
        if isinstance(a, dict) and isinstance(s, dict) and a.get("driver") != s.get("driver"):
            self.err("abdominal.driver", "%r differs from sensor.driver %r; both channels must use the "
                                         "same driver" % (a.get("driver"), s.get("driver")))
        elif isinstance(a, dict) and a.get("driver") == "mprls" and isinstance(s, dict) \
                and (a.get("sda"), a.get("scl")) == (s.get("sda"), s.get("scl")):
            self.err("abdominal.sda", "both MPRLS answer at 0x18: give the second one its own SDA/SCL "
                                      "pins (a second I2C bus)")

    def imu(self, imu):
        if not isinstance(imu, dict) or imu.get("driver") not in IMUS:
            self.err("imu.driver", "use one of %s, or set imu to null" % ", ".join(sorted(IMUS)))
            return
        for k in ("sda", "scl"):
            self.pin("imu." + k, imu.get(k), "io" if k == "sda" else "out", shared=True)
        addrs = IMUS[imu["driver"]]
        if imu.get("addr", addrs[0]) not in addrs:
            self.err("imu.addr", "%r: the %s answers at %d or %d" % (imu.get("addr"), imu["driver"],
                                                                   addrs[0], addrs[1]))

    def ui(self, ui):
        if not isinstance(ui, dict):
            self.err("ui", "must be an object with led, buzzer, vibration and button pins")
            return
        for k in sorted(ui):
            if k not in ("led", "buzzer", "vibration", "button"):
                self.err("ui." + k, "unknown field; known: button, buzzer, led, vibration")
        for k in ("led", "buzzer", "vibration"):
            if ui.get(k) is not None:
                self.pin("ui." + k, ui[k], "out")
        if ui.get("led") is None and ui.get("buzzer") is None and ui.get("vibration") is None:
            self.err("ui", "needs at least one of led, buzzer, vibration: she must see or feel the cues")
        if "button" not in ui:
            self.err("ui.button", "missing (pain check-ins and pairing need a button)")
        elif ui["button"] in _INPUT_ONLY:
            self.err("ui.button", "GPIO%r has no pull-up (GPIO34-39); use a pin with one, "
                                  "e.g. GPIO33" % ui["button"])
        else:
            self.pin("ui.button", ui["button"], "in")

    def safe_pin(self, safe, ui):
        if safe is None or (isinstance(ui, dict) and safe == ui.get("button")):
            return
        if safe in _INPUT_ONLY:
            self.err("safe_mode_pin", "GPIO%r has no pull-up; use the button pin or another pin with "
                                      "one" % safe)
        else:
            self.pin("safe_mode_pin", safe, "in")

    def battery(self, bat):
        if not isinstance(bat, dict):
            self.err("battery", "must be {\"pin\": ADC1 pin, \"divider\": ratio} or null")
            return
        self.pin("battery.pin", bat.get("pin"), "adc")
        d = bat.get("divider")
        if not _num(d) or not 1 <= d <= 10:
            self.err("battery.divider", "%r must be the divider ratio Vbat/Vpin, 1-10 "
                                        "(2 for two equal resistors)" % (d,))

    def ble(self, ble):
        if not isinstance(ble, dict):
            self.err("ble", "must be {\"enabled\": true, \"name\": \"Knip\"} or null")
            return
        nm = ble.get("name", "Knip")
        if not isinstance(nm, str) or not 1 <= len(nm) <= 20:
            self.err("ble.name", "%r must be 1-20 characters (it is advertised)" % (nm,))
        if not isinstance(ble.get("enabled", True), bool):
            self.err("ble.enabled", "must be true or false")

    def loopback(self, lb, sen):
        if not isinstance(lb, dict):
            self.err("loopback", "must be {\"dac_pin\": 25, \"rest_code\": ..., \"squeeze_code\": ...} or null")
            return
        self.pin("loopback.dac_pin", lb.get("dac_pin"), "dac")
        for k in ("rest_code", "squeeze_code"):
            v = lb.get(k)
            if not _int(v) or not 0 <= v <= 190:
                self.err("loopback." + k, "%r must be a DAC code 0-190 (above ~190 the 11 dB ADC is no "
                                          "longer linear)" % (v,))
        if _int(lb.get("rest_code")) and _int(lb.get("squeeze_code")) \
                and lb["squeeze_code"] <= lb["rest_code"]:
            self.err("loopback.squeeze_code", "must be above rest_code")
        if isinstance(sen, dict) and sen.get("driver") != "analog_pressure":
            self.err("loopback", "the DAC loopback feeds an ADC pin: sensor.driver must be "
                                 "analog_pressure")


def module(doc):
    """The profile's module, "wrover" (PSRAM) or "wroom"; "wrover" when it does not say."""
    m = doc.get("module", MODULE) if isinstance(doc, dict) else MODULE
    return m if m in MODULES else MODULE


def validate(doc):
    """Errors of a profile document (a dict), each "field: problem; fix". [] = valid."""
    if not isinstance(doc, dict):
        return ["profile: must be a JSON object (see hardware/profiles/)"]
    c = _Check(module(doc))
    signal, rate = c.top(doc)
    if "sensor" in doc:
        c.sensor("sensor", doc["sensor"], signal, rate)
    if doc.get("abdominal") is not None:
        c.abdominal(doc, signal, rate)
    if doc.get("imu") is not None:
        c.imu(doc["imu"])
    if "ui" in doc:
        c.ui(doc["ui"])
    c.safe_pin(doc.get("safe_mode_pin"), doc.get("ui"))
    if doc.get("battery") is not None:
        c.battery(doc["battery"])
    if doc.get("ble") is not None:
        c.ble(doc["ble"])
    if doc.get("loopback") is not None:
        c.loopback(doc["loopback"], doc.get("sensor"))
    return c.errors


def parse(text, where="profile"):
    """A validated profile from JSON text; raises ProfileError naming every wrong field."""
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise ProfileError("%s: not JSON (%s); check for a missing comma or quote" % (where, e))
    errors = validate(doc)
    if errors:
        raise ProfileError("%s: %s" % (where, "; ".join(errors)))
    return doc


def load(path):
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        raise ProfileError("%s: no profile; deploy one with `make deploy PORT=... PROFILE=...`" % path)
    return parse(text, path)


def channels(doc):
    return 2 if doc.get("abdominal") is not None else 1


def ble_name(doc):
    ble = doc.get("ble") or {}
    return ble.get("name", "Knip") if ble.get("enabled", True) else None
