"""Ctrl-C during training. The first one is a request, acted on between two optimizer steps,
so that the checkpoint then written never holds a half-applied update; a second one stops at
once, without saving."""
import signal
import threading


class StopRequested(KeyboardInterrupt):
    """The first Ctrl-C, acted on between two optimizer steps (the run is saved)."""


class DeferredInterrupt:
    """``with DeferredInterrupt() as stop:`` turns the first Ctrl-C (SIGINT) into
    ``stop.requested = True``, which the loop checks between steps; a second Ctrl-C raises
    KeyboardInterrupt at once. The previous handler comes back on exit. Outside the main
    thread (where signals cannot be caught) only the flag exists, and stays False."""

    def __init__(self):
        self.requested, self.previous = False, None

    def __enter__(self):
        self.requested, self.previous = False, None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def stopped_at_once(last_saved, path):
    """The line printed when a second Ctrl-C stops a run without saving: where it can resume
    from. ``last_saved``: (epoch, step) of the checkpoint at ``path``, or None."""
    if last_saved is None:
        return "\nstopped at once, without saving; no checkpoint was saved"
    epoch, step = last_saved
    when = f"epoch {epoch + 1}, step {step}" if step else f"the end of epoch {epoch}"
    return f"\nstopped at once, without saving; the last checkpoint, {path}, is from {when}"
