"""The task flags of `diffeditor edit` and `diffeditor submit`, defined once and torch-free.

Options are generated from the task parameter models in `diffeditor.tasks` (one source for names,
defaults and ranges): a subcommand per task, its file inputs (`--image`, `--mask`, ...), `--offset`
and `--points`, and every other parameter as `--snake-case-name`. The engine's CLI adds the model
and device flags, the client's CLI the server's; neither imports the other's dependencies.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import NoReturn, get_args

from pydantic import ValidationError

from diffeditor.tasks import FILES_BY_TASK, PARAMS_BY_TASK, CommonParams, parse_params

_SPECIAL = {"task", "offset", "points"}


class Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line, with no usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"diffeditor {self.prog.split()[-1]}: error: {message}\n")


def fail(field: str, message: str) -> NoReturn:
    """Exit 2 with one line naming the field at fault."""
    print(f"diffeditor: invalid {field}: {message}", file=sys.stderr)
    raise SystemExit(2)


def pair(text: str) -> list[float]:
    parts = text.split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected DX,DY, got {text!r}")
    try:
        return [float(v) for v in parts]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected numbers in {text!r}") from exc


def points(text: str) -> list[float]:
    try:
        a, b = text.split(":")
        return pair(a) + pair(b)
    except (ValueError, argparse.ArgumentTypeError) as exc:
        raise argparse.ArgumentTypeError(f"expected X1,Y1:X2,Y2, got {text!r}") from exc


def task_parser(
    prog: str, description: str, add_more: Callable[[argparse.ArgumentParser], None]
) -> argparse.ArgumentParser:
    """A parser with one subcommand per task, each with the task's flags, then `add_more`'s."""
    parser = Parser(prog=prog, description=description)
    sub = parser.add_subparsers(dest="task", required=True, parser_class=Parser)
    for task, model in PARAMS_BY_TASK.items():
        p = sub.add_parser(task, help=(model.__doc__ or "").splitlines()[0])
        add_task_flags(p, task)
        add_more(p)
    return parser


def add_task_flags(p: argparse.ArgumentParser, task: str) -> None:
    """The flags of one task: its file inputs, `--offset`/`--points`, and its other parameters."""
    model = PARAMS_BY_TASK[task]
    required, optional = FILES_BY_TASK[task]
    for name in (*required, *optional):
        p.add_argument(f"--{name.replace('_', '-')}", dest=name, required=name in required, metavar="IMG")
    if "offset" in model.model_fields:
        p.add_argument("--offset", type=pair, required=task == "move", metavar="DX,DY")
    if "points" in model.model_fields:
        p.add_argument("--points", type=points, action="append", required=True, metavar="X1,Y1:X2,Y2")
    for name, info in model.model_fields.items():
        if name in _SPECIAL:
            continue
        # `int | None` (seed, max_resolution) parses as int; None defaults are said in the description.
        kinds = [a for a in get_args(info.annotation) if a is not type(None)] or [info.annotation]
        kind = {int: int, float: float, str: str}.get(kinds[0], str)
        default = "" if info.default is None else f" (default {info.default})"
        p.add_argument(
            f"--{name.replace('_', '-')}",
            dest=name,
            type=kind,
            default=None,
            help=f"{info.description or ''}{default}",
        )


def attach_negative_values(argv: list[str]) -> list[str]:
    """`--offset -20,-10` → `--offset=-20,-10`: argparse would read "-20,-10" as an option."""
    out: list[str] = []
    it = iter(argv)
    for token in it:
        if token in ("--offset", "--points"):
            value = next(it, None)
            if value is not None and value.startswith("-"):
                out.append(f"{token}={value}")
                continue
            out.append(token)
            if value is not None:
                out.append(value)
            continue
        out.append(token)
    return out


def params_from_args(args: argparse.Namespace) -> CommonParams:
    """The task's parameters from parsed flags; a bad value exits 2 naming the field."""
    model = PARAMS_BY_TASK[args.task]
    values = {k: v for k, v in vars(args).items() if k in model.model_fields and v is not None}
    try:
        return parse_params(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(x) for x in err["loc"][1:] if not isinstance(x, int)) or "params"
        fail(field, err["msg"])


def file_args(args: argparse.Namespace) -> dict[str, str]:
    """The file flags given, by part name: {"image": "in.png", ...}."""
    required, optional = FILES_BY_TASK[args.task]
    return {n: getattr(args, n) for n in (*required, *optional) if getattr(args, n) is not None}
