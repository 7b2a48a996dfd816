"""``python -m lipdub`` is the same as the ``lipdub`` console script."""

from lipdub.cli import main

main()
