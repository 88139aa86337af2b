# %% [markdown]
# # Appendix B · Mathematical foundations (深度学习数学基础)
#
# Linear algebra, the derivative and its numerical check, and the probability behind softmax and
# cross-entropy. Every gradient here is first **derived** (the chain rule, index by index, with
# the shapes written out), then computed from the derived formula in NumPy, then compared with
# tinyvision's autograd and with `tv.gradcheck`, which checks it against central differences in
# float64. The appendix runs in seconds in every mode.

# %%
import os, sys, time
import numpy as np
import matplotlib.pyplot as plt
import tinyvision as tv

sys.path.insert(0, os.path.abspath("."))      # chapters/: the shared helpers in _common.py
import _common as C
tv.manual_seed(0)
np.random.seed(0)
# %matplotlib inline
print(f"{C.MODE} mode | tinyvision {tv.__version__}")

# %% [markdown]
# ## The one rule behind every backward pass
#
# Training needs $\partial L / \partial \theta$ for a scalar loss $L$ and every parameter
# $\theta$. A network is a chain of ops $y = f(x)$; an op's **backward pass** receives
# $G = \partial L / \partial y$ (the *upstream gradient*, the same shape as $y$) and returns
# $\partial L / \partial x$ (the same shape as $x$). By the chain rule, for every element $x_i$,
# $$\frac{\partial L}{\partial x_i} = \sum_j \frac{\partial L}{\partial y_j}\,\frac{\partial y_j}{\partial x_i}
#   = \sum_j G_j\, \frac{\partial y_j}{\partial x_i},$$
# a vector–Jacobian product. The Jacobian $\partial y_j / \partial x_i$ itself is never built
# (for one 32x32x64 feature map it would have $65536^2$ entries); each derivation below writes it
# out by index, does the sum by hand, and ends with a formula in array operations. Two checks
# catch most mistakes: **the result has the shape of $x$**, and **it agrees with central
# differences** ($L$ evaluated at $x_i \pm h$).
#
# A convenient way to fix $G$ in a check: take $L = \sum_j G_j\, y_j$ for a random array $G$.
# Then $\partial L / \partial y = G$ exactly, and every entry of the Jacobian takes part
# (`tv.gradcheck` does exactly this, with a random $G$, in float64).

# %% [markdown]
# ## B.1 Linear algebra (线性代数基础)
#
# ### The matrix product and its gradient
# $C = AB$ with $A$ of shape $(m, n)$ and $B$ of shape $(n, p)$: $C_{ij} = \sum_k A_{ik} B_{kj}$,
# shape $(m, p)$. It is what a linear layer computes and, after im2col (below), a convolution.
#
# **Derivation.** Differentiate one output entry by one input entry:
# $\partial C_{ij} / \partial A_{kl} = \delta_{ik} B_{lj}$ (only row $i = k$ depends on
# $A_{kl}$, through the term $A_{kl}B_{lj}$). With $G = \partial L / \partial C$, shape $(m, p)$:
# $$\frac{\partial L}{\partial A_{kl}} = \sum_{i,j} G_{ij}\,\delta_{ik} B_{lj} = \sum_j G_{kj} B_{lj}
#   = (G B^T)_{kl}, \qquad \frac{\partial L}{\partial B_{kl}} = \sum_{i,j} G_{ij}\, A_{ik}\,\delta_{jl} = (A^T G)_{kl}.$$
# Shapes: $G B^T$ is $(m, p)(p, n) = (m, n)$, the shape of $A$; $A^T G$ is $(n, m)(m, p) = (n, p)$,
# the shape of $B$. (A way to remember them: these are the only products of $G$ with $B$ or
# $A$ whose shapes fit.)
#
# A **linear layer** $y = xW^T + b$ ($x$: $(N, d_{in})$, $W$: $(d_{out}, d_{in})$, $b$: $(d_{out})$)
# is this product plus a bias broadcast over the $N$ rows. So $\partial L/\partial x = G W$,
# $\partial L/\partial W = G^T x$, and, because $b$ was *copied* into every row, its gradient
# **sums** the rows: $\partial L / \partial b = \sum_n G_{n,:}$. (Broadcasting forward is summing
# backward: every bias gradient in a network is a sum over the batch.)

