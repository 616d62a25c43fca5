"""``python -m frnn_cli ...``: the same as the ``frnn`` command."""

from frnn_cli.cli import main

if __name__ == "__main__":
    main()
