# The virtual trainer: the board, the simulated ESP32 and the synthetic user.
# Simulation only: nothing here is deployed to a board (knip_host.release).
