"""Loss functions, each one fused op with a closed-form gradient."""
from ..tensor import Function

_REDUCTIONS = ("mean", "sum", "none")


class CrossEntropy(Function):
    """Softmax cross-entropy between logits z (N, C) or (N, C, d1, ...) and integer targets
    t (N,) or (N, d1, ...), with optional class weights w (C,), label smoothing eps and
    ignore_index:

        p = softmax(z),  q_ic = (1 - eps) [c = t_i] + eps / C        (smoothed target)
        loss_i = -sum_c a_ic log p_ic,   a_ic = q_ic * w_c  (w_c = 1 without weights)
        'mean': sum_i loss_i / sum_i w_{t_i}   (PyTorch's weighted mean), 'sum', 'none'

    Gradient: dloss_i/dz_ij = (sum_c a_ic) p_ij - a_ij, so there is no n x n Jacobian.
    Targets equal to ignore_index contribute nothing, to the loss or to the mean's divisor.
    """

    def forward(self, z, target, weight=None, label_smoothing=0.0, reduction="mean", ignore_index=-100):
        xp = self.xp
        if reduction not in _REDUCTIONS:
            raise ValueError(f"cross_entropy: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
        if target.dtype.kind not in "iu":
            raise TypeError(f"cross_entropy: targets must be integer class indices, got dtype {target.dtype}")
        if z.ndim < 2 or z.shape[:1] + z.shape[2:] != target.shape:
            raise ValueError(f"cross_entropy: logits of shape (N, C, ...) = {tuple(z.shape)} need targets "
                             f"of shape (N, ...) = {z.shape[:1] + z.shape[2:]}, got {tuple(target.shape)}")
        C = z.shape[1]
        self.z_shape = z.shape
        z2 = xp.moveaxis(z, 1, -1).reshape(-1, C) if z.ndim > 2 else z
        t = target.reshape(-1)
        valid = t != ignore_index
        t = xp.where(valid, t, 0)
        # Bounds check on the host only: on a GPU it would cost a device sync every step.
        if xp.__name__ == "numpy" and ((t < 0) | (t >= C)).any():
            raise ValueError(f"cross_entropy: targets must lie in [0, {C}), got values "
                             f"from {int(t.min())} to {int(t.max())}")
        shifted = z2 - z2.max(axis=1, keepdims=True)
        e = xp.exp(shifted)
        s = e.sum(axis=1, keepdims=True)
        logp = shifted - xp.log(s)
        rows = xp.arange(t.shape[0])
        # a_ic as a dense (M, C) matrix: C is small for classification and segmentation.
        a = xp.zeros_like(z2)
        a[rows, t] = 1.0 - label_smoothing
        if label_smoothing:
            a += label_smoothing / C
        w_t = valid.astype(z2.dtype)
        if weight is not None:
            a *= weight
            w_t = w_t * weight[t]
        a *= valid[:, None]
        loss = -(a * logp).sum(axis=1)
        self.p, self.a, self.reduction, self.t_shape = e / s, a, reduction, target.shape
        if reduction == "none":
            return loss.reshape(target.shape)
        if reduction == "sum":
            self.scale = 1.0
            return loss.sum()
        denom = w_t.sum()
        self.scale = 1.0 / denom
        return loss.sum() * self.scale

    def backward(self, g):
        gz = self.a.sum(axis=1, keepdims=True) * self.p - self.a
        gz *= g.reshape(-1, 1) if self.reduction == "none" else g * self.scale
        if len(self.z_shape) > 2:
            C = self.z_shape[1]
            gz = self.xp.moveaxis(gz.reshape(self.z_shape[:1] + self.z_shape[2:] + (C,)), -1, 1)
        return gz, None, None


class MSELoss(Function):
    """loss = mean (or sum, or none) of (a - b)^2;  dL/da = 2 (a - b) g / n,  dL/db = -dL/da."""

    def forward(self, a, b, reduction="mean"):
        if reduction not in _REDUCTIONS:
            raise ValueError(f"mse_loss: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
        self.diff = a - b
        self.reduction = reduction
        sq = self.diff * self.diff
        if reduction == "none":
            return sq
        self.scale = 2.0 / sq.size if reduction == "mean" else 2.0
        return sq.mean() if reduction == "mean" else sq.sum()

    def backward(self, g):
        ga = self.diff * (2.0 * g if self.reduction == "none" else g * self.scale)
        return (ga if self.needs_input_grad[0] else None,
                -ga if self.needs_input_grad[1] else None)
