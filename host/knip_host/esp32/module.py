"""Which ESP32 module a board carries, a WROVER (PSRAM) or a WROOM, and what
that means for Knip (hardware/PARTS.md, docs/DEPLOY.md). Three witnesses:

- esptool's chip report (every esptool command prints it on connecting)
  names the chip in the module. It sees PSRAM only inside the chip package
  (ESP32-D0WDR2-V3, ESP32-PICO-V3-02); the PSRAM of an ESP32-WROVER-E is a
  chip of its own next to the ESP32, which esptool cannot see.
- MicroPython on the board: its machine name says which image runs (the
  SPIRAM build or the plain one), its heap says how much room there is, and
  the IDF heap holds the PSRAM the SPIRAM build found. The plain build never
  looks for PSRAM, so only the SPIRAM build can say "none here".
- what people declare: `--psram`/`--no-psram`, a profile's "module".
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from knip import profile as PR

from . import release as R

# chips with PSRAM in the package (esptool targets/esp32.py: package versions 6 and 7)
EMBEDDED_PSRAM = ("ESP32-PICO-V3-02", "ESP32-D0WDR2-V3")

WROOM_HELP = "docs/DEPLOY.md, \"Plain ESP32 (WROOM): the frozen build\""


@dataclass
class Chip:
    """What esptool said about the chip it connected to."""
    name: str                                   # e.g. ESP32-D0WD-V3
    revision: str = ""                          # e.g. v3.1
    features: list[str] = field(default_factory=list)

    @property
    def embedded_psram(self) -> bool:
        return self.name in EMBEDDED_PSRAM or "Embedded PSRAM" in self.features

    @property
    def classic(self) -> bool:
        """The classic ESP32 (not S2, S3, C3, ...)."""
        return re.fullmatch(r"ESP32(-[A-Z0-9]+)*", self.name) is not None and not re.match(
            r"ESP32-(S|C|H|P)\d", self.name)


def parse_chip(text: str) -> Chip | None:
    """The chip report in esptool's output: esptool 5 prints
    `Chip type:          ESP32-D0WD-V3 (revision v3.1)` and `Features:  ...`,
    esptool 4 `Chip is ESP32-D0WD-V3 (revision v3.1)` and `Features: ...`."""
    m = re.search(r"^(?:Chip type:|Chip is)\s*(\S+)(?: \(revision (v[\d.]+)\))?", text, re.MULTILINE)
    if not m or "Secure Download Mode" in text[m.start():m.end() + 40]:
        return None
    f = re.search(r"^Features:\s*(.+)$", text, re.MULTILINE)
    feats = [x.strip() for x in f.group(1).split(",")] if f else []
    return Chip(m.group(1), m.group(2) or "", feats)


def firmware_variant(machine: str) -> str | None:
    """The ESP32_GENERIC variant a board runs, from sys.implementation._machine:
    "SPIRAM", "" (plain) or None (another build)."""
    for variant in (R.SPIRAM, ""):
        if machine == R.MACHINES[variant]:
            return variant
    if "SPIRAM" in machine.upper():              # another board's SPIRAM build, or before v1.21: "(spiram)"
        return R.SPIRAM
    return None


def is_spiram(machine: str) -> bool:
    """A SPIRAM build runs (sys.implementation._machine)."""
    return firmware_variant(machine) == R.SPIRAM


def psram_state(spiram: bool, psram: int | None) -> str:
    """"present", "absent" (the SPIRAM build looked and found none), "unused"
    (the plain build does not look: a WROVER's PSRAM lies idle under it) or
    "unknown" (no ESP32, e.g. the MicroPython unix port). `spiram`: the
    firmware is a SPIRAM build; `psram`: bytes of PSRAM in the IDF heap."""
    if psram is None:
        return "unknown"
    if psram > 0:
        return "present"
    return "absent" if spiram else "unused"


def kb(n: int) -> str:
    return f"{n / 1048576:.1f} MB" if n >= 1048576 else f"{n / 1024:.0f} KB"


def describe(heap: int | None, free: int | None, psram: int | None, spiram: bool) -> str:
    """One line on the board's memory, as `knip info`, flash and deploy print it."""
    parts = []
    if heap:
        parts.append(f"heap {kb(heap)}" + (f" ({kb(free)} free)" if free is not None else ""))
    state = psram_state(spiram, psram)
    parts.append({"present": f"PSRAM {kb(psram or 0)} (WROVER)",
                  "absent": "no PSRAM (a WROOM: the SPIRAM image found none)",
                  "unused": "PSRAM not in use (the plain image never looks for it)",
                  "unknown": "PSRAM unknown"}[state])
    return ", ".join(parts)


def choose_variant(psram: bool | None, module: str | None, app_info: dict | None) -> tuple[str, str]:
    """Which image `knip flash` writes, and why: --psram/--no-psram first,
    then the profile's module, then what the Knip app on the board reported;
    else the SPIRAM image of the reference board (the check after flashing
    tells a WROOM)."""
    if psram is not None:
        return (R.SPIRAM, "--psram") if psram else ("", "--no-psram")
    if module in R.VARIANT_OF_MODULE:
        return R.VARIANT_OF_MODULE[module], f"the profile says \"module\": \"{module}\""
    mem = app_info or {}
    state = psram_state(bool(mem.get("spiram")), mem.get("psram"))
    if state == "present":
        return R.SPIRAM, f"the Knip app on the board reported {kb(mem['psram'])} of PSRAM"
    if state == "absent":
        return "", "the Knip app on the board reported no PSRAM (a WROOM)"
    return R.SPIRAM, ("the reference board is an ESP32-WROVER-E with PSRAM (give --no-psram, or a "
                      "profile with \"module\": \"wroom\", for a WROOM)")


def variant_name(variant: str) -> str:
    return R.board_id(variant) + (" (SPIRAM: for a WROVER)" if variant == R.SPIRAM else " (plain: for a WROOM)")


def chip_mismatch(chip: Chip | None, variant: str | None, port: str) -> str | None:
    """A warning when the chip esptool saw has PSRAM inside but the image
    written leaves it unused."""
    if chip is not None and chip.embedded_psram and variant == "":
        return (f"{chip.name} has PSRAM in its package, and the plain image leaves it unused: run "
                f"`knip flash --port {port} --psram` for megabytes of heap")
    return None


def after_flash(dev: dict, variant: str | None, port: str) -> list[str]:
    """Warnings from the board's own report right after flashing (dev as
    mpremote.parse_device_version returns it)."""
    state = psram_state(is_spiram(dev.get("machine", "")), dev.get("psram"))
    heap = dev.get("heap") or 0
    if state == "absent":
        return [f"this board has no PSRAM: it is a WROOM (or its PSRAM failed), and the SPIRAM image "
                f"gives it only {kb(heap)} of heap, too little for Knip loaded from files. Either use an "
                f"ESP32-WROVER-E board (ESP32-DevKitC-VE: hardware/PARTS.md), or keep this one with the "
                f"plain image (`knip flash --port {port} --no-psram`) and the frozen build ({WROOM_HELP})"]
    if variant == "" and heap and heap < R.HEAP_NEEDED:
        return [f"the plain image gives this board {kb(heap)} of heap, too little for Knip loaded from "
                f"files (`knip deploy` will refuse it): on a WROVER flash the SPIRAM image "
                f"(`knip flash --port {port} --psram`); on a WROOM use the frozen build ({WROOM_HELP})"]
    return []


def profile_pins(prof: dict) -> set[int]:
    """The GPIOs a (checked) profile wires."""
    pins = set()
    for sec in ("sensor", "abdominal"):
        s = prof.get(sec)
        if isinstance(s, dict) and s.get("driver") in PR.DRIVERS:
            kinds = PR.DRIVERS[s["driver"]][1]
            pins |= {v for k, v in s.items() if kinds.get(k) in ("in", "adc", "out", "io", "pin?")}
    for sec, keys in (("ui", ("led", "buzzer", "vibration", "button")), ("imu", ("sda", "scl")),
                      ("battery", ("pin",)), ("loopback", ("dac_pin",))):
        s = prof.get(sec)
        if isinstance(s, dict):
            pins |= {s[k] for k in keys if s.get(k) is not None}
    if prof.get("safe_mode_pin") is not None:
        pins.add(prof["safe_mode_pin"])
    return {p for p in pins if isinstance(p, int)}


def deploy_problem(dev: dict, prof: dict, port: str, profile: str) -> str | None:
    """Why the board cannot run Knip loaded from files (None: it can).
    dev as mpremote.parse_device_version returns it, prof the checked profile."""
    heap, psram, machine = dev.get("heap"), dev.get("psram"), dev.get("machine", "")
    module = prof.get("module", "wrover")
    state = psram_state(is_spiram(machine), psram)
    used = sorted(p for p in profile_pins(prof) if p in (16, 17))
    if state == "present" and used and module == "wroom":
        return (f"the board has PSRAM ({kb(psram or 0)}), which takes GPIO16/17, but the profile {profile} "
                f"says \"module\": \"wroom\" and wires GPIO{'/'.join(map(str, used))}: move those lines to "
                "free pins and set \"module\": \"wrover\" (hardware/WIRING.md)")
    if heap is None or heap >= R.HEAP_NEEDED or dev.get("frozen"):
        return None
    have = f"the board has {kb(heap)} of heap; Knip loaded from files needs about {kb(R.HEAP_NEEDED)}"
    if firmware_variant(machine) == "" and module == "wrover":
        return (f"the board runs the plain {R.BOARD} image, which leaves a WROVER's PSRAM unused: {have}. "
                f"Run `knip flash --port {port} --profile {profile}` (it writes the SPIRAM image for a "
                "\"wrover\" profile), then deploy again")
    why = ("it runs the SPIRAM image but has no PSRAM: a WROOM" if state == "absent"
           else "a board without PSRAM (a WROOM)")
    return (f"{have}, and this is {why}, where it stops at start-up or at the first BLE connection. "
            f"Use an ESP32-WROVER-E board (ESP32-DevKitC-VE) with the SPIRAM image (`knip flash --port "
            f"{port} --psram`), or put the frozen build on this one ({WROOM_HELP}); --small-heap deploys "
            "anyway")
