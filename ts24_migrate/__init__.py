"""ts24-migrate: the configuration, control store and CLI of the TS24 retirement tool.

The stage logic lives in the top-level packages (extract, transform, load,
validation, backups, reconcile, purge, audit); this package only holds what
every stage shares and the entry points that wire them.
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