# %%
rng = np.random.default_rng(0)
A, B = rng.normal(size=(3, 4)), rng.normal(size=(4, 2))
C_loops = np.array([[sum(A[i, k] * B[k, j] for k in range(4)) for j in range(2)] for i in range(3)])
a, b = tv.tensor(A, dtype=np.float64, requires_grad=True), tv.tensor(B, dtype=np.float64, requires_grad=True)
c = tv.matmul(a, b)
print("loops == tv.matmul:", np.allclose(C_loops, c.numpy()))
G = rng.normal(size=(3, 2))
(c * tv.tensor(G, dtype=np.float64)).sum().backward()          # L = sum(G * C): dL/dC = G
print("dL/dA == G B^T:", np.allclose(a.grad.numpy(), G @ B.T), f"(shape {(G @ B.T).shape} = A's {A.shape})",
      "  dL/dB == A^T G:", np.allclose(b.grad.numpy(), A.T @ G), f"(shape {(A.T @ G).shape} = B's {B.shape})")
print(tv.gradcheck(tv.matmul, a, b))

F = tv.nn.functional
x_in, W_lin, b_lin = (tv.tensor(rng.normal(size=s), dtype=np.float64, requires_grad=True) for s in ((5, 4), (3, 4), (3,)))
G = rng.normal(size=(5, 3))
(F.linear(x_in, W_lin, b_lin) * tv.tensor(G, dtype=np.float64)).sum().backward()
print("linear layer: dL/dx == G W:", np.allclose(x_in.grad.numpy(), G @ W_lin.numpy()),
      " dL/dW == G^T x:", np.allclose(W_lin.grad.numpy(), G.T @ x_in.numpy()),
      " dL/db == sum of G's rows:", np.allclose(b_lin.grad.numpy(), G.sum(axis=0)))
print(tv.gradcheck(F.linear, x_in, W_lin, b_lin))

# %% [markdown]
# ### Eigen-decomposition
# $Av = \lambda v$: $A$ only stretches its eigenvectors. A matrix with $n$ linearly independent
# eigenvectors (a *diagonalisable* one; not every matrix is, see "Where the article is wrong")
# factors as $A = PDP^{-1}$, eigenvectors in the columns of $P$, eigenvalues on the diagonal of
# $D$; then $A^n = PD^nP^{-1}$. A symmetric matrix (a covariance) always is, with orthogonal
# eigenvectors, $P^{-1} = P^T$.
# Application: the 3x3 covariance of the images' RGB values; its eigenvectors are the colour directions
# along which pixels vary most (the basis of AlexNet's "PCA colour" augmentation).

# %%
M = np.array([[2.0, 1.0], [0.5, 1.5]])
lam, P = np.linalg.eig(M)
D = np.diag(lam)
print("eigenvalues", lam.round(4))
print("A v = lambda v:", np.allclose(M @ P[:, 0], lam[0] * P[:, 0]))
print("A == P D P^-1:", np.allclose(M, P @ D @ np.linalg.inv(P)))
print("A^5 == P D^5 P^-1:", np.allclose(np.linalg.matrix_power(M, 5), P @ D ** 5 @ np.linalg.inv(P)))

split = C.load_data(train_per_class=20, test_per_class=1)
pixels = split.train.data.reshape(-1, 3) / 255.0
cov = np.cov(pixels, rowvar=False)
w, V = np.linalg.eigh(cov)
print(f"data: {split.source}; colour covariance eigenvalues {w[::-1].round(5)}")
print("principal colour direction (R, G, B):", V[:, -1].round(3), " P^T P == I:", np.allclose(V.T @ V, np.eye(3)))
one_sign = np.all(V[:, -1] > 0) or np.all(V[:, -1] < 0)
C.say(f"the first colour direction carries {w[-1] / w.sum():.0%} of the pixel variance; its R, G, B weights "
      + ("have one sign: it is mostly brightness" if one_sign else "differ in sign: it is a colour contrast"))

