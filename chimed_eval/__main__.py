"""``python -m chimed_eval``: the ``chimed-eval`` command line."""

import sys

from chimed_eval.cli.app import main

if __name__ == "__main__":
    sys.exit(main())
