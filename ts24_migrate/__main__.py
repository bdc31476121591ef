"""`python -m ts24_migrate` is the `ts24-migrate` command."""

from .cli import run

run()
