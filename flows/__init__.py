"""Prefect flows: thin wiring of the stage steps (ts24_migrate.runs) per site and per fleet."""

from .quiet_errors import install as _install_quiet_errors

_install_quiet_errors()