# %% [markdown]
# ## B.2 Calculus (微积分基础)
#
# $$f'(x) = \lim_{h \to 0} \frac{f(x + h) - f(x)}{h}$$
# With finite $h$ the forward difference has error $O(h)$, the central difference
# $\frac{f(x+h) - f(x-h)}{2h}$ error $O(h^2)$ (by Taylor's formula the $h^2 f''/2$ terms
# cancel, leaving $h^2 f'''/6$); but as $h$ shrinks, rounding errors of size
# $\epsilon_{mach}/h$ grow. The plot shows both effects for $f = \sin$ near $x = 1$ in float64
# (the mean error over 101 points $x \in [0.5, 1.5]$, so that one lucky rounding does not pass
# for accuracy).

# %%
x0 = np.linspace(0.5, 1.5, 101)[:, None]
exact = np.cos(x0)
hs = np.logspace(-14, -1, 60)
forward = np.abs((np.sin(x0 + hs) - np.sin(x0)) / hs - exact).mean(axis=0)
central = np.abs((np.sin(x0 + hs) - np.sin(x0 - hs)) / (2 * hs) - exact).mean(axis=0)
plt.loglog(hs, forward, label="forward difference, O(h)")
plt.loglog(hs, central, label="central difference, O(h^2)")
plt.xlabel("h"); plt.ylabel("mean |error|"); plt.legend(); plt.grid(alpha=0.3); plt.show()
print(f"best steps here: forward h = {hs[forward.argmin()]:.1e} (error {forward.min():.1e}), "
      f"central h = {hs[central.argmin()]:.1e} (error {central.min():.1e}): at its best step the "
      f"central difference is {forward.min() / central.min():.0f}x more accurate")

# %% [markdown]
# ### The chain rule through an elementwise op: $L = \sum G \odot \tanh(xW)$
#
# **Derivation.** Name the steps: $H = xW$ ($x$: $(2, 3)$, $W$: $(3, 4)$, $H$: $(2, 4)$),
# $Y = \tanh(H)$, $L = \sum_{ij} G_{ij} Y_{ij}$. Backwards:
# 1. $\partial L / \partial Y = G$, shape $(2, 4)$.
# 2. $\tanh$ acts elementwise, so its Jacobian is diagonal, $\partial Y_{ij} / \partial H_{kl} =
#    \delta_{ik}\delta_{jl}\,(1 - Y_{ij}^2)$ (as $\tanh' = 1 - \tanh^2$), and the sum over $(i, j)$
#    collapses to a product: $\partial L / \partial H = G \odot (1 - Y^2)$, shape $(2, 4)$.
#    Every elementwise op (ReLU, GELU, sigmoid) works this way: multiply by its derivative.
# 3. $H = xW$ is B.1's product: $\partial L / \partial x = (\partial L / \partial H)\, W^T$,
#    $(2, 4)(4, 3) = (2, 3)$, the shape of $x$.
#
# So $\partial L / \partial x = \big(G \odot (1 - \tanh^2(xW))\big)W^T$. The cell compares this
# formula with central differences computed by hand (nudge each $x_i$ in turn: too slow for
# training, one pass per input, but the perfect test of a backward pass) and with autograd.

# %%
x = rng.normal(size=(2, 3)); W = rng.normal(size=(3, 4)); G = rng.normal(size=(2, 4))
L = lambda x: float((G * np.tanh(x @ W)).sum())
derived = (G * (1 - np.tanh(x @ W) ** 2)) @ W.T
h = 1e-5
numeric = np.zeros_like(x)
for idx in np.ndindex(*x.shape):
    e = np.zeros_like(x); e[idx] = h
    numeric[idx] = (L(x + e) - L(x - e)) / (2 * h)
xt = tv.tensor(x, dtype=np.float64, requires_grad=True)
(tv.tensor(G, dtype=np.float64) * tv.tanh(tv.matmul(xt, tv.tensor(W, dtype=np.float64)))).sum().backward()
print(f"derived formula vs central differences: max |difference| = {np.abs(derived - numeric).max():.1e}")
print(f"derived formula vs tinyvision's autograd: max |difference| = {np.abs(derived - xt.grad.numpy()).max():.1e}")

