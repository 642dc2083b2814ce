"""`commands`: commands that must exit 0, run from the repository root (linters, say).
Every command runs, so one report shows every problem."""

import shlex

from pydantic import Field

from sentiment_release.gates.checks.base import (
    Check,
    CheckOptions,
    CheckResult,
    GateContext,
    register,
)
from sentiment_release.support.process import tail, tool


class CommandsOptions(CheckOptions):
    commands: list[list[str]] = Field(min_length=1)
    timeout_seconds: int = Field(default=1800, ge=1, le=7200)


@register
class Commands(Check):
    kind = "commands"
    Options = CommandsOptions

    def check(self, context: GateContext, result: CheckResult) -> None:
        options: CommandsOptions = self.options
        log = context.reports / f"{self.name}.log"
        for argv in options.commands:
            if not argv:
                result.fail("an empty command")
                continue
            code = context.run([tool(argv[0]), *argv[1:]], log, options.timeout_seconds)
            if code != 0:
                why = "timed out" if code is None else f"exited {code}"
                result.fail(f"`{shlex.join(argv)}` {why}:\n{tail(log)}")
        result.figures["commands"] = len(options.commands)
        result.reports.append(context.report(log))
