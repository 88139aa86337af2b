"""What a training loop shows while it runs: a progress bar over the batches, one log line per
epoch, and the losses read back from the device a few steps at a time (``read_losses``),
which also stops a run whose loss has diverged."""
import math


def say(line):
    """Print and flush, so that a log redirected to a file is current after every epoch."""
    print(line, flush=True)


def read_losses(arrays, epoch, step, hint, what="loss"):
    """Loss scalars kept on the device -> Python floats, in one host read (on a GPU, one
    synchronisation per logging interval rather than per step). A non-finite value stops the
    run with a clear error: a diverged run would otherwise go on training on NaNs."""
    losses = [float(v) for v in arrays]
    if not all(math.isfinite(v) for v in losses):
        raise FloatingPointError(f"the {what} became {losses[-1]} at epoch {epoch}, step {step}; {hint}")
    return losses


class _NoBar:
    def update(self, n): pass
    def set_postfix(self, **kw): pass
    def close(self): pass


def progress_bar(total, desc, enabled, initial=0):
    """A tqdm bar over ``total`` batches, or (``enabled`` False) one that shows nothing."""
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, initial=initial, unit="batch", dynamic_ncols=True, leave=False)