# %% [markdown]
# ### A convolution is a matrix product: its gradient by B.1
#
# A 2-D convolution (a cross-correlation, as in every deep-learning library) with weights $W$ of
# shape $(O, C, k, k)$ computes $y_{n,o,i,j} = \sum_{c,a,b} W_{o,c,a,b}\, x^{pad}_{n,c,i+a,j+b}$.
# **im2col** copies, for each output position $(n, i, j)$, the $C k^2$ input values its window
# sees into one column of a matrix $X_{col}$ of shape $(Ck^2, N H_o W_o)$. Then the convolution
# is one matrix product, $Y = W_2 X_{col}$ with $W_2$ = $W$ reshaped to $(O, Ck^2)$, and B.1 gives
# its gradients at once, for $G$ = $\partial L / \partial y$ reshaped to $(O, N H_o W_o)$:
# $$\frac{\partial L}{\partial W_2} = G X_{col}^T \;\; (O, Ck^2), \qquad
#   \frac{\partial L}{\partial X_{col}} = W_2^T G \;\; (Ck^2, N H_o W_o).$$
# The last step goes back from columns to the image. One input pixel was *copied* into up to
# $k^2$ columns (every window that covers it), so, as with the bias above, its gradient is the
# **sum** of those columns' gradients: **col2im** adds each column back into the window it came
# from (it is the adjoint, the transpose, of im2col), and the padding border is dropped.
# The cell builds this in NumPy in a few lines and compares it with tinyvision's `F.conv2d`,
# whose reference path (`tinyvision/ops/conv.py`) takes the same steps.

# %%
def im2col(xpad, k, out_hw):
    """(N, C, Hp, Wp) -> (C*k*k, N*Ho*Wo): column (n, i, j) holds the window at (i, j)."""
    Ho, Wo = out_hw
    cols = np.stack([xpad[:, :, a:a + Ho, b:b + Wo] for a in range(k) for b in range(k)], axis=2)  # N, C, k*k, Ho, Wo
    return cols.transpose(1, 2, 0, 3, 4).reshape(xpad.shape[1] * k * k, -1)

def col2im(cols, xpad_shape, k, out_hw):
    """The adjoint of im2col: each column's entries added back into the window they came from."""
    N, Cin, Hp, Wp = xpad_shape
    Ho, Wo = out_hw
    cols = cols.reshape(Cin, k * k, N, Ho, Wo).transpose(2, 0, 1, 3, 4)
    out = np.zeros(xpad_shape)
    for t, (a, b) in enumerate((a, b) for a in range(k) for b in range(k)):
        out[:, :, a:a + Ho, b:b + Wo] += cols[:, :, t]
    return out

