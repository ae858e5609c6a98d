"""The virtual trainer's flash image is a file the trainer writes all over:
a path that names any other file (a typo, a report, a system file) is
refused before anything is written, on the host and on the board side, and
the file is left byte for byte as it was."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_micropython
from knip_host.device import DeviceError
from knip_host.simulator import VirtualTrainer, image_problem

IMAGE = 512 * 4096


@pytest.mark.parametrize("content", [b"root:x:0:0:root:/root:/bin/bash\n",      # under one block
                                     os.urandom(190_000),                       # not whole blocks
                                     os.urandom(IMAGE)])                        # an image's size
def test_a_file_that_is_no_image_is_refused_and_left_as_it_was(tmp_path, content):
    f = tmp_path / "notes.txt"
    f.write_bytes(content)
    with pytest.raises(DeviceError, match="no virtual trainer's flash image.*give a new file name"):
        VirtualTrainer(f, clock="virtual").start()
    assert f.read_bytes() == content


def test_a_missing_folder_is_named_not_made(tmp_path):
    img = tmp_path / "typo" / "trainer.img"
    with pytest.raises(DeviceError, match="there is no folder .*typo"):
        VirtualTrainer(img, clock="virtual").start()
    assert not img.parent.exists()


def test_what_may_be_an_image(tmp_path):
    assert image_problem(tmp_path / "new.img", 512) is None
    (tmp_path / "empty.img").write_bytes(b"")
    assert image_problem(tmp_path / "empty.img", 512) is None
    # a making cut short: erased flash, whole blocks, short
    (tmp_path / "short.img").write_bytes(b"\xff" * 8192)
    assert image_problem(tmp_path / "short.img", 512) is None
    (tmp_path / "torn.img").write_bytes(b"\xff" * 5000)          # not whole blocks: the board refuses it
    assert "is 5000 bytes" in image_problem(tmp_path / "torn.img", 512)
    lfs = bytearray(b"\xff" * IMAGE)
    lfs[8:16] = b"littlefs"
    (tmp_path / "lfs.img").write_bytes(bytes(lfs))
    assert image_problem(tmp_path / "lfs.img", 512) is None
    # the same image with another flash size given: not this trainer's
    assert "is 2097152 bytes, where an image is 262144" in image_problem(tmp_path / "lfs.img", 64)
    assert image_problem(tmp_path, 512) == f"{tmp_path} is not a file"


_BOARD = """
import sys
from simboard.blockdev import BlockDev
try:
    BlockDev(sys.argv[1]).close()
    print("opened")
except OSError as e:
    print("refused:", e)
"""


def test_the_board_side_refuses_too_and_makes_a_cut_short_image_whole(tmp_path):
    script = tmp_path / "open.py"
    script.write_text(_BOARD)
    f = tmp_path / "report.html"
    content = b"<html>" + os.urandom(5000)
    f.write_bytes(content)
    out = run_micropython(script, str(f)).stdout.decode()
    assert out.startswith("refused:") and "not writing over it" in out, out
    assert f.read_bytes() == content
    short = tmp_path / "short.img"
    short.write_bytes(b"\xff" * 8192)
    assert run_micropython(script, str(short)).stdout.decode().strip() == "opened"
    assert short.read_bytes() == b"\xff" * IMAGE


def test_one_image_one_trainer_at_a_time(tmp_path):
    # 'knip sim' running and '--port sim' on the same image wrote littlefs
    # over each other: a session recorded on one was gone
    img = tmp_path / "trainer.img"
    first = VirtualTrainer(img, clock="virtual").start()
    try:
        with pytest.raises(DeviceError, match="in use by another virtual trainer.*--sim-image"):
            VirtualTrainer(img, clock="virtual").start()
        assert first.alive
    finally:
        first.stop()
    again = VirtualTrainer(img, clock="virtual").start()       # free once the first has stopped
    again.stop()


def test_a_trainer_that_did_not_start_leaves_its_image_free(tmp_path, monkeypatch):
    import knip_host.simulator as S

    def missing() -> str:
        raise DeviceError("the virtual trainer needs the MicroPython unix port")
    img = tmp_path / "trainer.img"
    monkeypatch.setattr(S, "micropython_binary", missing)
    with pytest.raises(DeviceError, match="MicroPython unix port"):
        VirtualTrainer(img, clock="virtual").start()
    monkeypatch.undo()
    VirtualTrainer(img, clock="virtual").start().stop()       # not "in use"


def test_the_trainer_itself_holds_the_lock_when_its_host_is_killed(tmp_path):
    img = tmp_path / "trainer.img"
    knip = os.path.join(os.path.dirname(sys.executable), "knip")
    host = subprocess.Popen([knip, "sim", "--image", str(img)], stdout=subprocess.PIPE, text=True)
    try:
        assert host.stdout.readline().startswith("/dev/")      # its port: the trainer runs
        host.kill()                                            # kill -9: no stop(), the trainer lives on
        host.wait(10)
        with pytest.raises(DeviceError, match="in use by another virtual trainer"):
            VirtualTrainer(img, clock="virtual").start()
    finally:
        host.kill()
        for pid in os.listdir("/proc"):                        # the orphaned trainer
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if str(img).encode() in f.read():
                        os.kill(int(pid), 9)
            except (OSError, ValueError):
                pass
