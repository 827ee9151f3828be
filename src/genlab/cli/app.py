"""The ``genlab`` command: one typer app, one file per command, one error boundary.

A user error (any :class:`~genlab.errors.GenlabError`, or a bad command line) prints one line on
stderr and exits non-zero; ``GENLAB_DEBUG=1`` shows the traceback instead. Anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

import logging
import os
import sys

import typer

from genlab.cli import datasets_command, demo_command, eval_command, fit_command, sample_command
from genlab.cli import compare_command, interpolate_command
from genlab.cli import compress_command, export_command
from genlab.cli import serve_command, variations_command
from genlab.cli import attribute_command, detect_command
from genlab.cli import audit_command
from genlab.errors import GenlabError

app = typer.Typer(
    name="genlab",
    help="Learn the distribution of your data and generate new samples from it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("datasets")(datasets_command.datasets)
app.command("fit")(fit_command.fit)
app.command("sample")(sample_command.sample)
app.command("eval")(eval_command.evaluate)
app.command("compare")(compare_command.compare)
app.command("demo")(demo_command.demo)
app.command("interpolate")(interpolate_command.interpolate)
app.command("compress")(compress_command.compress)
app.command("export")(export_command.export)
app.command("serve")(serve_command.serve)
app.command("variations")(variations_command.variations)
app.command("detect")(detect_command.detect)
app.command("attribute")(attribute_command.attribute)
app.command("audit")(audit_command.audit_run)

#: Exit status of a user error (bad data, bad options, missing files); typer uses 2 for usage errors.
USER_ERROR = 1


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``genlab`` script: run the app inside the error boundary."""
    debug = os.environ.get("GENLAB_DEBUG") == "1"
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format="%(name)s: %(message)s")
    try:
        code = app(args=argv, standalone_mode=False, prog_name="genlab")
    except GenlabError as error:
        if debug:
            raise
        _fail(str(error), USER_ERROR)
    except typer.TyperException as error:  # usage errors: unknown option, missing argument, bad value
        if debug:
            raise
        _fail(error.format_message(), getattr(error, "exit_code", 2))
    except (typer.Abort, KeyboardInterrupt):
        _fail("interrupted", 130)
    sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int) -> None:
    first_line = " ".join(message.split())
    print(f"genlab: error: {first_line}", file=sys.stderr)
    sys.exit(code)
