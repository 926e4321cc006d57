"""Options shared by several commands, defined once as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

import typer

from ._output import OutputFormat

FormatOpt = Annotated[
    OutputFormat, typer.Option("--format", "-f", help="Output format: human tables or JSON for scripts.")
]
