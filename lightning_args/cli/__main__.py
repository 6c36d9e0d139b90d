"""``python -m lightning_args.cli``: the ``lightning-args`` command."""

import sys

from lightning_args.cli import main

sys.exit(main())
