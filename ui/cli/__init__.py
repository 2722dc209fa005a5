"""The `northstar` command line (typer)."""
