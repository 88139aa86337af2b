"""The errors tinyvision raises for a user's mistake, and the exit status the command line gives
each.

``InputError`` is a ValueError (so ``except ValueError`` keeps working) that the command line
prints as one line and exits with status 2; its subclasses say which input was wrong.
Every other failure the command line expects (an OSError naming a file, MemoryError, a
diverged run) exits with 1, and Ctrl-C with 130 (``cli.py``).
"""


class InputError(ValueError):
    """A flag, argument or file that tinyvision cannot use; the message names it and says what
    was expected."""


class CheckpointError(InputError):
    """A file given as a checkpoint or weights that is not one tinyvision can read: truncated,
    corrupted, of another format, or of another model."""


class RunDirError(InputError):
    """A run folder that a new run may not write into: it holds another run, or another process
    is writing it."""
