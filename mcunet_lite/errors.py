"""The one exception type for mistakes a user can fix (bad model name, bad width, bad file).

The CLI prints a `UserError` as one line and exits with code 2; anything else is a bug and keeps
its traceback. Each message names the problem and, where there is one, the fix.
"""


class UserError(ValueError):
    """A problem in the user's input, reported as one line that says what to change."""
