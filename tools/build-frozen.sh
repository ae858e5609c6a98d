#!/usr/bin/env bash
# Build MicroPython for a plain ESP32 (ESP32_GENERIC, WROOM-32) with Knip
# frozen in (firmware/manifest.py; docs/FROZEN.md), in the official ESP-IDF
# container, pinned: one command, the same image on every machine.
#   tools/build-frozen.sh [OUT_DIR]          (make frozen: OUT_DIR = out/frozen)
# Needs docker or podman and a network connection (the image and the
# MicroPython tag are fetched once). Writes OUT_DIR/knip-frozen-ESP32_GENERIC-v1.29.0-<firmware>.bin,
# which `knip flash --port PORT --firmware FILE` writes to the board.
set -eu
MP_TAG=${MP_TAG:-v1.29.0}                    # = release.MICROPYTHON_VERSION
BOARD=${BOARD:-ESP32_GENERIC}                # = release.BOARD
IDF_IMAGE=${IDF_IMAGE:-espressif/idf:v5.4.1} # an ESP-IDF the tag supports (its ports/esp32/README.md)
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$here/out/frozen}
engine=${ENGINE:-}
if [ -z "$engine" ]; then
  for e in docker podman; do command -v "$e" >/dev/null 2>&1 && { engine=$e; break; }; done
fi
if [ -z "$engine" ]; then
  cat >&2 <<MSG
build-frozen: neither docker nor podman is installed, and the ESP32 firmware needs ESP-IDF v5.x,
which no package registry has. Install one of them (Debian: apt-get install podman), then run
this again; or build by hand as docs/FROZEN.md describes (ESP-IDF ${IDF_IMAGE#*:}, MicroPython ${MP_TAG}):
  make -C ports/esp32 BOARD=${BOARD} FROZEN_MANIFEST=$here/firmware/manifest.py
MSG
  exit 2
fi
fw=$(sed -n 's/^FIRMWARE = "\(.*\)"/\1/p' "$here/firmware/knip/app.py")
mkdir -p "$out"
out=$(cd "$out" && pwd)
user=()
[ "$engine" = docker ] && user=(--user "$(id -u):$(id -g)")
echo "build-frozen: MicroPython $MP_TAG for $BOARD with Knip $fw frozen in, in $IDF_IMAGE ($engine)"
"$engine" run --rm "${user[@]}" -e HOME=/tmp -e PYTHONDONTWRITEBYTECODE=1 \
  -v "$here:/knip:ro" -v "$out:/out" -w /out "$IDF_IMAGE" bash -ec "
    [ -d micropython/.git ] || git clone --depth 1 --branch $MP_TAG https://github.com/micropython/micropython.git
    cd micropython
    git -c advice.detachedHead=false checkout -q $MP_TAG
    git submodule update --init --depth 1 lib/micropython-lib
    make -s -C mpy-cross
    make -C ports/esp32 BOARD=$BOARD FROZEN_MANIFEST=/knip/firmware/manifest.py submodules
    make -C ports/esp32 BOARD=$BOARD FROZEN_MANIFEST=/knip/firmware/manifest.py
    cp ports/esp32/build-$BOARD/firmware.bin /out/knip-frozen-$BOARD-$MP_TAG-$fw.bin"
bin="$out/knip-frozen-$BOARD-$MP_TAG-$fw.bin"
echo "build-frozen: $bin ($(wc -c < "$bin") bytes)"
echo "build-frozen: next: knip flash --port PORT --firmware $bin, then knip deploy --port PORT --profile FILE (copies only the profile)"
