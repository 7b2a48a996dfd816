"""The ``lipdub`` command line (placeholder until the commands land)."""

import click


@click.group()
def main() -> None:
    """lipdub."""
