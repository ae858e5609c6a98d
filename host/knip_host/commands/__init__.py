"""The `knip` commands, one module per family: analyze; trainer (devices,
info, live, sync, sim); program; sessions (sessions, show); plot; export;
progress; report (--html); app (the local web app, knip_host.webapp);
esp32 (build, flash, deploy, profile).

A command is a `cmd_*` function (its docstring is the epilog of its --help)
and one `Command` entry in its module's COMMANDS (spec.py); registry.py
gathers them into the one table knip_host.cli builds its parser from.
Shared pieces: spec.py (the entry format, `arg`, argument types and shared
arguments), output.py (JSON on stdout, files written), stored.py (the
session database and the words for a stored session), connection.py (the
options that pick a trainer)."""
