"""`python -m ts24_migrate` is the `ts24-migrate` command."""

from ts24_migrate.cli.main import run

run()
