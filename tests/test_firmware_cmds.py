"""`knip build`, `knip flash`, `knip deploy` and `knip profile check` where
no board is needed: bad profiles, missing and busy ports, a port where no
chip answers, a board that runs another MicroPython, the offline download.
The real tools run (mpy-cross, esptool, mpflash, the MicroPython unix
port); where a board would answer, a pseudo-terminal stands in for its
serial port and says nothing, as a board held in reset would."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tty
from pathlib import Path

import pytest

from knip_host import cli
from knip_host.esp32 import build as B
from knip_host.esp32 import release as R
from knip_host.esp32.deploy import check_compatible, deploy
from knip_host.esp32.image import download_firmware, image_problem
from knip_host.esp32.mpremote import VERSION_CODE, parse_device_version, run_mpremote
from knip_host.esp32.tools import FirmwareError

from conftest import micropython_path

ROOT = Path(__file__).resolve().parent.parent
PROFILES = sorted((ROOT / "hardware" / "profiles").glob("*.json"))


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def silent_port():
    """A serial port with nothing behind it (the slave side of a pty)."""
    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        yield os.ttyname(slave)
    finally:
        os.close(slave)
        os.close(master)


@pytest.fixture
def fake_image(tmp_path) -> Path:
    # an application image's first byte is 0xE9; this one is long enough to pass the size check
    p = tmp_path / f"ESP32_GENERIC-v{R.MICROPYTHON_VERSION}.bin"
    p.write_bytes(b"\xe9" + bytes(300 * 1024))
    return p


def bad_profile(tmp_path: Path, **change) -> Path:
    doc = json.loads(B.DEFAULT_PROFILE.read_text())
    for key, value in change.items():
        sec, _, field = key.partition("__")
        if field:
            doc[sec][field] = value
        else:
            doc[sec] = value
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(doc))
    return p


# ------------------------------------------------------------ profile check

@pytest.mark.skipif(not PROFILES, reason="no profiles in hardware/profiles yet")
def test_profile_check_accepts_every_shipped_profile(capsys):
    rc, out, err = run(capsys, "profile", "check", *map(str, PROFILES))
    assert rc == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == len(PROFILES)
    for p, line in zip(PROFILES, lines):
        doc = json.loads(p.read_text())
        assert line.startswith(f"{p}: ok (profile {doc['profile']}, {doc['signal']}, {doc['rate_hz']} Hz")


def test_profile_check_names_the_wrong_field(capsys, tmp_path):
    bad = bad_profile(tmp_path, sensor__pin=25, ui__led=7)
    rc, out, err = run(capsys, "profile", "check", str(B.DEFAULT_PROFILE), str(bad))
    assert rc == 2
    assert out.strip().startswith(f"{B.DEFAULT_PROFILE}: ok")
    errs = err.strip().splitlines()
    assert any(e.startswith(f"{bad}: sensor.pin: GPIO25") and "ADC1" in e for e in errs)
    assert any(e.startswith(f"{bad}: ui.led: GPIO7") and "flash" in e for e in errs)
    assert len(errs) == 2


def test_profile_check_unreadable_files(capsys, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"profile": "x",}')
    rc, _, err = run(capsys, "profile", "check", str(broken), str(tmp_path / "none.json"))
    assert rc == 2
    assert f"{broken}: not JSON" in err
    assert f"{tmp_path / 'none.json'}: no such file" in err and "pressure-analog" in err


# -------------------------------------------------------------------- build

def test_knip_build_produces_the_tree(capsys, tmp_path):
    out_dir = tmp_path / "tree"
    rc, out, err = run(capsys, "build", "-o", str(out_dir))
    assert rc == 0, err
    man = json.loads((out_dir / "manifest.json").read_text())
    assert out.startswith(f"built {out_dir}: {len(man['files'])} files")
    for rel in ("main.py", "profile.json", "knip/app.mpy", "knip/profile.mpy", "links/serial_link.mpy",
                "espboard/boot.mpy"):
        assert (out_dir / rel).is_file(), rel
    assert man["profile"] == "pressure-analog"


def test_knip_build_no_native_is_bytecode_but_the_viper_kernels(capsys, tmp_path):
    rc, _, err = run(capsys, "build", "-o", str(tmp_path / "bc"), "--no-native")
    assert rc == 0, err
    man = B.read_manifest(tmp_path / "bc")
    assert {f["kind"] for f in man["files"]} == {"bytecode", "native", "source", "data"}
    native = {f["source"] for f in man["files"] if f["kind"] == "native"}
    assert native == set(R.VIPER)                 # machine code by nature: viper


def test_knip_build_bad_profile_exits_2(capsys, tmp_path):
    rc, _, err = run(capsys, "build", "-o", str(tmp_path / "x"), "--profile",
                     str(bad_profile(tmp_path, rate_hz=5)))
    assert rc == 2 and "rate_hz:" in err


# -------------------------------------------------------------------- flash

def test_flash_missing_port_is_clear(capsys, fake_image):
    rc, _, err = run(capsys, "flash", "--port", "/dev/nonexistent", "--firmware", str(fake_image))
    assert rc == 1
    assert "no serial port /dev/nonexistent: is the board plugged in?" in err
    assert "serial ports here:" in err or "no serial ports found" in err


def test_flash_refuses_a_file_that_is_no_firmware(capsys, tmp_path, silent_port):
    junk = tmp_path / "notes.bin"
    junk.write_bytes(b"hello" * 100000)
    rc, _, err = run(capsys, "flash", "--port", silent_port, "--firmware", str(junk))
    assert rc == 2 and "not an ESP32 firmware image" in err and "micropython.org/download/ESP32_GENERIC" in err
    rc, _, err = run(capsys, "flash", "--port", silent_port, "--firmware", str(tmp_path / "none.bin"))
    assert rc == 2 and "no such file" in err


def test_flash_busy_port_names_the_program(capsys, silent_port, fake_image):
    holder = subprocess.Popen([sys.executable, "-c",
                               "import sys, time; f = open(sys.argv[1], 'rb', buffering=0); "
                               "print('open', flush=True); time.sleep(60)", silent_port],
                              stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"open"
        rc, _, err = run(capsys, "flash", "--port", silent_port, "--firmware", str(fake_image))
    finally:
        holder.kill()
        holder.wait()
    assert rc == 1
    assert f"{silent_port} is busy: in use by" in err and f"(pid {holder.pid})" in err
    assert "knip live" in err and "ModemManager" in err


def test_flash_no_chip_answering(capsys, silent_port, fake_image, tmp_path, monkeypatch):
    # the real esptool tries to sync with the ROM bootloader and hears nothing;
    # one connect attempt instead of its default 7 (esptool's own config file):
    # each one fails the same way on a port where nothing answers, 7 took ~5 s
    cfg = tmp_path / "esptool.cfg"
    cfg.write_text("[esptool]\nconnect_attempts = 1\n")
    monkeypatch.setenv("ESPTOOL_CFGFILE", str(cfg))
    t0 = time.monotonic()
    rc, out, err = run(capsys, "flash", "--port", silent_port, "--firmware", str(fake_image), "--baud", "115200")
    assert rc == 1
    assert f"no ESP32 answered on {silent_port}: hold the BOOT button, press and release EN" in err
    assert "data cable" in err
    assert "flash: [1/2] erasing the whole flash" in out      # what it tried, streamed from esptool
    assert time.monotonic() - t0 < 120


def test_flash_download_offline_says_what_to_do(tmp_path, monkeypatch, capsys):
    # mpflash really runs; without a connection to micropython.org the
    # message says where to get the file and how to flash it
    monkeypatch.setenv("KNIP_DATA", str(tmp_path / "data"))
    try:
        image = download_firmware("esp32")
    except FirmwareError as exc:
        msg = str(exc)
        assert f"could not download MicroPython v{R.MICROPYTHON_VERSION} for ESP32_GENERIC" in msg
        assert "https://micropython.org/download/ESP32_GENERIC/" in msg
        assert "make flash PORT=... FIRMWARE=path/to/file.bin" in msg
    else:                      # online: the pinned image arrived and is cached
        assert image.name.endswith(f"-v{R.MICROPYTHON_VERSION}.bin") and image_problem(image) is None
        assert download_firmware("esp32") == image


# ------------------------------------------------------------------- deploy

def test_deploy_bad_profile_exits_2_naming_the_field(capsys, tmp_path, silent_port):
    bad = bad_profile(tmp_path, sensor__driver="bmp280")
    rc, out, err = run(capsys, "deploy", "--port", silent_port, "--profile", str(bad))
    assert rc == 2
    assert err.startswith(f"knip: error: {bad}: sensor.driver: 'bmp280' is not a driver")
    assert "[2/7]" not in out             # nothing built, nothing sent


def test_deploy_missing_port(capsys):
    rc, _, err = run(capsys, "deploy", "--port", "/dev/nonexistent", "--profile", str(B.DEFAULT_PROFILE))
    assert rc == 1 and "no serial port /dev/nonexistent" in err


def _unix_port_report() -> str:
    exe = micropython_path()
    if exe is None:
        pytest.skip("micropython (unix port) not installed: make setup")
    p = subprocess.run([exe, "-c", VERSION_CODE], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_version_check_on_a_board_of_another_architecture(tmp_path):
    # the MicroPython unix port reports itself the way a board does: here
    # it is "a board" whose native code is x64, so native modules must not go on it
    dev = parse_device_version(_unix_port_report())
    assert dev["mpy_version"] == R.MPY_VERSION and dev["arch"] == "x64"
    native = B.build(tmp_path / "n", B.DEFAULT_PROFILE)
    with pytest.raises(FirmwareError) as exc:
        check_compatible(dev, B.read_manifest(native.out_dir), "/dev/ttyUSB0")
    msg = str(exc.value)
    assert f"the board runs MicroPython {dev['version']} (.mpy 6.3, x64)" in msg
    assert "these files need v1.29.x (.mpy 6.3, xtensawin)" in msg
    assert "run `make flash PORT=/dev/ttyUSB0` first" in msg
    # --no-native still holds the viper kernels' machine code: the same check
    B.build(tmp_path / "b", B.DEFAULT_PROFILE, native=False)
    with pytest.raises(FirmwareError, match="xtensawin"):
        check_compatible(dev, B.read_manifest(tmp_path / "b"), "/dev/ttyUSB0")
    # built for the board's own architecture, it loads
    B.build(tmp_path / "x", B.DEFAULT_PROFILE, native=False, march="x64")
    notes = check_compatible(dev, B.read_manifest(tmp_path / "x"), "/dev/ttyUSB0")
    assert all("tested on" in n for n in notes)


def test_version_check_old_micropython_and_other_chips():
    man = {"mpy": {"version": 6, "sub_version": 3, "arch": "xtensawin"},
           "files": [{"kind": "native", "path": "knip/ring.mpy"}]}
    old = {"version": "1.19.1", "sys_mpy": 0x2806, "mpy_version": 6, "mpy_sub": 0, "arch": "xtensawin",
           "machine": "ESP32 module with ESP32", "aioble": False}
    with pytest.raises(FirmwareError, match=r"runs MicroPython 1\.19\.1 \(\.mpy 6\.0, xtensawin\)"):
        check_compatible(old, man, "COM3")
    s3 = dict(old, version="1.29.0", sys_mpy=R.encode_sys_mpy(), mpy_sub=3,
              machine="Generic ESP32S3 module with ESP32S3")
    with pytest.raises(FirmwareError, match="ESP32S3.*classic ESP32"):
        check_compatible(s3, man, "COM3")
    ok = dict(s3, machine="Generic ESP32 module with ESP32")
    assert check_compatible(ok, man, "COM3") == []
    with pytest.raises(FirmwareError, match="did not report its MicroPython version"):
        parse_device_version("Traceback (most recent call last):\nNameError: name 'sys' isn't defined\n")


def test_help_epilogs_name_the_errors_and_the_pin(capsys):
    for cmd in ("flash", "deploy", "build", "profile"):
        with pytest.raises(SystemExit):
            cli.build_parser().parse_args([cmd, "--help"])
        out = capsys.readouterr().out
        assert "examples:" in out, cmd
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["flash", "--help"])
    out = capsys.readouterr().out
    assert f"v{R.MICROPYTHON_VERSION}" in out and "erase-flash" in out and "0x1000" in out


# --------------------------------------------------- deploy onto a simulated board

SHIM = r'''
import sys, os, vfs
sys.path.insert(0, FIRMWARE)
from simboard import esp32_machine      # the simulated ESP32 peripherals (the lead's model)
from simboard.esp32_rig import rig, at_rest
import asyncio, json
sys.path.remove(FIRMWARE)
vfs.umount("/")
vfs.mount(vfs.VfsPosix(ROOT), "/")      # the board's filesystem
os.chdir("/")
sys.path[:] = ["", "/lib", ".frozen"]
sys.modules["machine"] = rig(esp32_machine.fresh(virtual=False))   # on the HIL rig, wall clock
try:
    at_rest(esp32_machine, json.load(open("/profile.json")))      # the sensors connected and at rest
except (OSError, ValueError):
    pass
if BOOT:
    try:
        src = open("/main.py").read()
    except OSError:
        src = None
    if src is not None:
        exec(src, {"__name__": "__main__"})
'''


class SimulatedBoard:
    """A behavioural model of an ESP32's USB serial port running MicroPython,
    for mpremote and the Knip protocol: the MicroPython unix port behind a
    pseudo-terminal, its "/" a folder (the board's flash), `machine` the
    simulated peripherals of firmware/simboard/esp32_machine.py. Modelled
    like the board: a soft reset in the raw REPL (Ctrl-D) restarts the
    interpreter without running main.py; machine.reset() (or any exit)
    restarts it and runs /main.py, as a power-on does."""

    def __init__(self, root: Path, work: Path, heap: str = "4m"):
        import threading
        self.root = root
        self.heap = heap
        self.shim = {}
        for boot in (0, 1):
            p = work / f"shim{boot}.py"
            p.write_text(f"FIRMWARE = {str(ROOT / 'firmware')!r}\nROOT = {str(root)!r}\nBOOT = {boot}\n" + SHIM)
            self.shim[boot] = p
        self.host, slave = os.openpty()
        tty.setraw(slave)
        self.port = os.ttyname(slave)
        os.close(slave)                 # the host opens it; nothing else may hold it (busy check)
        self.child = None
        self.resets = 0
        self.log = bytearray()
        self._stop = False
        self._spawn(boot=0)
        self._thread = threading.Thread(target=self._bridge, daemon=True)
        self._thread.start()

    def _spawn(self, boot: int):
        if self.child is not None:
            self.child.kill()
            self.child.wait()
            os.close(self.cfd)
        m, s = os.openpty()
        tty.setraw(s)
        env = dict(os.environ, MICROPYPATH=".frozen")
        self.child = subprocess.Popen([micropython_path(), "-X", f"heapsize={self.heap}", "-i", str(self.shim[boot])],
                                      stdin=s, stdout=s, stderr=s, env=env, close_fds=True)
        os.close(s)
        self.cfd = m

    def _read_child_until(self, marker: bytes, timeout: float = 10.0) -> bytes:
        import select
        buf = b""
        end = time.monotonic() + timeout
        while not buf.endswith(marker) and time.monotonic() < end:
            if select.select([self.cfd], [], [], 0.05)[0]:
                try:
                    buf += os.read(self.cfd, 4096)
                except OSError:
                    break
        return buf

    def _soft_reset(self):
        self._spawn(boot=0)
        self._read_child_until(b">>> ")
        os.write(self.cfd, b"\r\x01")
        self._read_child_until(b"raw REPL; CTRL-B to exit\r\n>")
        os.write(self.host, b"OK\r\nMPY: soft reboot\r\nraw REPL; CTRL-B to exit\r\n>")

    def _bridge(self):
        import select
        raw, last = False, 0
        while not self._stop:
            r = select.select([self.host, self.cfd], [], [], 0.05)[0]
            if self.host in r:
                try:
                    data = os.read(self.host, 4096)
                except OSError:           # no one has the port open
                    time.sleep(0.02)
                    data = b""
                out = bytearray()
                for b in data:
                    if raw and b == 0x04 and last == 0x01:
                        os.write(self.cfd, bytes(out))
                        out.clear()
                        self._soft_reset()
                        last = 0
                        continue
                    raw = True if b == 0x01 else False if b == 0x02 else raw
                    if b != 0x0D:
                        last = b
                    out.append(b)
                if out:
                    os.write(self.cfd, bytes(out))
            if self.cfd in r:
                try:
                    data = os.read(self.cfd, 4096)
                except OSError:
                    data = b""
                if data:
                    self.log += data
                    try:
                        os.write(self.host, data)
                    except OSError:
                        pass
            if self.child.poll() is not None:       # machine.reset(), a crash: the board restarts
                self.resets += 1
                raw, last = False, 0
                self._spawn(boot=1)

    def close(self):
        self._stop = True
        self._thread.join(5)
        if self.child is not None:
            self.child.kill()
            self.child.wait()
        os.close(self.cfd)
        os.close(self.host)


def simulated_board(tmp_path: Path, heap: str = "4m"):
    """A SimulatedBoard in tmp_path with MicroPython's heap set to `heap`; closed after."""
    if micropython_path() is None:
        pytest.skip("micropython (unix port) not installed: make setup")
    root = tmp_path / "flash"
    root.mkdir()
    b = SimulatedBoard(root, tmp_path, heap=heap)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def board(tmp_path):
    yield from simulated_board(tmp_path)


def test_mpremote_talks_to_the_simulated_board(board):
    rc, text = run_mpremote(board.port, "exec", VERSION_CODE, echo=False, timeout=60)
    assert rc == 0, text
    dev = parse_device_version(text)
    assert (dev["mpy_version"], dev["arch"]) == (R.MPY_VERSION, "x64")


def test_deploy_end_to_end_on_the_simulated_board(board, tmp_path, capsys):
    """The whole deploy against the simulated board: mpremote copies the
    tree, the board restarts into the Knip app, which reports the built
    firmware and profile over the protocol. A second deploy finds the app
    running, asks it for the REPL, removes a stale file and skips the
    files that did not change. Built for x64 because the board is the unix
    port (it would refuse xtensawin native code, as tested above)."""
    prof = ROOT / "hardware" / "profiles" / "pressure-analog.json"
    info = deploy(board.port, str(prof), mip=False, build_dir=tmp_path / "build", march="x64", wait_s=30)
    out = capsys.readouterr().out
    man = B.read_manifest(tmp_path / "build")
    assert info["firmware"] == man["firmware"] and info["profile"] == "pressure-analog"
    for f in man["files"]:
        assert (board.root / f["path"]).read_bytes() == (tmp_path / "build" / f["path"]).read_bytes(), f["path"]
    assert "deploy: [3/7] getting the board's REPL" in out and "no Knip app answered" in out
    assert "deploy: [7/7]" in out and "deploy: done" in out and board.resets == 1
    assert "ready" in board.log.decode(errors="replace")

    # a file of ours the new build lacks, and one of hers that deploy must keep
    (board.root / "knip" / "old_module.mpy").write_bytes(b"M\x06\x00\x1f")
    (board.root / "sessions").mkdir(exist_ok=True)
    (board.root / "sessions" / "00000001.kns").write_bytes(b"her session")
    info = deploy(board.port, str(prof), mip=False, build_dir=tmp_path / "build", march="x64", wait_s=30)
    out = capsys.readouterr().out
    assert "the Knip app answered (firmware" in out and "asking it for the REPL" in out
    assert "removed knip/old_module.mpy" in out
    assert not (board.root / "knip" / "old_module.mpy").exists()
    assert (board.root / "sessions" / "00000001.kns").read_bytes() == b"her session"
    # nothing changed, so mpremote skips the files by their sha256 (once in
    # ~15 runs here one hash read came back garbled and that file was copied again)
    same = {line.split("Up to date:", 1)[1].strip() for line in out.splitlines() if "Up to date:" in line}
    assert len(same) >= len(man["files"]) - 1 and same <= {f["path"] for f in man["files"]}
    for f in man["files"]:
        assert (board.root / f["path"]).read_bytes() == (tmp_path / "build" / f["path"]).read_bytes(), f["path"]
    assert info["profile"] == "pressure-analog" and board.resets == 2


def test_the_ready_line_is_seen_behind_the_raw_repls_end_markers(capsys):
    """After `mpremote reset` the REPL's end markers (0x04 0x04) can sit on the
    line before main.py's first print: the ready line is still seen at once,
    not after the 8 s wait for it (deploy would then pass, but late)."""
    from types import SimpleNamespace

    from knip_host.esp32.app import _read_start_up
    chunks = [b"\x04\x04knip: pressure-analog ready: pressure, 100 Hz, usb\r\n"]
    dev = SimpleNamespace(ser=SimpleNamespace(read=lambda n: chunks.pop(0) if chunks else b""))
    lines: list[str] = []
    t0 = time.monotonic()
    _read_start_up(dev, lines, time.monotonic() + 30, 33)
    assert lines == ["knip: pressure-analog ready: pressure, 100 Hz, usb"] and not chunks
    assert time.monotonic() - t0 < 1.0                  # it returned on the line, not on the wait
    assert "deploy: board: knip: pressure-analog ready" in capsys.readouterr().out


def test_deploy_refuses_native_code_for_another_architecture(board, tmp_path, capsys):
    prof = ROOT / "hardware" / "profiles" / "pressure-analog.json"
    with pytest.raises(FirmwareError, match=r"\(\.mpy 6\.3, x64\); these files need v1\.29\.x \(\.mpy 6\.3, xtensawin\)"):
        deploy(board.port, str(prof), mip=False, build_dir=tmp_path / "build", wait_s=10)
    assert not (board.root / "knip").exists()        # nothing copied


# ------------------------------------------- the module: WROVER (PSRAM) or WROOM

from knip_host.commands.trainer import memory_rows  # noqa: E402
from knip_host.esp32 import flash as F  # noqa: E402
from knip_host.esp32 import module as M  # noqa: E402
from knip_host.esp32.image import find_firmware, image_variant  # noqa: E402

# What esptool prints on connecting, as esptool 5.6.0 formats it
# (esptool/__init__.py, targets/esp32.py get_chip_description/get_chip_features)
# for the chips on the boards below; the MAC addresses are made up.
ESPTOOL5_WROVER_E = """esptool v5.6.0
Connected to ESP32 on /dev/ttyUSB0:
Chip type:          ESP32-D0WD-V3 (revision v3.1)
Features:           Wi-Fi, BT, Dual Core + LP Core, 240MHz, Vref calibration in eFuse, Coding Scheme None
Crystal frequency:  40MHz
MAC:                a0:b7:65:4e:2c:18

Stub flasher running.
Changing baud rate to 460800...
Changed.

Flash memory erased successfully in 3.9 seconds.

Hard resetting via RTS pin...
"""
# an ESP32-WROOM-32E carries the same chip: esptool cannot tell them apart
ESPTOOL5_WROOM_32E = ESPTOOL5_WROVER_E.replace("a0:b7:65:4e:2c:18", "08:3a:f2:1c:55:e0")
ESPTOOL5_PICO_V3_02 = ESPTOOL5_WROVER_E.replace("ESP32-D0WD-V3 (revision v3.1)", "ESP32-PICO-V3-02 (revision v3.0)") \
    .replace("240MHz, Vref", "240MHz, Embedded Flash, Embedded PSRAM, Vref")
ESPTOOL5_D0WDR2 = ESPTOOL5_WROVER_E.replace("ESP32-D0WD-V3 (revision v3.1)", "ESP32-D0WDR2-V3 (revision v3.1)")
ESPTOOL4_WROOM_32 = """esptool.py v4.7.0
Serial port /dev/ttyUSB0
Connecting....
Chip is ESP32-D0WDQ6 (revision v1.0)
Features: WiFi, BT, Dual Core, 240MHz, VRef calibration in efuse, Coding Scheme None
Crystal is 40MHz
MAC: 24:0a:c4:00:01:10
Uploading stub...
Running stub...
Stub running...
"""
ESPTOOL5_SECURE = """esptool v5.6.0
Connected to ESP32 on /dev/ttyUSB0:
Chip type:          ESP32 in Secure Download Mode
"""


def board_report(machine: str, heap: int, free: int, psram: int, frozen: bool = False) -> str:
    """What mpremote.VERSION_CODE prints on an ESP32 running v1.29.0."""
    mpy = R.encode_sys_mpy()
    return (f"knip-impl (name='micropython', version=(1, 29, 0, ''), _machine='{machine}', _mpy={mpy}, "
            f"_build='ESP32_GENERIC', _thread='GIL')\nknip-mpy {mpy} ver 1 29 0\nknip-aioble 0\n"
            f"knip-heap {heap} {free}\nknip-psram {psram}\nknip-frozen {int(frozen)}\n")


SPIRAM_MACHINE = "Generic ESP32 module with SPIRAM with ESP32"
PLAIN_MACHINE = "Generic ESP32 module with ESP32"
WROVER_ON_SPIRAM = board_report(SPIRAM_MACHINE, 4_120_000, 4_050_000, 4_194_252)
WROOM_ON_SPIRAM = board_report(SPIRAM_MACHINE, 112_640, 101_200, 0)
WROOM_ON_PLAIN = board_report(PLAIN_MACHINE, 117_000, 104_000, 0)
WROOM_FROZEN = board_report("Knip ESP32 (frozen) with ESP32", 112_000, 96_000, 0, frozen=True)


def test_esptool_chip_reports_are_read():
    for text, name, rev in ((ESPTOOL5_WROVER_E, "ESP32-D0WD-V3", "v3.1"), (ESPTOOL4_WROOM_32, "ESP32-D0WDQ6", "v1.0")):
        chip = M.parse_chip(text)
        assert (chip.name, chip.revision) == (name, rev) and chip.classic
        assert "BT" in chip.features and not chip.embedded_psram    # a WROVER's PSRAM is a chip of its own
    assert M.parse_chip(ESPTOOL5_PICO_V3_02).embedded_psram
    assert M.parse_chip(ESPTOOL5_D0WDR2).embedded_psram             # esptool lists no feature for it: the name says
    assert M.parse_chip(ESPTOOL5_SECURE) is None
    assert M.parse_chip("A fatal error occurred: Failed to connect to ESP32: No serial data received.") is None
    assert not M.Chip("ESP32-S3 (QFN56)").classic
    # a plain image on a chip with PSRAM inside: a warning; on a WROVER-E esptool cannot see it
    msg = M.chip_mismatch(M.parse_chip(ESPTOOL5_PICO_V3_02), "", "/dev/ttyUSB0")
    assert "ESP32-PICO-V3-02 has PSRAM" in msg and "knip flash --port /dev/ttyUSB0 --psram" in msg
    assert M.chip_mismatch(M.parse_chip(ESPTOOL5_WROVER_E), "", "/dev/ttyUSB0") is None
    assert M.chip_mismatch(M.parse_chip(ESPTOOL5_PICO_V3_02), R.SPIRAM, "/dev/ttyUSB0") is None


def test_the_spiram_image_is_pinned_next_to_the_plain_one():
    assert R.FIRMWARE_FILE_SPIRAM == f"ESP32_GENERIC-SPIRAM-v{R.MICROPYTHON_VERSION}.bin"
    assert R.FIRMWARE_URL_PATTERN_SPIRAM == ("https://micropython.org/resources/firmware/"
                                            f"ESP32_GENERIC-SPIRAM-YYYYMMDD-v{R.MICROPYTHON_VERSION}.bin")
    assert R.VARIANT_OF_MODULE == {"wrover": "SPIRAM", "wroom": ""}
    assert R.board_id(R.SPIRAM) == "ESP32_GENERIC-SPIRAM" and R.board_id() == "ESP32_GENERIC"


def _image(folder: Path, name: str, machine: str | None) -> Path:
    p = folder / name
    body = bytearray(b"\xe9" + bytes(300 * 1024))
    if machine:
        body[200000:200000 + len(machine) + 1] = machine.encode() + b"\0"
    p.write_bytes(bytes(body))
    return p


def test_an_image_says_which_variant_it_is(tmp_path):
    v = R.MICROPYTHON_VERSION
    # by the machine name compiled into it, whatever the file is called
    assert image_variant(_image(tmp_path, "a.bin", SPIRAM_MACHINE)) == R.SPIRAM
    assert image_variant(_image(tmp_path, "b.bin", PLAIN_MACHINE)) == ""
    # else by its name, as micropython.org names it
    assert image_variant(_image(tmp_path, f"ESP32_GENERIC-SPIRAM-20260829-v{v}.bin", None)) == R.SPIRAM
    assert image_variant(_image(tmp_path, f"ESP32_GENERIC-20260829-v{v}.bin", None)) == ""
    assert image_variant(_image(tmp_path, "esp32spiram-20220117-v1.18.bin", None)) == R.SPIRAM
    assert image_variant(_image(tmp_path, "firmware.bin", None)) is None
    # the cache tells the variants apart (the plain name is a prefix of the other)
    cache = tmp_path / "cache" / "esp32"
    cache.mkdir(parents=True)
    spiram = _image(cache, f"ESP32_GENERIC-SPIRAM-v{v}.bin", SPIRAM_MACHINE)
    assert find_firmware(tmp_path / "cache", R.FIRMWARE_FILE) is None
    assert find_firmware(tmp_path / "cache", R.FIRMWARE_FILE_SPIRAM) == spiram
    plain = _image(cache, f"ESP32_GENERIC-20260829-v{v}.bin", PLAIN_MACHINE)
    assert find_firmware(tmp_path / "cache", R.FIRMWARE_FILE) == plain


def test_which_image_flash_picks():
    assert M.choose_variant(True, "wroom", None)[0] == R.SPIRAM          # the flag wins
    assert M.choose_variant(False, None, {"psram": 4194252, "spiram": True}) == ("", "--no-psram")
    v, why = M.choose_variant(None, "wroom", {"psram": 4194252, "spiram": True})
    assert v == "" and '"module": "wroom"' in why
    assert M.choose_variant(None, "wrover", None)[0] == R.SPIRAM
    v, why = M.choose_variant(None, None, {"psram": 4194252, "spiram": True})
    assert v == R.SPIRAM and "reported 4.0 MB of PSRAM" in why
    v, why = M.choose_variant(None, None, {"psram": 0, "spiram": True})
    assert v == "" and "no PSRAM (a WROOM)" in why
    v, why = M.choose_variant(None, None, {"psram": 0, "spiram": False})      # the plain image cannot tell
    assert v == R.SPIRAM and "reference board" in why and "--no-psram" in why
    assert M.choose_variant(None, None, None)[0] == R.SPIRAM


@pytest.fixture
def fake_tools(monkeypatch, silent_port):
    """knip flash with esptool and mpremote answering like a board would:
    `said["esptool"]` is what esptool prints, `said["board"]` what MicroPython
    reports after the flash; `calls` collects the command lines."""
    said = {"esptool": ESPTOOL5_WROVER_E, "board": WROVER_ON_SPIRAM, "app": None}
    calls: list[list[str]] = []

    def stream(cmd, **kw):
        calls.append(cmd)
        return 0, said["esptool"]

    monkeypatch.setattr(F, "stream", stream)
    monkeypatch.setattr(F, "run_mpremote", lambda port, *a, **kw: (calls.append(list(a)) or 0, said["board"]))
    monkeypatch.setattr(F, "knip_app_info", lambda port, timeout=1.2: said["app"])
    monkeypatch.setattr(F.time, "sleep", lambda s: None)
    return silent_port, said, calls


def test_flash_a_wrover_writes_the_spiram_image_and_reports_its_heap(capsys, tmp_path, monkeypatch, fake_tools):
    port, said, calls = fake_tools
    monkeypatch.setenv("KNIP_DATA", str(tmp_path / "data"))
    cache = tmp_path / "data" / "firmware" / "esp32"
    cache.mkdir(parents=True)
    image = _image(cache, R.FIRMWARE_FILE_SPIRAM, SPIRAM_MACHINE)
    _image(cache, R.FIRMWARE_FILE, PLAIN_MACHINE)
    rc, out, err = run(capsys, "flash", "--port", port)
    assert rc == 0, err
    assert calls[1][-1] == str(image) and calls[1][-3:-1] == ["-z", "0x1000"]
    assert "flash: image ESP32_GENERIC-SPIRAM (SPIRAM: for a WROVER): the reference board" in out
    assert "ESP32_GENERIC-SPIRAM from the cache" in out
    assert "heap 3.9 MB (3.9 MB free), PSRAM 4.0 MB (WROVER)" in out and "warning" not in out


def test_flash_spiram_image_on_a_board_without_psram_says_wroom(capsys, fake_tools, tmp_path):
    port, said, _ = fake_tools
    said["board"] = WROOM_ON_SPIRAM
    fw = _image(tmp_path, f"ESP32_GENERIC-SPIRAM-20260829-v{R.MICROPYTHON_VERSION}.bin", SPIRAM_MACHINE)
    rc, out, err = run(capsys, "flash", "--port", port, "--firmware", str(fw))
    assert rc == 0, err
    assert "no PSRAM (a WROOM: the SPIRAM image found none)" in out
    warn = [line for line in out.splitlines() if line.startswith("flash: warning: this board has no PSRAM")]
    assert warn, out
    assert "110 KB of heap" in warn[0] and "ESP32-DevKitC-VE" in warn[0]
    assert f"knip flash --port {port} --no-psram" in warn[0] and "the frozen build" in warn[0]
    assert "Plain ESP32 (WROOM): the frozen build" in warn[0]


def test_flash_warns_when_the_image_does_not_fit_what_was_declared(capsys, fake_tools, tmp_path):
    port, said, _ = fake_tools
    wroom = tmp_path / "wroom.json"
    doc = json.loads(B.DEFAULT_PROFILE.read_text())
    wroom.write_text(json.dumps(dict(doc, module="wroom")))
    said["board"] = WROOM_ON_SPIRAM
    fw = _image(tmp_path, "firmware.bin", SPIRAM_MACHINE)          # the name says nothing; the contents do
    rc, out, err = run(capsys, "flash", "--port", port, "--firmware", str(fw), "--profile", str(wroom))
    assert rc == 0, err
    assert ("flash: warning: firmware.bin is the ESP32_GENERIC-SPIRAM (SPIRAM: for a WROVER) image, but "
            "this board wants ESP32_GENERIC (plain: for a WROOM)") in out
    assert R.FIRMWARE_FILE in out
    # declared plain on a chip with PSRAM inside
    said["esptool"], said["board"] = ESPTOOL5_PICO_V3_02, WROOM_ON_PLAIN
    fw = _image(tmp_path, "plain.bin", PLAIN_MACHINE)
    rc, out, err = run(capsys, "flash", "--port", port, "--firmware", str(fw), "--no-psram")
    assert rc == 0, err
    assert "flash: warning: ESP32-PICO-V3-02 has PSRAM in its package" in out
    assert "PSRAM not in use (the plain image never looks for it)" in out
    assert "the plain image gives this board 114 KB of heap" in out


def test_flash_picks_what_the_running_app_reported_and_survives_a_silent_board(capsys, fake_tools, tmp_path):
    port, said, _ = fake_tools
    said["app"] = {"unsynced": 0, "psram": 0, "spiram": True, "heap": 112640}
    said["board"] = "Traceback (most recent call last):\nOSError: [Errno 5] EIO\n"
    fw = _image(tmp_path, "x.bin", None)                          # no name, no machine string: unknown
    rc, out, err = run(capsys, "flash", "--port", port, "--firmware", str(fw))
    assert rc == 0, err
    assert "flash: image x.bin: the Knip app on the board reported no PSRAM (a WROOM)" in out
    assert "flash: note: could not ask the board for its heap" in out and "`knip deploy` checks it" in out


def test_deploy_judges_the_heap():
    prof = json.loads(B.DEFAULT_PROFILE.read_text())
    port, name = "/dev/ttyUSB0", "hardware/profiles/pressure-analog.json"
    wrover = parse_device_version(WROVER_ON_SPIRAM)
    assert wrover["heap"] == 4_120_000 and wrover["psram"] == 4_194_252 and not wrover["frozen"]
    assert M.deploy_problem(wrover, prof, port, name) is None
    assert M.deploy_problem(parse_device_version(WROOM_FROZEN), dict(prof, module="wroom"), port, name) is None
    msg = M.deploy_problem(parse_device_version(WROOM_ON_SPIRAM), prof, port, name)
    assert msg.startswith("the board has 110 KB of heap; Knip loaded from files needs about 256 KB")
    assert "runs the SPIRAM image but has no PSRAM: a WROOM" in msg and "ESP32-DevKitC-VE" in msg
    assert "frozen build" in msg and "--small-heap" in msg
    msg = M.deploy_problem(parse_device_version(WROOM_ON_PLAIN), prof, port, name)
    assert "runs the plain ESP32_GENERIC image, which leaves a WROVER's PSRAM unused" in msg
    assert f"knip flash --port {port} --profile {name}" in msg
    msg = M.deploy_problem(parse_device_version(WROOM_ON_PLAIN), dict(prof, module="wroom"), port, name)
    assert "a board without PSRAM (a WROOM)" in msg
    # a WROOM profile wiring GPIO16/17 on a board whose PSRAM takes them
    ads = json.loads((ROOT / "hardware" / "profiles" / "emg-ads1292r.json").read_text())
    ads = dict(ads, module="wroom", sensor=dict(ads["sensor"], start=16, reset=17))
    msg = M.deploy_problem(wrover, ads, port, "my.json")
    assert "takes GPIO16/17" in msg and "GPIO16/17" in msg and '"module": "wrover"' in msg
    # the MicroPython unix port reports its heap and no esp32 module
    unix = parse_device_version(_unix_port_report())
    assert unix["heap"] > R.HEAP_NEEDED and unix["psram"] is None and unix["frozen"] is False
    assert M.deploy_problem(unix, prof, port, name) is None


def test_knip_info_memory_rows():
    wrover = {"module": "wrover", "heap": 4_120_000, "heap_free": 3_900_000, "psram": 4_194_252, "spiram": True}
    assert memory_rows(wrover) == [("memory", "heap 3.9 MB (3.7 MB free), PSRAM 4.0 MB (WROVER); "
                                               "the profile says WROVER")]
    rows = dict(memory_rows(dict(wrover, heap=112_640, heap_free=40_000, psram=0)))
    assert "SPIRAM image found no PSRAM: this board is a WROOM" in rows["memory!"]
    rows = dict(memory_rows(dict(wrover, heap=112_640, heap_free=40_000, psram=0, spiram=False)))
    assert "leaves the WROVER's PSRAM unused" in rows["memory!"] and "--psram" in rows["memory!"]
    rows = memory_rows(dict(wrover, module="wroom", heap=112_640, heap_free=9_000, psram=0, spiram=False))
    assert [r[0] for r in rows] == ["memory", "memory!", "memory!"]
    assert "too little for Knip loaded from files" in rows[1][1] and "only 9 KB of heap free" in rows[2][1]
    assert memory_rows({"board": "sim"}) == []                    # the virtual trainer reports no heap
    assert memory_rows(dict(wrover, cpu_mhz=240))[1] == ("cpu", "240 MHz (raw EMG: the rated maximum, for headroom)")
    assert memory_rows(dict(wrover, cpu_mhz=160))[1] == ("cpu", "160 MHz")


@pytest.fixture
def small_board(tmp_path):
    """The simulated board with the heap of a WROOM (about 110 KB)."""
    yield from simulated_board(tmp_path, heap="112k")


def test_deploy_refuses_a_wroom_without_the_frozen_build(small_board, tmp_path, capsys):
    prof = ROOT / "hardware" / "profiles" / "pressure-analog.json"
    with pytest.raises(FirmwareError) as exc:
        deploy(small_board.port, str(prof), mip=False, build_dir=tmp_path / "build", march="x64", wait_s=10)
    msg = str(exc.value)
    assert "of heap; Knip loaded from files needs about 256 KB" in msg
    assert "ESP32-DevKitC-VE" in msg and "frozen build" in msg and "--small-heap" in msg
    out = capsys.readouterr().out
    assert "deploy: [4/7] checking MicroPython and the heap" in out and "[5/7]" not in out
    assert not (small_board.root / "knip").exists()        # nothing copied
