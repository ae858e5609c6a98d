# Portable tests of board-profile validation (CPython and MicroPython run the
# same bodies: the device checks /profile.json at boot with the same code the
# host uses for `knip profile check` and `knip deploy`).
import json
from knip import profile as PR


def _good():
    return {"profile": "t", "title": "test", "chip": "esp32", "signal": "pressure", "rate_hz": 100,
            "ring": 256,
            "sensor": {"driver": "analog_pressure", "pin": 34, "atten_db": 11, "zero_uv": 333333,
                       "uv_per_unit": 6538, "counts_per_unit": 20},
            "abdominal": None, "imu": None,
            "ui": {"led": 13, "buzzer": 27, "vibration": 14, "button": 33}, "safe_mode_pin": 33,
            "battery": {"pin": 35, "divider": 2}, "ble": {"enabled": True, "name": "Knip"},
            "loopback": None}


def _errors(**change):
    d = _good()
    for k, v in change.items():
        if "__" in k:
            sec, f = k.split("__")
            d[sec] = dict(d[sec])
            d[sec][f] = v
        else:
            d[k] = v
    return PR.validate(d)


def _one(errs, field, words):
    assert len(errs) == 1, errs
    assert errs[0].startswith(field + ":"), errs
    for w in words:
        assert w in errs[0], (w, errs)


def test_good_profile_is_valid_and_round_trips_as_json():
    assert PR.validate(_good()) == []
    doc = PR.parse(json.dumps(_good()))
    assert doc["sensor"]["pin"] == 34 and PR.channels(doc) == 1 and PR.ble_name(doc) == "Knip"


def test_pins_are_checked_against_the_esp32():
    _one(_errors(sensor__pin=25), "sensor.pin", ("ADC1", "GPIO32-39"))
    _one(_errors(sensor__pin=7), "sensor.pin", ("SPI flash",))
    _one(_errors(sensor__pin=40), "sensor.pin", ("does not exist",))
    _one(_errors(ui__led=36), "ui.led", ("input only",))
    _one(_errors(ui__buzzer=13), "ui.buzzer", ("already used by ui.led",))
    _one(_errors(ui__button=39), "ui.button", ("pull-up",))
    _one(_errors(ui__led=1), "ui.led", ("USB serial",))
    _one(_errors(battery__pin=34), "battery.pin", ("already used by sensor.pin",))


def test_fields_and_values_are_named():
    _one(_errors(rate_hz=5), "rate_hz", ("10-8000",))
    _one(_errors(sensor__atten_db=3), "sensor.atten_db", ("0, 2.5, 6 or 11",))
    _one(_errors(sensor__driver="bmp280"), "sensor.driver", ("analog_pressure",))
    _one(_errors(sensor__colour=1), "sensor.colour", ("unknown field",))
    _one(_errors(signal="emg"), "sensor.driver", ("measures pressure",))
    _one(_errors(chip="esp32s3"), "chip", ("classic ESP32",))
    _one(_errors(wifi=True), "wifi", ("unknown field",))
    _one(_errors(ble={"name": "a very long trainer name"}), "ble.name", ("1-20",))
    d = _good()
    del d["sensor"]["uv_per_unit"]
    _one(PR.validate(d), "sensor.uv_per_unit", ("missing",))
    try:
        PR.parse("{\"profile\": ")
    except PR.ProfileError as e:
        assert "not JSON" in str(e)
    else:
        raise AssertionError("bad JSON accepted")