N, Cin, H, Wd, O, k, pad = 2, 3, 5, 5, 4, 3, 1
img_np, ker_np = rng.normal(size=(N, Cin, H, Wd)), rng.normal(size=(O, Cin, k, k))
xpad = np.pad(img_np, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
out_hw = (H + 2 * pad - k + 1, Wd + 2 * pad - k + 1)
cols = im2col(xpad, k, out_hw)
Y = (ker_np.reshape(O, -1) @ cols).reshape(O, N, *out_hw).transpose(1, 0, 2, 3)
G = rng.normal(size=Y.shape)
G2 = G.transpose(1, 0, 2, 3).reshape(O, -1)
dW = (G2 @ cols.T).reshape(ker_np.shape)
dx = col2im(ker_np.reshape(O, -1).T @ G2, xpad.shape, k, out_hw)[:, :, pad:-pad, pad:-pad]

img = tv.tensor(img_np, dtype=np.float64, requires_grad=True)
ker = tv.tensor(ker_np, dtype=np.float64, requires_grad=True)
y = F.conv2d(img, ker, padding=pad)
(y * tv.tensor(G, dtype=np.float64)).sum().backward()
print(f"shapes: cols {cols.shape}, dL/dW {dW.shape}, dL/dx {dx.shape}")
print("W2 @ im2col == F.conv2d:", np.allclose(Y, y.numpy()),
      " G cols^T == dL/dW:", np.allclose(dW, ker.grad.numpy()),
      " col2im(W2^T G) == dL/dx:", np.allclose(dx, img.grad.numpy()))
print(tv.gradcheck(lambda i, k: F.conv2d(i, k, padding=1), img, ker))

# %% [markdown]
# ### Composed ops: the chain rule is the backward passes run in reverse order
# A layer stack $y = f_3(f_2(f_1(x)))$ gets $\partial L/\partial x$ by running each op's
# backward pass in reverse order, each handing the next its result as the upstream gradient:
# nothing more than the chain rule. Autograd records the ops during the forward pass and does
# exactly that. So a stack is right when each op's backward is right; `tv.gradcheck` on a
# convolution followed by GELU and batch norm (chapter 2 derives GELU, chapter 3 batch norm's
# backward, which couples the elements of a batch through its mean and variance):

# %%
print(tv.gradcheck(lambda i, k: F.batch_norm(F.gelu(F.conv2d(i, k, padding=1))), img, ker))

# %% [markdown]
# ## B.3 Probability (概率论基础)
#
# With finitely many **equally likely** outcomes, a probability counts them, $P(A) = N(A)/N(S)$
# (the classical definition; "Where the article is wrong" shows what goes wrong without
# "equally likely"). Conditional probability and Bayes' theorem:
# $$P(B|A) = \frac{P(A \cap B)}{P(A)},\qquad P(A|B) = \frac{P(B|A)P(A)}{P(B)}$$
# A classifier example: if a class makes up 1% of the images, and the model finds 95% of them
# (recall, $P(\text{says }c\,|\,c)$) while wrongly flagging 5% of the others, how often is it right
# when it says $c$ (precision, $P(c\,|\,\text{says }c)$)? Bayes answers; a simulation agrees.

# %%
faces = np.arange(1, 7)
print("P(two dice sum to 7) by counting:", np.mean([(i + j) == 7 for i in faces for j in faces]), "= 6/36")

prior, recall, false_alarm = 0.01, 0.95, 0.05
p_says = recall * prior + false_alarm * (1 - prior)               # total probability
print(f"Bayes: P(c | says c) = {recall * prior / p_says:.3f}")
sim = np.random.default_rng(0)
is_c = sim.random(1_000_000) < prior
says = np.where(is_c, sim.random(is_c.size) < recall, sim.random(is_c.size) < false_alarm)
print(f"simulation: {is_c[says].mean():.3f}")

# %% [markdown]
# ### Softmax and cross-entropy, derived
# Softmax turns scores $z$ (one row of logits, $K$ classes) into a distribution,
# $p_k = e^{z_k} / \sum_j e^{z_j}$. Adding a constant $m$ to every $z_k$ multiplies numerator and
# denominator by $e^m$ and changes nothing, so it is computed after subtracting $m = \max z$:
# then no exponent exceeds 0 and nothing overflows. Cross-entropy is the negative
# log-probability of the true class $y$; for a batch, the mean over the $N$ rows:
# $$L = \frac{1}{N}\sum_{n} \ell_n, \qquad \ell_n = -\log p_{n,y_n} = -z_{n,y_n} + \log\sum_j e^{z_{n,j}}.$$
# **Derivation.** The second form needs no softmax Jacobian. Differentiate $\ell_n$ by $z_{n,k}$:
# the first term gives $-\delta_{k y_n}$, the log-sum-exp gives
# $e^{z_{n,k}} / \sum_j e^{z_{n,j}} = p_{n,k}$. Row $n$ of $z$ enters only $\ell_n$, and the mean
# contributes $1/N$:
# $$\frac{\partial L}{\partial z_{n,k}} = \frac{1}{N}\big(p_{n,k} - \text{onehot}(y_n)_k\big),
#   \qquad \text{shape } (N, K) \text{ like } z.$$
# Each row of the gradient sums to zero (raising every logit of a row equally changes nothing),
# and no entry exceeds $1/N$ in size, however wrong the prediction: one reason this pair trains
# stably. (Softmax's own backward, for any upstream gradient, is Exercise 3.)

# %%
z = np.array([[2.0, 1.0, 0.1], [1000.0, 999.0, 998.0]])
y = np.array([0, 2])
stable = np.exp(z - z.max(1, keepdims=True)); stable /= stable.sum(1, keepdims=True)
with np.errstate(over="ignore", invalid="ignore"):
    print("naive softmax of [1000, 999, 998]:", np.exp(z[1]) / np.exp(z[1]).sum())
print("stable softmax:", stable.round(4), " tv.softmax agrees:", np.allclose(tv.softmax(tv.tensor(z)).numpy(), stable))
loss_np = -np.log(stable[np.arange(2), y]).mean()
zt = tv.tensor(z, dtype=np.float64, requires_grad=True)
loss_tv = F.cross_entropy(zt, tv.tensor(y))
loss_tv.backward()
derived = (stable - np.eye(3)[y]) / len(y)
print(f"cross-entropy NumPy {loss_np:.5f}, tinyvision {loss_tv.item():.5f}")
print("autograd == (p - onehot) / N:", np.allclose(zt.grad.numpy(), derived),
      " rows of the gradient sum to", np.abs(derived.sum(axis=1)).max().round(15))
z_small = tv.tensor(rng.normal(size=(4, 5)) * 3, dtype=np.float64, requires_grad=True)
print(tv.gradcheck(lambda z: F.cross_entropy(z, tv.tensor(np.array([0, 3, 1, 4]))), z_small))

# %% [markdown]
# ## Where the article is wrong
#
# The article's Appendix B lists formulas without their conditions; three are false as stated.
# The cell below computes a counterexample to each.
#
# 1. **"$A = PDP^{-1}$" does not hold for every matrix.** It holds exactly when $A$ has $n$
#    linearly independent eigenvectors (is *diagonalisable*). The shear
#    $\begin{pmatrix}1 & 1\\ 0 & 1\end{pmatrix}$ has the eigenvalue 1 twice but only one
#    eigenvector direction; NumPy returns two numerically parallel columns, so $P$ has no
#    inverse. Sources: G. Strang, *Introduction to Linear Algebra*, §6.2 "Diagonalizing a
#    Matrix" ($A = X\Lambda X^{-1}$ needs $n$ independent eigenvectors); I. Goodfellow,
#    Y. Bengio, A. Courville, *Deep Learning* (2016), §2.7: "not every matrix can be decomposed
#    into eigenvalues and eigenvectors". Symmetric matrices (covariances, as above) always can.
# 2. **"$A^{-1} = B$" among the general matrix operations.** An inverse exists only for a
#    square matrix with non-zero determinant; a weight matrix of shape $(d_{out}, d_{in})$ with
#    $d_{out} \ne d_{in}$ has none, and neither has a singular square one (NumPy raises
#    `LinAlgError`). Source: Strang, §2.5 "Inverse Matrices".
# 3. **"$P(A) = N(A)/N(S)$" is listed as "probability distributions".** It is the classical
#    definition of a probability, valid only when the $N(S)$ outcomes are equally likely, and
#    not a distribution. Counting the eleven possible sums of two dice as the outcomes gives
#    $P(\text{sum} = 7) = 1/11$; the sums are not equally likely, and the answer is $6/36$.
#    Source: J. Blitzstein, J. Hwang, *Introduction to Probability* (2nd ed., 2019), §1.3 "the
#    naive definition of probability", which requires equally likely outcomes.

# %%
shear = np.array([[1.0, 1.0], [0.0, 1.0]])
lam_s, P_s = np.linalg.eig(shear)
cond = np.linalg.cond(P_s)
print(f"shear: eigenvalues {lam_s}, eigenvector matrix P = {P_s.round(6).tolist()}, condition number {cond:.1e}")
print("verdict: P is numerically singular: the shear has no A = P D P^-1" if cond > 1e12
      else "verdict: P is invertible here")
try:
    np.linalg.inv(np.array([[1.0, 2.0], [2.0, 4.0]]))
    print("verdict: the singular matrix was inverted")
except np.linalg.LinAlgError as err:
    print(f"inverting [[1, 2], [2, 4]] (determinant 0): LinAlgError: {err}")
sums = np.array([i + j for i in faces for j in faces])
naive, counted = 1 / len(set(sums.tolist())), np.mean(sums == 7)
thrown = np.mean(sim.integers(1, 7, (2, 1_000_000)).sum(axis=0) == 7)
print(f"P(sum = 7): the 11 sums counted as equally likely give {naive:.4f}; the 36 equally likely "
      f"(die 1, die 2) pairs give {counted:.4f}; 1,000,000 simulated throws give {thrown:.4f}: "
      + ("the pairs' count is right" if abs(thrown - counted) < abs(thrown - naive) else "the sums' count is right"))

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell to fill in (its answer starts as `None`, or a function that returns
# `None`) and a self-check cell below it that prints **PASS** or **FAIL** with what is wrong.
# Predict before you compute where the exercise asks for a prediction. Solutions:
# `chapters/solutions/appendix_b_math.py`; the checks: `chapters/checks/appendix_b.py`.

# %%
from checks import appendix_b as check

# %% [markdown]
# ### Exercise 1: the best step in float32 (predict)
# The plot in B.2 is float64, whose machine epsilon is $2.2 \times 10^{-16}$. Networks train in
# float32 ($\epsilon_{mach} = 1.2 \times 10^{-7}$). Predict, without trying steps, the $h$ at which
# the central difference for $f = \sin$ near $x = 1$ is most accurate in float32. Hint: its error
# is about $\frac{h^2}{6}|f'''| + \frac{\epsilon_{mach}|f|}{h}$; find the $h$ that minimises it.

# %%
float32_step = None      # your prediction: a number

# %%
check.float32_step(float32_step)

# %% [markdown]
# ### Exercise 2: how few false alarms (derive)
# In B.3 a detector that finds 95% of a class making up 1% of the images, and wrongly flags 5% of
# the others, is right only 16% of the times it fires. Derive from Bayes' theorem the false-alarm
# rate at which its precision $P(c\,|\,\text{says }c)$ would be 90%, recall and prior unchanged.

# %%
false_alarm_rate = None  # your answer: a probability

# %%
check.false_alarm_rate(false_alarm_rate)

# %% [markdown]
# ### Exercise 3: softmax's backward pass (implement)
# An op's backward pass receives $g = \partial L / \partial p$ and returns $\partial L / \partial z$.
# For $p = \text{softmax}(z)$ along the last axis, $\partial p_i / \partial z_j = p_i(\delta_{ij} - p_j)$.
# Derive $\partial L / \partial z_j = \sum_i g_i\, \partial p_i / \partial z_j$ in a form that needs
# no $K \times K$ Jacobian, and write it for a batch: `p` and `grad` have shape (N, K). The check
# makes your function the backward pass of a tinyvision `Function` (forward: the stable softmax)
# and runs `tv.gradcheck` on it.

# %%
def softmax_backward(p, grad):
    """dL/dz for p = softmax(z) over the last axis, given p and grad = dL/dp."""
    return None          # your code


# %%
check.softmax_backward(softmax_backward)

# %% [markdown]
# ### Exercise 4: cross-entropy with label smoothing (derive, then check numerically)
# Label smoothing trains against the target $q = (1 - \varepsilon)\,\text{onehot}(y) + \varepsilon / K$
# instead of the one-hot: $L = -\frac{1}{N}\sum_i \sum_k q_{ik} \log p_{ik}$. Derive
# $\partial L / \partial z$ (start from B.3's $p - \text{onehot}(y)$ and use $\sum_k q_{ik} = 1$) and
# write it in NumPy for logits `z` of shape (N, K) and integer labels `y`. The check makes your
# gradient the backward pass of the loss and runs `tv.gradcheck`, which compares it with central
# differences of the loss (the same label smoothing as `F.cross_entropy(z, y, label_smoothing=eps)`).

# %%
def smoothed_cross_entropy_grad(z, y, eps):
    """dL/dz of the mean label-smoothed cross-entropy, shape (N, K)."""
    return None          # your code


# %%
check.smoothed_cross_entropy_grad(smoothed_cross_entropy_grad)
