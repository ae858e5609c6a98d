# Power-cut check for tests/test_store.py, run under the MicroPython unix port
# on a file-backed littlefs (firmware/simboard/blockdev.py):
#   store_kill.py write IMAGE    record; prints "ready" once data is
#                                on flash, then the parent kills the process
#   store_kill.py recover IMAGE  boot: recover(), then check every record
import sys
import time
from simboard.blockdev import mount
from knip.store import SessionStore, REC_SAMPLES, REC_HEADER, REC_RECOVERED, iter_records, scan


def payload(i, buf):
    n = 1 + (i * 37) % 300
    for k in range(n):
        buf[k] = (i + k) & 0xFF
    return n


def write(image):
    mount(image, "/flash", 4096, 512)
    s = SessionStore("/flash/sessions")
    s.begin(b'{"kill":1}')
    buf = bytearray(300)
    i = 0
    while i < 5000:     # ~800 KB, then wait for the kill
        s.append(REC_SAMPLES, buf, payload(i, buf))
        i += 1
        if i % 97 == 0:
            s.flush()
            if i == 485:    # these 485 records are on flash now
                print("ready")
    time.sleep(60)


def recover(image):
    mount(image, "/flash", 4096, 512)
    s = SessionStore("/flash/sessions")
    done = s.recover()
    sid = s.list()[0]["id"]
    with open("/flash/sessions/%08x.kss" % sid, "rb") as f:
        data = f.read()
    valid, n, closed, err = scan(data)
    buf = bytearray(300)
    i = 0
    for t, p, o in iter_records(data):
        if t == REC_SAMPLES:
            k = payload(i, buf)
            assert bytes(p) == bytes(buf[:k]), "record %d differs" % i
            i += 1
        else:
            assert t in (REC_HEADER, REC_RECOVERED), t
    print("recovered", len(done), "records", i, "closed", closed, "error", err, "size", len(data), valid)


{"write": write, "recover": recover}[sys.argv[1]](sys.argv[2])
