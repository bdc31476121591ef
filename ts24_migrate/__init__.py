"""ts24-migrate: retire TS24 dossier servers safely.

The stage logic lives in the top-level packages (extract, transform, load,
backups, validation, reconcile, purge, audit). This package holds the kernel
they all stand on (`core`), the run of each stage that wires them (`runs`),
the command line (`cli`) and the demo site generator (`demo`); the layers are
drawn in docs/architecture.md.
"""

__version__ = "0.1.0"
TOOL_NAME = "ts24-migrate"


def silence_analytics() -> None:
    """Agency hosts are often offline and nothing about a site may leave them: no analytics."""
    import os

    for name, value in {
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "GX_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }.items():
        os.environ.setdefault(name, value)
