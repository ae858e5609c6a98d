# The bench the virtual trainer's ESP32 sits on (hardware/HIL.md): the HIL
# rig's wire from DAC1 (GPIO25) to ADC1 GPIO34, a LiPo at 3.9 V on the
# GPIO35 divider, and a profile's sensors connected and at rest.
from simboard import const

_DAC = const(25)
_ADC = const(34)
_BATTERY = const(35)
_BATTERY_UV = const(1950000)     # 3.9 V through the 1:2 divider
_NOISE_UV = const(6000)          # +- ADC noise: a quiet ESP32 ADC reads a few mV
_MID_RAIL_UV = const(1650000)    # MyoWare RAW at rest
_ENVELOPE_UV = const(60000)      # MyoWare envelope of a relaxed muscle


def rig(machine):
    """Wire the rig and the battery into a simulated machine; returns it."""
    machine.wire(_ADC, _DAC, _NOISE_UV)
    machine.set_adc(_BATTERY, _BATTERY_UV)
    return machine


def at_rest(machine, prof):
    """The profile's sensors as their ADC pins see them with the probe in
    place and relaxed, so the drivers' start-up checks pass; a sensor pin
    on the rig's wire reads the DAC at the loopback's rest code."""
    lb = prof.get("loopback")
    for key in ("sensor", "abdominal"):
        sec = prof.get(key)
        if not sec or "pin" not in sec:
            continue
        pin = sec["pin"]
        if lb is not None and machine.wired(pin) == lb["dac_pin"]:
            machine.DAC(machine.Pin(lb["dac_pin"])).write(lb["rest_code"])
        elif sec["driver"] == "analog_pressure":
            machine.set_adc(pin, sec["zero_uv"])
        elif sec.get("mode") == "raw":
            machine.set_adc(pin, _MID_RAIL_UV)
        else:
            machine.set_adc(pin, _ENVELOPE_UV)
