"""The one exception type for mistakes a user can fix, and how it ends a command."""

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

from hydra.errors import InstantiationException


class UserError(Exception):
    """A bad override, missing data or a corrupt checkpoint.

    The entry points print it as one line on stderr and exit non-zero, with no traceback:
    the user needs to know what to change, not where in our code we noticed.
    """


@contextmanager
def user_errors_unwrapped() -> Iterator[None]:
    """Hydra's instantiate wraps whatever a constructor raised; a UserError from inside (a
    missing folder, an image height the network cannot take) is the user's to fix, so it
    comes out as itself, to be printed as one line."""
    try:
        yield
    except InstantiationException as err:
        if isinstance(err.__cause__, UserError):
            raise err.__cause__ from None
        raise


def last_line(exception: BaseException) -> str:
    """The line of an error that says what went wrong (Python puts it last)."""
    return (str(exception).strip().splitlines() or [repr(exception)])[-1]


def exit_with(err: UserError) -> NoReturn:
    """End the command with the error's one line and exit status 2. Also for code Hydra calls
    outside the task function (a sweeper, a launcher), where Hydra would print a traceback."""
    print(f"error: {err}", file=sys.stderr)
    sys.exit(2)