def test_driver_rules():
    hx = {"driver": "hx710b", "dout": 19, "sck": 18, "rate": 40, "raw_per_unit": 60000,
          "counts_per_unit": 20}
    assert _errors(sensor=hx, rate_hz=40) == []
    _one(_errors(sensor=hx, rate_hz=100), "rate_hz", ("differs",))
    _one(_errors(sensor=dict(hx, sck=34), rate_hz=40), "sensor.sck", ("input only",))
    ads = {"driver": "ads1292r", "sclk": 18, "mosi": 23, "miso": 19, "cs": 5, "drdy": 4, "start": 32,
           "reset": 26, "spi_id": 2, "gain": 6, "channel": 1, "counts_per_unit": 1}
    assert _errors(signal="emg", sensor=ads, rate_hz=500) == []
    _one(_errors(signal="emg", sensor=ads, rate_hz=600), "rate_hz", ("ADS1292R",))
    _one(_errors(signal="emg", sensor=dict(ads, gain=5), rate_hz=500), "sensor.gain", ("1, 2, 3",))
    myo = {"driver": "myoware", "pin": 34, "atten_db": 11, "mode": "raw", "uv_per_unit": 200,
           "counts_per_unit": 1}
    _one(_errors(signal="emg", sensor=myo, rate_hz=100), "rate_hz", ("raw EMG",))
    mp = {"driver": "mprls", "sda": 21, "scl": 22, "addr": 24, "eoc": None, "counts_per_unit": 20}
    imu = {"driver": "mpu6050", "sda": 21, "scl": 22, "addr": 104}
    assert _errors(sensor=mp, imu=imu) == []          # one I2C bus, shared
    _one(_errors(sensor=dict(mp, addr=0x28)), "sensor.addr", ("0x18",))
    _one(_errors(imu=dict(imu, addr=0x6A)), "imu.addr", ("104 or 105",))
    _one(_errors(sensor=mp, abdominal=mp), "abdominal.sda", ("0x18",))
    assert _errors(sensor=mp, abdominal=dict(mp, sda=25, scl=26, eoc=None)) == []


def test_second_channel_and_loopback():
    two = dict(_good()["sensor"], pin=36)
    d = _good()
    d["abdominal"] = two
    assert PR.validate(d) == [] and PR.channels(d) == 2
    d["abdominal"] = dict(two, pin=34)
    _one(PR.validate(d), "abdominal.pin", ("already used",))
    lb = {"dac_pin": 25, "rest_code": 30, "squeeze_code": 150}
    assert _errors(loopback=lb) == []
    _one(_errors(loopback=dict(lb, dac_pin=27)), "loopback.dac_pin", ("GPIO25 or GPIO26",))
    _one(_errors(loopback=dict(lb, squeeze_code=240)), "loopback.squeeze_code", ("0-190",))
    _one(_errors(loopback=dict(lb, squeeze_code=20)), "loopback.squeeze_code", ("above rest_code",))


def test_module_wrover_keeps_the_psram_pins_free():
    # the reference board is a WROVER (PSRAM on GPIO16/17); a profile that does not say is one
    assert PR.module(_good()) == "wrover" and PR.module(dict(_good(), module="wroom")) == "wroom"
    assert _errors(module="wrover") == [] and _errors(module="wroom") == []
    _one(_errors(ui__led=16), "ui.led", ("GPIO16", "PSRAM", "\"module\": \"wroom\""))
    _one(_errors(module="wrover", ui__vibration=17), "ui.vibration", ("GPIO17", "PSRAM"))
    ads = {"driver": "ads1292r", "sclk": 18, "mosi": 23, "miso": 19, "cs": 5, "drdy": 4, "start": 16,
           "reset": 17, "spi_id": 2, "gain": 6, "channel": 2, "counts_per_unit": 1}
    errs = _errors(signal="emg", sensor=ads, rate_hz=500)
    assert len(errs) == 2 and all("PSRAM" in e for e in errs), errs
    # a WROOM board has GPIO16/17 on its headers
    assert _errors(module="wroom", signal="emg", sensor=ads, rate_hz=500) == []
    assert _errors(module="wroom", ui__led=16) == []
    # the suggestions name the pins of that module
    _one(_errors(sensor__pin=24), "sensor.pin", ("12-15, 18, 19",))
    _one(_errors(module="wroom", sensor__pin=24), "sensor.pin", ("12-19",))
    _one(_errors(ui__led=39), "ui.led", ("input only", "12-15, 18, 19"))


def test_module_must_be_wrover_or_wroom():
    _one(_errors(module="wrover-e"), "module", ("wrover", "wroom", "frozen"))
    _one(_errors(module=None), "module", ("wrover", "wroom"))
    assert PR.module(dict(_good(), module="esp32-s3")) == "wrover"     # judged by validate, not here
    assert PR.module([]) == "wrover"
