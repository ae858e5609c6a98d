# Simulated ESP32 peripherals for the driver tests (machine_sim.py).
