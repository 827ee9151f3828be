"""The ``genlab`` command: one typer app, one file per command, one error boundary.

Commands load lazily (click's ``LazyGroup`` pattern): ``genlab.cli.<name>_command`` is imported only when
its command runs, so ``genlab --help`` and a light command do not pay for torch, scikit-learn, pandas or
matplotlib. :data:`COMMANDS` names each command's module, function and one-line help, so that the
listing imports no command module.

A user error (any :class:`~genlab.errors.GenlabError`, or a bad command line) prints one line on
stderr and exits non-zero; ``GENLAB_DEBUG=1`` shows the traceback instead. Anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

import logging
import os
import sys
from difflib import get_close_matches
from importlib import import_module
from typing import Any, NamedTuple

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup

from genlab.errors import GenlabError


class Command(NamedTuple):
    """Where a command lives, and the line ``genlab --help`` shows for it."""

    module: str     # under genlab.cli
    function: str
    help: str       # the first paragraph of the function's docstring (a test keeps the two equal)


#: Every command in the order ``genlab --help`` lists them.
COMMANDS = {
    "datasets": Command("datasets_command", "datasets",
                        "List the built-in datasets; any .npy/.npz/.csv file or image folder works too."),
    "fit": Command("fit_command", "fit", "Train a generative model on DATA and save it to a run directory."),
    "sample": Command("sample_command", "sample", "Draw N new records from the model in RUN and write them to OUT."),
    "eval": Command("eval_command", "evaluate",
                    "Evaluate the model in RUN against the test split of REAL and print the metrics."),
    "compare": Command("compare_command", "compare",
                       "Evaluate every run in RUNS against the test split of REAL and print them ranked, best first."),
    "demo": Command("demo_command", "demo",
                    "Train every available family on built-in data (and a transformer on Python code), evaluate, "
                    "write OUT/report.html, print a ranked summary."),
    "interpolate": Command("interpolate_command", "interpolate",
                           "Draw two latents from the prior N(0, I) per path and write what the model decodes along "
                           "the way."),
    "compress": Command("compress_command", "compress",
                        "Compress a trained run: distil or prune (+ fine-tune), then quantise."),
    "export": Command("export_command", "export",
                      "Export a run's sampling network (generator, decoder, denoiser or cached decoder) for other "
                      "runtimes."),
    "serve": Command("serve_command", "serve",
                     "Serve the models in RUN... (or --runs-dir) over HTTP: the API under /v1 and a playground at /."),
    "variations": Command("variations_command", "variations",
                          "Write N variations of one record of the model in RUN to OUT."),
    "detect": Command("detect_command", "detect",
                      "Test the records in FILE for the watermark of KEY at a stated false-positive rate."),
    "attribute": Command("attribute_command", "attribute",
                         "Find the K training records nearest to each record in FILE and flag the memorised ones."),
    "audit": Command("audit_command", "audit_run",
                     "Audit the table model in RUN for bias against real rows and write an HTML report."),
}


def load_command(name: str) -> TyperCommand:
    """Import the module of command ``name`` and build its click command as ``app.command`` would."""
    entry = COMMANDS[name]
    single = typer.Typer(add_completion=False)
    single.command(name)(getattr(import_module(f"genlab.cli.{entry.module}"), entry.function))
    return typer.main.get_command(single)


class LazyGroup(TyperGroup):
    """A typer group whose commands are :data:`COMMANDS`, each imported on first use; its help lists
    them from the table, without importing any."""

    _listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in COMMANDS:
            return None
        if cmd_name not in self.commands:
            if self._listing:   # a stand-in that carries the name and the line the listing shows
                return TyperCommand(cmd_name, help=COMMANDS[cmd_name].help)
            self.commands[cmd_name] = load_command(cmd_name)
        return self.commands[cmd_name]

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except typer.TyperException as error:   # typer's own "did you mean" sees only the loaded commands
            matches = get_close_matches(args[0], list(COMMANDS)) if args else []
            if matches:
                error.message = f"{error.message.rstrip('.')}. Did you mean {', '.join(map(repr, matches))}?"
            raise

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


app = typer.Typer(
    name="genlab",
    cls=LazyGroup,
    help="Learn the distribution of your data and generate new samples from it.",
    no_args_is_help=True,
    add_completion=False,
    suggest_commands=False,   # LazyGroup suggests among every command
    pretty_exceptions_enable=False,
)


@app.callback()
def _group() -> None:
    """Nothing to do before a command (typer makes a group only for an app with a callback or commands)."""


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
        if not error.format_message().strip():   # `genlab` alone: the help is printed, there is no error
            sys.exit(getattr(error, "exit_code", 2))
        _fail(error.format_message(), getattr(error, "exit_code", 2))
    except (typer.Abort, KeyboardInterrupt):
        _fail("interrupted", 130)
    sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int) -> None:
    first_line = " ".join(message.split())
    print(f"genlab: error: {first_line}", file=sys.stderr)
    sys.exit(code)
