"""The ``denial-triage`` console command: thin sub-commands over plain functions.

Each sub-command's module is imported only when that command runs (or its own help is asked
for): the models' libraries take seconds to import, and ``denial-triage --help`` needs none of
them. The listing reads each command's one-line help from its module's source instead.
"""

from __future__ import annotations

import ast
from functools import cache
from importlib import import_module
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

HELP = "Triage medical billing denials: root cause, recovery likelihood, preventability."
# name: (module under denial_triage.commands, its command function or Typer app, help of a
# group of commands; a function's help is its docstring), in the order --help lists them.
COMMANDS: dict[str, tuple[str, str, str | None]] = {
    "generate": ("data", "generate", None),
    "validate": ("data", "validate", None),
    "profile": ("data", "profile", None),
    "schema": ("data", "schema", None),
    "ingest": ("ingest", "ingest", None),
    "link-outcomes": ("ingest", "link_outcomes", None),
    "train": ("train", "train", None),
    "evaluate": ("train", "evaluate", None),
    "promote": ("train", "promote", None),
    "backtest": ("train", "backtest", None),
    "label-queue": ("label_queue", "label_queue_command", None),
    "plan": ("plan", "plan", None),
    "serve": ("serve", "serve", None),
    "score": ("serve", "score", None),
    "quickstart": ("quickstart", "quickstart", None),
    "codes": ("codes", "app", "CARC and RARC reference: labels and official lists."),
    "mapping": ("mapping", "app", "The governed CARC/RARC to root-cause mapping."),
    "keys": ("keys", "app", "API keys of the service: create, list, revoke."),
    "db": ("db", "app", "The service's records database."),
    "monitor": (
        "monitor",
        "app",
        "Watch payers and models: payer behaviour alerts, calibration and drift.",
    ),
}


def command_help(module: str, attribute: str) -> str:
    """A command function's docstring, read from its module's source without importing it."""
    spec = find_spec(f"denial_triage.commands.{module}")
    assert spec is not None and spec.origin is not None, module
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == attribute:
            return ast.get_docstring(node) or ""
    raise LookupError(f"denial_triage.commands.{module} has no function {attribute}")


@cache
def load_command(name: str) -> Any:
    """The real command (or group) behind ``name``, importing its module."""
    module, attribute, group_help = COMMANDS[name]
    target = getattr(import_module(f"denial_triage.commands.{module}"), attribute)
    if isinstance(target, typer.Typer):
        group = typer.main.get_group(target)
        group.help = group_help or group.help
        return group
    single = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
    single.command(name)(target)
    return typer.main.get_command(single)


class LazyCommand(TyperCommand):
    """Stands in for a command in the listing; running it (or its --help) loads the real one."""

    def make_context(self, info_name: str | None, args: list[str], parent=None, **extra: Any):
        return load_command(self.name).make_context(info_name, args, parent=parent, **extra)


class LazyGroup(TyperGroup):
    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        for name, (module, attribute, group_help) in COMMANDS.items():
            text = group_help or command_help(module, attribute)
            self.add_command(LazyCommand(name=name, help=text, callback=None))


app = typer.Typer(
    name="denial-triage",
    cls=LazyGroup,
    help=HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """The sub-commands are added by :class:`LazyGroup`."""
