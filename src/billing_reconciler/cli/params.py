"""Option types shared by commands: values click's own types let through but nothing can use."""

from __future__ import annotations

import math

import click


class Seconds(click.ParamType):
    """A finite, non-negative number of seconds: click's float takes `nan` and `inf`, and
    `--lock-timeout nan` was a traceback deep in the lock wait."""

    name = "seconds"

    def convert(self, value, param, ctx):
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if not math.isfinite(seconds) or seconds < 0 or seconds > 86_400 * 365:
            self.fail(f"{value!r} is not a number of seconds between 0 and 31536000 (a year)", param, ctx)
        return seconds


SECONDS = Seconds()
