"""UsageError: bad arguments or input. `knip` reports it as one line
`knip: error: ...` with exit code 2 (knip_host.cli), never a traceback."""
from __future__ import annotations


class UsageError(Exception):
    """Bad arguments or input: reported as one line, exit code 2."""
