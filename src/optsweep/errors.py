"""The one exception type for mistakes a user can fix."""


class UserError(Exception):
    """A bad override, missing data or a corrupt checkpoint.

    The entry points print it as one line on stderr and exit non-zero, with no traceback:
    the user needs to know what to change, not where in our code we noticed.
    """


def last_line(exception: BaseException) -> str:
    """The line of an error that says what went wrong (Python puts it last)."""
    return (str(exception).strip().splitlines() or [repr(exception)])[-1]
