"""Knip host tool: talks to the trainer, keeps her sessions, analyses recordings."""
