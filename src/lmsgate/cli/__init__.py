"""The ``lmsgate`` command."""
