"""The `ts24-migrate` command line: a thin layer over the stage packages.

Commands live in ts24_migrate/commands/, one module per area; each module
lists its click commands in COMMANDS and is picked up here. Errors are
classified once, in `main`: a user error is one line on stderr and a
documented exit code; `--debug` shows the traceback.

Exit codes: 0 ok; 1 a verdict failed (validation, verification); 2 usage or
configuration error; 3 a database or folder unreachable; 4 refused by a
safety gate; 70 internal error (a bug: rerun with --debug).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

import click

from . import __version__, commands, silence_analytics
from .app import App, default_inventory_path
from .errors import ExitCode, Ts24Error
from .secrets import redact_url

EXIT_CODES_HELP = """Exit codes: 0 ok, 1 verdict failed, 2 usage/configuration error,
3 unreachable database or folder, 4 refused by a safety gate, 70 internal error."""


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
             epilog=EXIT_CODES_HELP)
@click.option("--inventory", "-i", type=click.Path(path_type=Path), default=None,
              help="Site inventory file [default: $TS24_INVENTORY or ./sites.yaml].")
@click.option("--json", "json_output", is_flag=True, help="Machine-readable JSON output (for schedulers).")
@click.option("--debug", is_flag=True, help="Show the full traceback on errors.")
@click.version_option(__version__, prog_name="ts24-migrate")
@click.pass_context
def cli(ctx: click.Context, inventory: Path | None, json_output: bool, debug: bool) -> None:
    """Retire TS24 dossier servers safely: assess, extract, back up, load, validate,
    reconcile, purge and certify, site by site.

    \b
    Example:
      ts24-migrate demo                      # make a demo site and migrate it end to end
      ts24-migrate -i sites.yaml sites list
      ts24-migrate -i sites.yaml assess hn-01 --json
    """
    app = App(inventory or default_inventory_path(), json_output=json_output, debug=debug)
    ctx.obj = app
    ctx.call_on_close(app.close)


def _register_commands() -> None:
    for module_info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{module_info.name}")
        for command in getattr(module, "COMMANDS", ()):
            cli.add_command(command)


_register_commands()


def main(argv: list[str] | None = None) -> int:
    silence_analytics()
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        cli.main(args=argv, prog_name="ts24-migrate", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return ExitCode.USAGE
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return ExitCode.USAGE
    except Ts24Error as exc:
        if debug:
            raise
        click.echo(f"error: {redact_url(str(exc))}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    except Exception as exc:
        if debug:
            raise
        click.echo(f"internal error: {type(exc).__name__}: {redact_url(str(exc)).splitlines()[0][:300] if str(exc) else ''}"
                   " (rerun with --debug and report it)", err=True)
        return ExitCode.INTERNAL
    return ExitCode.OK


def run() -> None:
    sys.exit(main())
