"""The `ts24-migrate` command line: a thin layer over the stage packages.

Commands live in ts24_migrate/cli/commands/, one module per area; each module
lists its click commands in COMMANDS and is picked up here. Command modules
import the stage packages inside their functions, so `--help` starts at once.

Errors are classified once, in `main` (ts24_migrate.core.errors.classify): a user
error is one line on stderr and a documented exit code; `--debug` adds the
traceback and keeps the code; `--json` prints exactly one JSON object on
stdout, on success and on failure. `--json` and `--debug` are accepted
anywhere on the command line.

Exit codes: 0 ok; 1 a verdict failed (validation, verification); 2 usage or
configuration error; 3 a database or folder unreachable; 4 refused by a
safety gate; 70 internal error (a bug: rerun with --debug); 130 interrupted.
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import pkgutil
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from ts24_migrate import __version__, silence_analytics
from ts24_migrate.cli import commands
from ts24_migrate.core.errors import ExitCode, FolderUnusable, Ts24Error, classify, documented_class
from ts24_migrate.core.secrets import redact_url
from ts24_migrate.runs.app import App, default_inventory_path

from .interrupts import ctrl_c_received, interrupt_handling

EXIT_CODES_HELP = """Exit codes: 0 ok, 1 verdict failed, 2 usage/configuration error,
3 unreachable database or folder, 4 refused by a safety gate, 70 internal error, 130 interrupted.
--json and --debug may also follow the command."""


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}, epilog=EXIT_CODES_HELP)
@click.option(
    "--inventory",
    "-i",
    type=click.Path(path_type=Path),
    default=None,
    help="Site inventory file [default: $TS24_INVENTORY or ./sites.yaml].",
)
@click.option(
    "--json",
    "json_output",
    is_flag=True,
    help="Print exactly one JSON object on stdout (for schedulers), also on failure.",
)
@click.option("--debug", is_flag=True, help="Show the full traceback on errors (the exit code stays).")
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
    app = ctx.obj if isinstance(ctx.obj, App) else App(default_inventory_path())
    app.inventory_path = inventory or default_inventory_path()
    app.json_output = app.json_output or json_output
    app.debug = app.debug or debug
    ctx.obj = app
    ctx.call_on_close(app.close)


def _register_commands() -> None:
    for module_info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{module_info.name}")
        for command in getattr(module, "COMMANDS", ()):
            cli.add_command(command)


_register_commands()


def split_global_flags(argv: list[str]) -> tuple[list[str], bool, bool]:
    """Take --json and --debug from anywhere before a `--` (click wants them before the command)."""
    rest: list[str] = []
    json_output = debug = False
    for position, arg in enumerate(argv):
        if arg == "--":
            rest += argv[position:]
            break
        if arg == "--json":
            json_output = True
        elif arg == "--debug":
            debug = True
        else:
            rest.append(arg)
    return rest, json_output, debug


@contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """With --json, stdout carries the one JSON object only: anything else written while the command
    runs (by us, a library or a child process such as a temporary Prefect server) goes to stderr."""
    sys.stdout.flush()
    try:
        fd = sys.stdout.fileno()
        saved = os.dup(fd)
    except (AttributeError, OSError, ValueError):  # not a real file (e.g. captured in a test)
        real, sys.stdout = sys.stdout, sys.stderr
        try:
            yield
        finally:
            sys.stdout = real
        return
    try:
        os.dup2(sys.stderr.fileno(), fd)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, fd)
        os.close(saved)


def _error_line(error: Ts24Error) -> str:
    return redact_url(str(error)).strip() or type(error).__name__


def _json_document(code: int, payload: Any, error: dict[str, str] | None) -> str:
    document: dict[str, Any] = {}
    if isinstance(payload, dict):
        document.update(payload)
    elif payload is not None:
        document["result"] = payload
    document.update(ok=code == ExitCode.OK, exit_code=code)
    if error is not None:
        document["error"] = error
    return json.dumps(document, default=str, ensure_ascii=False)


def main(argv: list[str] | None = None) -> int:
    silence_analytics()
    args, json_output, debug = split_global_flags(list(sys.argv[1:] if argv is None else argv))
    app = App(default_inventory_path(), json_output=json_output, debug=debug)
    if json_output:
        args = ["--json", *args]
    try:
        with interrupt_handling():
            if json_output:
                with _stdout_to_stderr():
                    code, error = _run(args, app, debug)
                click.echo(_json_document(code, app.json_payload, error))
            else:
                code, _ = _run(args, app, debug)
    except KeyboardInterrupt:  # Ctrl-C after the command ended, while its result was printed
        return ExitCode.INTERRUPTED
    return code


def _run(args: list[str], app: App, debug: bool) -> tuple[int, dict[str, str] | None]:
    """Run the command; return its exit code and, on failure, the error for the JSON document."""
    try:
        try:
            cli.main(args=args, prog_name="ts24-migrate", standalone_mode=False, obj=app)
        except click.exceptions.Abort as abort:
            # click turns Ctrl-C into Abort; it is the user's interruption, not a usage error.
            if isinstance(abort.__context__, KeyboardInterrupt):
                raise abort.__context__ from None
            raise
    except click.exceptions.Exit as exc:
        return int(exc.exit_code), None
    except click.exceptions.Abort:
        return _report(ExitCode.USAGE, "UsageError", "aborted", None, debug)
    except click.ClickException as exc:
        exc.show()
        return ExitCode.USAGE, {"class": "UsageError", "message": exc.format_message()}
    except BaseException as exc:  # noqa: BLE001 - the one boundary where every failure gets its class
        if isinstance(exc, (SystemExit, GeneratorExit)):
            raise
        outcome = app.failed_outcome  # the command's outcome line (commands/outcome.py)
        if outcome is not None and app.json_output:
            app.json_payload = {**(app.json_payload if isinstance(app.json_payload, dict) else {}), "outcome": outcome}
        known = classify(KeyboardInterrupt() if ctrl_c_received() else exc)
        if known is None:
            message = f"{type(exc).__name__}: {redact_url(str(exc)).splitlines()[0][:300] if str(exc) else ''}"
            return _report(
                ExitCode.INTERNAL,
                "InternalError",
                message,
                exc,
                debug,
                prefix="internal error",
                suffix=" (rerun with --debug and report it)",
            )
        if isinstance(known, FolderUnusable) and known.folder is None and app.sqlite_folders():
            known = FolderUnusable(
                f"{known} (check the permissions and free space of {', '.join(map(str, app.sqlite_folders()))})"
            )
        return _report(known.exit_code, documented_class(known), _error_line(known), exc, debug)
    return ExitCode.OK, None


def _report(
    code: int,
    kind: str,
    message: str,
    exc: BaseException | None,
    debug: bool,
    *,
    prefix: str = "error",
    suffix: str = "",
) -> tuple[int, dict[str, str]]:
    """One line on stderr (after the traceback with --debug); the error for the JSON document."""
    if debug and exc is not None:
        traceback.print_exception(exc, file=sys.stderr)
    click.echo(f"{prefix}: {message}{suffix}", err=True)
    return code, {"class": kind, "message": message}


def run() -> None:
    code = main()
    end_process(code)


def end_process(code: int) -> None:
    """Exit with `code` without the interpreter's teardown of every module: once pandas, pyarrow,
    Great Expectations and Prefect are loaded, that teardown alone takes seconds and does nothing for
    us. What an exit must do still happens, in the interpreter's order: threads are stopped and
    joined, exit hooks run (logs flushed, temporary files and a temporary Prefect server removed),
    output is flushed."""
    shutdown_threads = getattr(threading, "_shutdown", None)
    if shutdown_threads is None:  # another interpreter: the ordinary exit
        sys.exit(code)
    shutdown_threads()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
