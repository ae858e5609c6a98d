"""The shipped board profiles (hardware/profiles/*.json) are valid, and the
validator the device runs at boot is the one the host runs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from knip import profile as PR

ROOT = Path(__file__).resolve().parent.parent
PROFILES = sorted((ROOT / "hardware" / "profiles").glob("*.json"))


def test_profiles_exist_for_both_builds_and_the_rig():
    names = {p.stem for p in PROFILES}
    assert {"pressure-analog", "emg-myoware", "hil-loopback"} <= names
    assert {json.loads(p.read_text())["signal"] for p in PROFILES} == {"pressure", "emg"}


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.stem)
def test_shipped_profile_is_valid_and_named_after_its_file(path):
    doc = PR.load(str(path))
    assert doc["profile"] == path.stem
    assert PR.validate(doc) == []


def test_load_names_every_wrong_field(tmp_path):
    doc = json.loads((ROOT / "hardware" / "profiles" / "pressure-analog.json").read_text())
    doc["sensor"]["pin"] = 26
    doc["ui"]["led"] = 35
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(PR.ProfileError) as e:
        PR.load(str(bad))
    text = str(e.value)
    assert "sensor.pin: GPIO26 is not an ADC1 pin" in text and "ui.led: GPIO35 is input only" in text
    with pytest.raises(PR.ProfileError) as e:
        PR.load(str(tmp_path / "missing.json"))
    assert "make deploy" in str(e.value)


PIN_FIELDS = ("pin", "dout", "sck", "sda", "scl", "eoc", "sclk", "mosi", "miso", "cs", "drdy", "start",
              "reset", "led", "buzzer", "vibration", "button", "dac_pin")


def _pins(doc: dict) -> dict[str, int]:
    found = {}
    for sec in ("sensor", "abdominal", "imu", "ui", "battery", "loopback"):
        for k, v in (doc.get(sec) or {}).items():
            if k in PIN_FIELDS and isinstance(v, int):
                found[f"{sec}.{k}"] = v
    if doc.get("safe_mode_pin") is not None:
        found["safe_mode_pin"] = doc["safe_mode_pin"]
    return found


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.stem)
def test_shipped_profile_is_for_the_wrover_reference_board(path):
    """ESP32-WROVER-E (DevKitC-VE): PSRAM on GPIO16/17, flash on 6-11, USB serial on 1/3."""
    doc = json.loads(path.read_text())
    assert doc["module"] == "wrover" and PR.module(doc) == "wrover"
    taken = {16, 17} | set(range(6, 12)) | {1, 3}
    assert not {f: p for f, p in _pins(doc).items() if p in taken}


def test_the_hil_rig_still_runs_on_a_wrover():
    doc = PR.load(str(ROOT / "hardware" / "profiles" / "hil-loopback.json"))
    assert doc["loopback"]["dac_pin"] == 25 and doc["sensor"]["pin"] in range(32, 40)


def test_ads1292r_moved_off_the_psram_pins():
    doc = PR.load(str(ROOT / "hardware" / "profiles" / "emg-ads1292r.json"))
    assert (doc["sensor"]["start"], doc["sensor"]["reset"]) == (32, 26)
    wroom = dict(doc, module="wroom", sensor=dict(doc["sensor"], start=16, reset=17))
    assert PR.validate(wroom) == []          # a WROOM board may keep the old wiring
    errs = PR.validate(dict(wroom, module="wrover"))
    assert [e.split(":")[0] for e in errs] == ["sensor.reset", "sensor.start"], errs
