"""``python -m sceneforge.cli``: the command line."""

from .app import main

main()
