"""Learning-rate schedules, each a closed form lr_at(t) of the step count t.

A scheduler sets ``group['lr']`` of its optimizer's parameter groups. It counts its own
``step()`` calls: after construction the groups hold lr_at(0), after k calls lr_at(k). Call
``step()`` after ``optimizer.step()``, once per epoch or once per iteration: the schedule's
lengths (step_size, milestones, T_max, total_steps, warmup_steps) are in the unit you step in.
(``tinyvision.train`` steps per iteration, so warmup and decay are smooth.)

Because the learning rate is a pure function of the counter, the counter is the whole state:
``state_dict()`` saves it (and the base rates) and a resumed run continues exactly; ``lr_at``
evaluates the schedule at any step without touching the optimizer, for plots.

Each group's base rate is its lr when the first scheduler was attached (kept in the group as
'initial_lr', as PyTorch does, so that a second scheduler built on the same optimizer and a
reloaded optimizer see the same base).
"""
import bisect
import math


class LRScheduler:
    """Base class: subclasses define ``lr_at(step) -> [lr per group]``."""

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.base_lrs = [float(g.setdefault("initial_lr", g["lr"])) for g in optimizer.param_groups]
        self._apply(0)

    def lr_at(self, step):
        """The learning rate of every parameter group after ``step`` calls of step()."""
        raise NotImplementedError

    def _apply(self, step):
        # Evaluate before committing anything: a step the schedule refuses changes nothing.
        self._last_lr = self.lr_at(step)
        self.last_step = step
        for group, lr in zip(self.optimizer.param_groups, self._last_lr):
            group["lr"] = lr

    def step(self):
        """Advance the schedule by one step and set the groups' learning rates."""
        self._apply(self.last_step + 1)

    def get_last_lr(self):
        """The learning rates the last step (or the construction) set, one per group."""
        return list(self._last_lr)

    def state_dict(self):
        return {"last_step": self.last_step, "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state):
        self.base_lrs = [float(lr) for lr in state["base_lrs"]]
        self._apply(int(state["last_step"]))


class StepLR(LRScheduler):
    """Decay by gamma every step_size steps:  lr_t = base * gamma^floor(t / step_size)."""

    def __init__(self, optimizer, step_size, gamma=0.1):
        if step_size < 1:
            raise ValueError(f"StepLR: step_size must be >= 1, got {step_size}")
        self.step_size, self.gamma = int(step_size), float(gamma)
        super().__init__(optimizer)

    def lr_at(self, step):
        return [base * self.gamma ** (step // self.step_size) for base in self.base_lrs]


class MultiStepLR(LRScheduler):
    """Decay by gamma at each milestone:  lr_t = base * gamma^(number of milestones <= t)."""

    def __init__(self, optimizer, milestones, gamma=0.1):
        self.milestones, self.gamma = sorted(int(m) for m in milestones), float(gamma)
        super().__init__(optimizer)

    def lr_at(self, step):
        return [base * self.gamma ** bisect.bisect_right(self.milestones, step) for base in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """Half a cosine from base down to eta_min over T_max steps (SGDR without restarts):

        lr_t = eta_min + (base - eta_min) * (1 + cos(pi * t / T_max)) / 2

    (PyTorch's closed form; past T_max the cosine rises again, as PyTorch's does.)
    """

    def __init__(self, optimizer, T_max, eta_min=0.0):
        if T_max < 1:
            raise ValueError(f"CosineAnnealingLR: T_max must be >= 1, got {T_max}")
        self.T_max, self.eta_min = int(T_max), float(eta_min)
        super().__init__(optimizer)

    def lr_at(self, step):
        c = (1.0 + math.cos(math.pi * step / self.T_max)) / 2.0
        return [self.eta_min + (base - self.eta_min) * c for base in self.base_lrs]


class LinearLR(LRScheduler):
    """A straight line from base * start_factor to base * end_factor over total_iters steps,
    then constant (PyTorch's LinearLR, closed form):

        lr_t = base * (start_factor + (end_factor - start_factor) * min(t, total_iters) / total_iters)

    ``LinearLR(opt, 1.0, 0.0, T)`` decays linearly to 0; behind ``LinearWarmup`` it makes the
    triangular schedule of fast CIFAR recipes (``recipes.build_scheduler``, 'triangle').
    """

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5):
        if total_iters < 1:
            raise ValueError(f"LinearLR: total_iters must be >= 1, got {total_iters}")
        if not (0.0 <= start_factor and 0.0 <= end_factor):
            raise ValueError(f"LinearLR: factors must be >= 0, got {start_factor}, {end_factor}")
        self.start_factor, self.end_factor = float(start_factor), float(end_factor)
        self.total_iters = int(total_iters)
        super().__init__(optimizer)

    def lr_at(self, step):
        f = self.start_factor + (self.end_factor - self.start_factor) * min(step, self.total_iters) / self.total_iters
        return [base * f for base in self.base_lrs]


class LinearWarmup(LRScheduler):
    """A linear warmup in front of another schedule ``after``, which then runs shifted by
    warmup_steps (its step 0 comes right after the warmup):

        lr_t = after.lr_at(0) * (s + (1 - s) * t / W)     for t < W = warmup_steps
        lr_t = after.lr_at(t - W)                          for t >= W

    The start factor s defaults to 1 / (W + 1), so the ramp is (t + 1) / (W + 1): no step is
    wasted at lr 0, and the line ends exactly where ``after`` begins. Give ``after`` its
    length without the warmup (e.g. CosineAnnealingLR(opt, T_max=total - W)).

    Usage: ``sched = LinearWarmup(CosineAnnealingLR(opt, T_max=total - W), warmup_steps=W)``;
    step only the warmup scheduler, it drives ``after``.
    """

    def __init__(self, after, warmup_steps, start_factor=None):
        if warmup_steps < 1:
            raise ValueError(f"LinearWarmup: warmup_steps must be >= 1, got {warmup_steps}")
        self.after, self.warmup_steps = after, int(warmup_steps)
        self.start_factor = 1.0 / (self.warmup_steps + 1) if start_factor is None else float(start_factor)
        super().__init__(after.optimizer)

    def lr_at(self, step):
        if step >= self.warmup_steps:
            return self.after.lr_at(step - self.warmup_steps)
        s = self.start_factor
        return [lr * (s + (1.0 - s) * step / self.warmup_steps) for lr in self.after.lr_at(0)]

    def _apply(self, step):
        super()._apply(step)
        # Keep the wrapped schedule's counter in step, so that its own get_last_lr() and
        # state_dict() describe the same point of training.
        self.after.last_step = max(0, step - self.warmup_steps)
        self.after._last_lr = self.after.lr_at(self.after.last_step)

    def state_dict(self):
        return dict(super().state_dict(), after=self.after.state_dict())

    def load_state_dict(self, state):
        self.after.base_lrs = [float(lr) for lr in state["after"]["base_lrs"]]
        super().load_state_dict(state)


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin 2018), PyTorch's formula (two phases): from
    initial = max_lr / div_factor up to max_lr over the first pct_start of total_steps, then
    down to min = initial / final_div_factor at the last step:

        phase 1: steps 0 .. e1,          e1 = pct_start * total_steps - 1,  initial -> max_lr
        phase 2: steps e1 .. total - 1,                                     max_lr -> min
        within a phase, with p = (t - start) / (end - start):
            cos:    lr = end_lr + (start_lr - end_lr) * (1 + cos(pi p)) / 2
            linear: lr = start_lr + (end_lr - start_lr) * p

    The groups' own lr is ignored (max_lr sets the scale). Momentum is not cycled (PyTorch's
    cycle_momentum=False). Stepping past total_steps raises, as in PyTorch.

    Args:
        max_lr: the peak, one number or one per parameter group.
        total_steps: the number of step() calls the schedule spans (epochs * iterations).
        pct_start: the fraction of the steps spent increasing the lr.
        anneal_strategy: 'cos' or 'linear'.
        div_factor: initial = max_lr / div_factor.
        final_div_factor: min = initial / final_div_factor.
    """

    def __init__(self, optimizer, max_lr, total_steps, pct_start=0.3, anneal_strategy="cos",
                 div_factor=25.0, final_div_factor=1e4):
        if total_steps < 1:
            raise ValueError(f"OneCycleLR: total_steps must be >= 1, got {total_steps}")
        if not 0.0 < pct_start < 1.0:
            raise ValueError(f"OneCycleLR: pct_start must be in (0, 1), got {pct_start}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"OneCycleLR: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        n = len(optimizer.param_groups)
        max_lrs = list(max_lr) if isinstance(max_lr, (list, tuple)) else [max_lr] * n
        if len(max_lrs) != n:
            raise ValueError(f"OneCycleLR: got {len(max_lrs)} max_lr values for {n} parameter groups")
        self.max_lrs = [float(m) for m in max_lrs]
        self.total_steps, self.pct_start = int(total_steps), float(pct_start)
        self.anneal_strategy = anneal_strategy
        self.div_factor, self.final_div_factor = float(div_factor), float(final_div_factor)
        super().__init__(optimizer)

    def _anneal(self, start, end, pct):
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1.0)
        return (end - start) * pct + start

    def lr_at(self, step):
        if step > self.total_steps:
            raise ValueError(f"OneCycleLR: step {step} is past total_steps = {self.total_steps}; "
                             "build the schedule with the run's full number of steps")
        peak_end = self.pct_start * self.total_steps - 1.0
        last = self.total_steps - 1.0
        out = []
        for max_lr in self.max_lrs:
            initial = max_lr / self.div_factor
            if step <= peak_end:
                out.append(self._anneal(initial, max_lr, step / peak_end if peak_end > 0 else 1.0))
            else:
                out.append(self._anneal(max_lr, initial / self.final_div_factor,
                                        (step - peak_end) / (last - peak_end)))
        return out
