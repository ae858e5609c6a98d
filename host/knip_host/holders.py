"""Which programs hold a file open: a trainer's serial port, or the session
database another program has locked (Linux /proc; empty elsewhere)."""
from __future__ import annotations

import os


def file_holders(*paths: str | os.PathLike[str]) -> list[str]:
    """'command line (pid N)' of every other process with one of `paths` open."""
    try:
        real = {os.path.realpath(p) for p in paths}
        pids = [p for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()]
    except OSError:
        return []
    out = []
    for pid in pids:
        fd_dir = f"/proc/{pid}/fd"
        try:
            held = any(os.path.realpath(os.path.join(fd_dir, fd)) in real for fd in os.listdir(fd_dir))
        except OSError:
            continue
        if not held:
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = " ".join(a.decode(errors="replace") for a in f.read().split(b"\0") if a)
        except OSError:
            cmd = ""
        out.append(f"{cmd[:60] or '?'} (pid {pid})")
    return out
