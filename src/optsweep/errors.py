"""The one exception type for mistakes a user can fix, and how it ends a command."""

import sys
from typing import NoReturn


class UserError(Exception):
    """A bad override, missing data or a corrupt checkpoint.

    The entry points print it as one line on stderr and exit non-zero, with no traceback:
    the user needs to know what to change, not where in our code we noticed.
    """


def exit_with(err: UserError) -> NoReturn:
    """End the command with the error's one line and exit status 2. Also for code Hydra calls
    outside the task function (a sweeper, a launcher), where Hydra would print a traceback."""
    print(f"error: {err}", file=sys.stderr)
    sys.exit(2)
