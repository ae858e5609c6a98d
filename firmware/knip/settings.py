# What the device keeps between sessions, beside the sessions themselves:
# her calibration (knip.json) and the custom programs a host pushed
# (programs/NAME.json). Each file is written whole, then renamed into place,
# so a power cut leaves the old version or the new one, never half of one.
import json
import os

from knip.fixed import const
from knip import programs
from knip.coach import NA

_MAX_CUSTOM = const(16)        # custom programs kept on the device


def write_json(path, doc):
    """Replace a JSON file; False when storage is full or read-only."""
    tmp = path + ".new"
    try:
        with open(tmp, "w") as f:
            f.write(json.dumps(doc))
        os.rename(tmp, path)
        return True
    except OSError:
        try:
            os.remove(tmp)
        except OSError:
            pass
        return False


class Settings:
    """Her calibration: MVC and resting level in detector counts."""

    def __init__(self, root):
        self.path = root + "/knip.json"
        self.mvc = 0                # counts above rest; 0 = not calibrated
        self.rest_level = NA        # from the last calibration
        try:
            with open(self.path) as f:
                d = json.load(f)
            self.mvc = int(d.get("mvc", 0))
            self.rest_level = int(d.get("rest", NA))
        except (OSError, ValueError, TypeError, AttributeError):
            pass                  # none yet (or unreadable): uncalibrated

    def save(self):
        return write_json(self.path, {"mvc": self.mvc, "rest": self.rest_level})


class ProgramShelf:
    """The built-in programs and the custom ones kept on the device."""

    def __init__(self, root):
        self.dir = root + "/programs"
        self.custom = {}            # name -> (title, phases)
        self.errors = []            # custom files that did not parse
        try:
            names = [n for n in os.listdir(self.dir) if n.endswith(".json")]
        except OSError:
            return
        for n in names:
            try:
                with open(self.dir + "/" + n) as f:
                    name, title, phases = programs.parse(json.load(f))
                self.custom[name] = (title, phases)
            except (OSError, ValueError) as e:
                self.errors.append("%s: %s" % (n, e))

    def get(self, name):
        """(title, phases) of a built-in or custom program, or None."""
        if name in self.custom:
            return self.custom[name]
        p = programs.builtin(name)
        return None if p is None else (p[1], p[2])

    def names(self):
        return sorted(set(programs.BUILTIN_NAMES) | set(self.custom))

    def put(self, doc):
        """Validate and keep a custom program, or remove one ({"remove": name});
        raises KeyError/ValueError/OSError and then leaves every program as it was."""
        if isinstance(doc, dict) and "remove" in doc:
            name = doc["remove"]
            if not isinstance(name, str):
                raise programs.ProgramError("remove: expected the name of a custom program")
            if name not in self.custom:
                raise KeyError(name)
            os.remove(self.dir + "/" + name + ".json")
            del self.custom[name]
            return name
        name, title, phases = programs.parse(doc)
        if name in programs.BUILTIN_NAMES:
            raise programs.ProgramError("name: '%s' is a built-in program; choose another name" % name)
        if name not in self.custom and len(self.custom) >= _MAX_CUSTOM:
            raise programs.ProgramError("the device keeps %d custom programs; remove one first" % _MAX_CUSTOM)
        try:
            os.mkdir(self.dir)
        except OSError:
            pass
        if not write_json(self.dir + "/" + name + ".json", programs.to_doc(name, title, phases)):
            raise OSError("cannot save the program: storage full or read-only; sync to free space")
        self.custom[name] = (title, phases)
        return name
