# The Knip firmware frozen into MicroPython (docs/FROZEN.md): the application,
# the board code, the drivers and links, and aioble's peripheral parts run
# from flash instead of being copied into the GC heap at import.
#
# One file for every build that freezes Knip:
#   ESP32:  make -C ports/esp32 BOARD=ESP32_GENERIC FROZEN_MANIFEST=.../firmware/manifest.py
#           (tools/build-frozen.sh runs it in the pinned ESP-IDF container)
#   tests:  shared/tools/mp32 OUT firmware/manifest.py (a 32-bit unix port)
#
# The module list is `knip build`'s own (knip_host.esp32.frozen), so a module
# added to or split out of firmware/ is frozen without touching this file.
# espboard/main.py is frozen as main.py: MicroPython runs a frozen main.py at
# boot before any /main.py on the filesystem. A generated module,
# knip_frozen, holds the firmware version and a digest of the sources;
# `knip deploy` reads it and then copies only the board profile.
import hashlib
import os
import sys
import tempfile

_here = os.getcwd()            # manifests run in their own folder
sys.path.insert(0, os.path.join(_here, "..", "host"))
from knip_host.esp32 import frozen as _frozen  # noqa: E402

# The port's own frozen modules: on the ESP32 its board manifest (asyncio,
# neopixel, onewire, dht, mip, ...: what the stock firmware has); elsewhere
# asyncio, which Knip needs.
try:
    include("$(PORT_DIR)/boards/manifest.py")  # noqa: F821  (manifest API)
except Exception:
    include("$(MPY_DIR)/extmod/asyncio")  # noqa: F821

# aioble: the parts the BLE link uses (release.MIP_PACKAGES; aioble-core comes with them)
require("aioble-peripheral")  # noqa: F821
require("aioble-server")  # noqa: F821
require("aioble-security")  # noqa: F821

for _rel in _frozen.frozen_sources(_here):
    _target = _frozen.target_path(_rel)
    module(_target, base_path=os.path.join(_here, os.path.dirname(_rel)) if _target != _rel else _here)  # noqa: F821

_marker = _frozen.marker_source(_here)
_gen = os.path.join(tempfile.gettempdir(), "knip-frozen-" + hashlib.sha256(_marker.encode()).hexdigest()[:16])
os.makedirs(_gen, exist_ok=True)
_path = os.path.join(_gen, _frozen.MARKER + ".py")
if not os.path.exists(_path) or open(_path).read() != _marker:
    with open(_path, "w") as _f:
        _f.write(_marker)
module(_frozen.MARKER + ".py", base_path=_gen)  # noqa: F821
