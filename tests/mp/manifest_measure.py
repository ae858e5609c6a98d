# The 32-bit unix port `make bench` measures the ESP32's heap with
# (bench/esp32_memory.py, shared/tools/mp32): the firmware frozen exactly as
# for a plain ESP32 (firmware/manifest.py), plus the simulation around it
# (the simulated machine, flash and user, the stand-in radio, the session
# script), frozen too so that none of it takes heap the firmware would have.
include("../../firmware/manifest.py")  # noqa: F821  (manifest API)
package("simboard", base_path="../../firmware")  # noqa: F821
# (bench/esp32_memory.py reads this list for the port's cache key)
SIMULATION = ("sim_radio.py", "sim_bluetooth.py", "session_host.py", "esp32_session.py")
for _m in SIMULATION:
    module(_m)  # noqa: F821
