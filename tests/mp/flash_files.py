# The virtual trainer's flash from outside, for fault injection in tests (run
# while no trainer uses the image): copy a file out of the littlefs image or
# put one in, as a bad flash cell or a hand-edited file would leave it.
#   flash_files.py get IMAGE PATH OUT     /flash/PATH -> the host file OUT
#   flash_files.py put IMAGE PATH IN      the host file IN -> /flash/PATH
#   flash_files.py ls IMAGE PATH          names in /flash/PATH
import os
import sys
from simboard.blockdev import mount


def main():
    cmd, image, path = sys.argv[1], sys.argv[2], "/flash/" + sys.argv[3]
    mount(image, "/flash", 4096, 512)
    if cmd == "get":
        with open(path, "rb") as f, open(sys.argv[4], "wb") as g:
            g.write(f.read())
    elif cmd == "put":
        with open(sys.argv[4], "rb") as f, open(path, "wb") as g:
            g.write(f.read())
    elif cmd == "ls":
        print(" ".join(sorted(os.listdir(path))))


main()
