"""``python -m sceneforge``: the command line."""

from .cli import main

main()
