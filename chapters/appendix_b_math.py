# %% [markdown]
# # Appendix B · Mathematical foundations (深度学习数学基础)
#
# Linear algebra, the derivative and its numerical check, and the probability behind softmax and
# cross-entropy, each computed in NumPy and then with tinyvision.

# %%
import os, sys, time
import numpy as np
import matplotlib.pyplot as plt
import tinyvision as tv

# QUICK mode (TINYVISION_QUICK=1): tiny subsets and 1-2 epochs, so the notebook runs in about a
# minute on a 2-core CPU; the numbers then only show that the code works, not what it measures.
QUICK = os.environ.get("TINYVISION_QUICK", "0") == "1"
sys.path.insert(0, os.path.abspath("."))      # chapters/: the shared helpers in _common.py
import _common as C
tv.manual_seed(0)
np.random.seed(0)
# %matplotlib inline
print("QUICK mode" if QUICK else "full mode", "| tinyvision", tv.__version__)

# %% [markdown]
# ## B.1 Linear algebra (线性代数基础)
#
# The matrix product $C = AB$, $C_{ij} = \sum_k A_{ik}B_{kj}$, is what a linear layer and (after
# im2col) a convolution compute. `tv.matmul` also knows its gradients:
# $\partial L/\partial A = G B^T$ and $\partial L/\partial B = A^T G$ for upstream gradient $G$.

# %%
rng = np.random.default_rng(0)
A, B = rng.normal(size=(3, 4)), rng.normal(size=(4, 2))
C_loops = np.array([[sum(A[i, k] * B[k, j] for k in range(4)) for j in range(2)] for i in range(3)])
a, b = tv.tensor(A, requires_grad=True), tv.tensor(B, requires_grad=True)
c = tv.matmul(a, b)
print("loops == tv.matmul:", np.allclose(C_loops, c.numpy(), atol=1e-6))
G = rng.normal(size=(3, 2)).astype(np.float32)
(c * tv.tensor(G)).sum().backward()
print("dL/dA == G B^T:", np.allclose(a.grad.numpy(), G @ B.T, atol=1e-5),
      "  dL/dB == A^T G:", np.allclose(b.grad.numpy(), A.T @ G, atol=1e-5))

# %% [markdown]
# ### Eigen-decomposition
# $Av = \lambda v$: $A$ only stretches its eigenvectors. A diagonalisable matrix factors as
# $A = PDP^{-1}$, eigenvectors in the columns of $P$, eigenvalues on the diagonal of $D$; then
# $A^n = PD^nP^{-1}$. A symmetric matrix (a covariance) has orthogonal eigenvectors, $P^{-1} = P^T$.
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

# %% [markdown]
# ## B.2 Calculus (微积分基础)
#
# $$f'(x) = \lim_{h \to 0} \frac{f(x + h) - f(x)}{h}$$
# With finite $h$ the forward difference has error $O(h)$, the central difference
# $\frac{f(x+h) - f(x-h)}{2h}$ error $O(h^2)$; but as $h$ shrinks, rounding errors of size
# $\epsilon_{mach}/h$ grow. The plot shows both effects for $f = \sin$ at $x = 1$ in float64.

# %%
x0, exact = 1.0, np.cos(1.0)
hs = np.logspace(-14, -1, 60)
forward = np.abs((np.sin(x0 + hs) - np.sin(x0)) / hs - exact)
central = np.abs((np.sin(x0 + hs) - np.sin(x0 - hs)) / (2 * hs) - exact)
plt.loglog(hs, forward, label="forward difference, O(h)")
plt.loglog(hs, central, label="central difference, O(h^2)")
plt.xlabel("h"); plt.ylabel("|error|"); plt.legend(); plt.grid(alpha=0.3); plt.show()
print(f"best central-difference step here: h = {hs[central.argmin()]:.1e}")

# %% [markdown]
# ### Numerical gradients and `tv.gradcheck`
# For a function of many inputs, nudge each one in turn. That is too slow for training (one pass per
# parameter) but the perfect test of a hand-written backward pass. By hand first, for
# $L = \sum G \odot \tanh(xW)$; then `tv.gradcheck` on a convolution followed by GELU and batch norm,
# which does the same in float64 with a random upstream gradient $G$.

# %%
x = rng.normal(size=(2, 3)); W = rng.normal(size=(3, 4)); G = rng.normal(size=(2, 4))
L = lambda x: float((G * np.tanh(x @ W)).sum())
h = 1e-5
numeric = np.zeros_like(x)
for idx in np.ndindex(*x.shape):
    e = np.zeros_like(x); e[idx] = h
    numeric[idx] = (L(x + e) - L(x - e)) / (2 * h)
xt = tv.tensor(x, dtype=np.float64, requires_grad=True)
(tv.tensor(G, dtype=np.float64) * tv.tanh(tv.matmul(xt, tv.tensor(W, dtype=np.float64)))).sum().backward()
print("max |numerical - autograd| =", np.abs(numeric - xt.grad.numpy()).max())

F = tv.nn.functional
img = tv.tensor(rng.normal(size=(2, 3, 5, 5)), dtype=np.float64, requires_grad=True)
ker = tv.tensor(rng.normal(size=(4, 3, 3, 3)), dtype=np.float64, requires_grad=True)
print(tv.gradcheck(lambda i, k: F.batch_norm(F.gelu(F.conv2d(i, k, padding=1))), img, ker))

# %% [markdown]
# ## B.3 Probability (概率论基础)
#
# Classical probability counts outcomes, $P(A) = N(A)/N(S)$. Conditional probability and Bayes' theorem:
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
# ### Softmax and cross-entropy
# Softmax turns scores $z$ into a distribution, $p_k = e^{z_k} / \sum_j e^{z_j}$ (computed after
# subtracting $\max z$, which changes nothing mathematically but avoids overflow). Cross-entropy is the
# negative log-probability of the true class, $L = -\log p_y$, and its gradient is simply
# $\partial L / \partial z = p - \text{onehot}(y)$.

# %%
z = np.array([[2.0, 1.0, 0.1], [1000.0, 999.0, 998.0]])
y = np.array([0, 2])
naive = np.exp(z[:1]) / np.exp(z[:1]).sum()
stable = np.exp(z - z.max(1, keepdims=True)); stable /= stable.sum(1, keepdims=True)
with np.errstate(over="ignore", invalid="ignore"):
    print("naive softmax of [1000, 999, 998]:", np.exp(z[1]) / np.exp(z[1]).sum())
print("stable softmax:", stable.round(4), " tv.softmax agrees:", np.allclose(tv.softmax(tv.tensor(z)).numpy(), stable))
loss_np = -np.log(stable[np.arange(2), y]).mean()
zt = tv.tensor(z, requires_grad=True)
loss_tv = tv.nn.functional.cross_entropy(zt, tv.tensor(y))
loss_tv.backward()
onehot = np.eye(3)[y]
print(f"cross-entropy NumPy {loss_np:.5f}, tinyvision {loss_tv.item():.5f}")
print("gradient == (p - onehot) / N:", np.allclose(zt.grad.numpy(), (stable - onehot) / 2, atol=1e-6))

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
