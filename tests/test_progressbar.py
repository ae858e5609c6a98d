"""knip sync's progress bar counts bytes in KiB and MiB, as its summary does
(it said kB beside a summary in KiB)."""
import io

from knip_host.progressbar import ProgressBar


def _line(total: int, done: int, unit: str = "B") -> str:
    out = io.StringIO()
    ProgressBar(total, "session 3", unit=unit, stream=out, enabled=True).update(done)
    return out.getvalue()


def test_bytes_in_binary_units_and_other_counts_in_decimal_ones():
    assert " 50.0% 20.0Ki/40.0KiB " in _line(40 * 1024, 20 * 1024)
    assert " 100.0% 3.0Mi/3.0MiB " in _line(3 * 1024 * 1024, 3 * 1024 * 1024)
    assert " 50.0% 1.5M/3.0M samples " in _line(3_000_000, 1_500_000, " samples")
    assert _line(100, 0).count("[") == 1 and "0/100B" in _line(100, 0)


def test_off_when_not_a_terminal():
    out = io.StringIO()
    bar = ProgressBar(100, "session 3", stream=out)           # a StringIO is no terminal
    bar.update(50)
    bar.close()
    assert out.getvalue() == ""
