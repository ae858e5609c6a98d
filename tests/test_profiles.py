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
