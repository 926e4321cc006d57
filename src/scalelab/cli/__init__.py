"""The ``scalelab`` command-line interface (typer)."""
