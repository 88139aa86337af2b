# %% [markdown]
# # Chapter 2 · The Transformer and the Vision Transformer (ViT（Vision Transformer）模型)
#
# We compute attention by hand in NumPy, derive its backward pass and check it against
# tinyvision's fused op with `tv.gradcheck`, do the same for layer norm and GELU, look at position
# encodings, cut images into patches, assemble a ViT layer by layer, train a small one, measure
# whether its class token beats mean pooling, and draw where the class token looks.
#
# **Run modes.** By default the chapter runs in under 10 minutes on a 2-core CPU, depending on what
# else the machine is doing (an executed copy's stamp gives its wall time; real CIFAR-10 when it is
# on disk, see `_common.find_cifar`): a 75k-parameter ViT on 10,000 images, and six small runs for
# the class-token comparison. `TINYVISION_FULL=1` runs the long version (the 1.8M-parameter
# `vit_cifar_small` on 20,000 images for 15 epochs: about an hour on one core, as the recorded
# run's `source` field says) and records it in
# `docs/results/chapters/02_vit_training.json`, which the default mode plots beside its own run.
# `TINYVISION_QUICK=1` is continuous integration's smoke test on synthetic data: its numbers
# measure nothing and say so.

# %%
import os, sys, time
import numpy as np
import matplotlib.pyplot as plt
import tinyvision as tv
from tinyvision.tensor import Function

sys.path.insert(0, os.path.abspath("."))      # chapters/: the shared helpers in _common.py
import _common as C
tv.manual_seed(0)
np.random.seed(0)
# %matplotlib inline
print(f"{C.MODE} mode | tinyvision", tv.__version__)
chapter_start = time.perf_counter()

# %% [markdown]
# ## 2.1 The Transformer (Transformer模型简介)
#
# ### Scaled dot-product attention, step by step
# $$\text{Attention}(Q, K, V) = \text{softmax}\left(\frac{QK^T}{\sqrt{d_k}}\right)V$$
# Every token emits a query, a key and a value (three linear maps of its features). Token $i$'s output
# is an average of all values, weighted by how well its query matches each key; dividing by
# $\sqrt{d_k}$ keeps the dot products' spread independent of the width, so the softmax does not saturate.

# %%
rng = np.random.default_rng(0)
N, D = 5, 8                                   # 5 tokens of 8 features
X = rng.normal(size=(N, D)).astype(np.float32)
Wq, Wk, Wv = (rng.normal(size=(D, D)).astype(np.float32) / np.sqrt(D) for _ in range(3))

Q, K, V = X @ Wq, X @ Wk, X @ Wv              # step 1: projections        (N, d_k)
scores = Q @ K.T / np.sqrt(D)                 # step 2: similarities       (N, N)
A = np.exp(scores - scores.max(axis=1, keepdims=True))
A /= A.sum(axis=1, keepdims=True)             # step 3: softmax per row    (rows sum to 1)
out_np = A @ V                                # step 4: weighted values    (N, d_k)
print("attention weights (row i: where token i looks):\n", A.round(2))
print("row sums:", A.sum(axis=1))

out_tv = tv.nn.scaled_dot_product_attention(tv.tensor(Q), tv.tensor(K), tv.tensor(V))
print("max |NumPy - tinyvision| =", np.abs(out_np - out_tv.numpy()).max())

# %% [markdown]
# ### Attention's backward pass, derived
# Training needs $\partial L/\partial Q$, $\partial L/\partial K$, $\partial L/\partial V$ given the
# upstream gradient $G = \partial L/\partial O$ ($N \times d_v$). Write the forward pass as three steps,
# $S = QK^T/\sqrt{d}$, $A = \text{softmax}(S)$ row by row, $O = AV$, and go backwards through them.
#
# 1. $O = AV$ is a matrix product, so (appendix B.1) $\;\partial L/\partial V = A^T G\;$ and
#    $\;\partial L/\partial A = G V^T$ (call it $dA$, $N \times N$).
# 2. The softmax acts on each row $s$ of $S$ alone: $a_j = e^{s_j}/\sum_k e^{s_k}$. Its Jacobian is
#    $\partial a_j/\partial s_k = a_j(\delta_{jk} - a_k)$, i.e. $J = \text{diag}(a) - a a^T$. The chain rule
#    gives $\partial L/\partial s_k = \sum_j dA_j\, a_j(\delta_{jk} - a_k) = a_k\big(dA_k - \sum_j dA_j a_j\big)$,
#    so for the whole matrix, without ever building an $N \times N$ Jacobian per row:
#    $$dS = A \odot \big(dA - \text{rowsum}(dA \odot A)\big).$$
# 3. $S = QK^T/\sqrt{d}$ is another product: $\;dQ = dS\,K/\sqrt{d}\;$ and $\;dK = dS^T Q/\sqrt{d}$.
#
# Backward thus costs four matrix products (twice the forward's two) and one elementwise pass over
# the $N \times N$ weights (as the forward's softmax does); only $A$ (not $S$) has to be kept from
# the forward pass. Below: the formulas in NumPy, compared with the gradients tinyvision's fused
# op computes (`tinyvision/ops/attention.py`), then `tv.gradcheck`, which compares backpropagated
# gradients with central differences $\big(f(x + h) - f(x - h)\big)/2h$ of $\sum O \odot G$ for a
# random upstream $G$, in float64.

# %%
def attention_forward_np(Q, K, V):
    """O = softmax(Q K^T / sqrt(d)) V over the last two axes; returns O and the weights A."""
    S = Q @ K.swapaxes(-1, -2) / np.sqrt(Q.shape[-1])
    A = np.exp(S - S.max(axis=-1, keepdims=True))
    A /= A.sum(axis=-1, keepdims=True)
    return A @ V, A


def attention_backward_np(Q, K, V, A, G):
    """dQ, dK, dV from the upstream gradient G = dL/dO, by the three steps above."""
    dV = A.swapaxes(-1, -2) @ G                           # step 1
    dA = G @ V.swapaxes(-1, -2)
    dS = A * (dA - (dA * A).sum(axis=-1, keepdims=True))  # step 2: softmax's vector-Jacobian product
    dQ = dS @ K / np.sqrt(Q.shape[-1])                    # step 3
    dK = dS.swapaxes(-1, -2) @ Q / np.sqrt(Q.shape[-1])
    return dQ, dK, dV


rng = np.random.default_rng(1)
q64, k64, v64 = (rng.normal(size=(2, 6, 4)) for _ in range(3))   # 2 sequences (or heads) of 6 tokens, d = 4
G = rng.normal(size=(2, 6, 4))                                    # a random upstream gradient
O_np, A_np = attention_forward_np(q64, k64, v64)
grads_np = attention_backward_np(q64, k64, v64, A_np, G)

qt, kt, vt = (tv.tensor(a, dtype=np.float64, requires_grad=True) for a in (q64, k64, v64))
out = tv.nn.scaled_dot_product_attention(qt, kt, vt)
out.backward(tv.tensor(G, dtype=np.float64))
for name, mine, theirs in zip(["dQ", "dK", "dV"], grads_np, (qt.grad, kt.grad, vt.grad)):
    print(f"{name}: max |NumPy - tinyvision| = {np.abs(mine - theirs.numpy()).max():.1e}")
print("forward: max |NumPy - tinyvision| =", f"{np.abs(O_np - out.numpy()).max():.1e}")

# %% [markdown]
# Agreement with tinyvision shows the two implementations compute the same thing; it does not show
# that either is the derivative. `tv.gradcheck` does: once for tinyvision's fused op, and once for
# the NumPy functions above wrapped as a tinyvision `Function` (forward and backward both ours).

# %%
class NumpyAttention(Function):
    """attention_forward_np / attention_backward_np as a differentiable op."""

    def forward(self, q, k, v):
        self.saved = (q, k, v)
        out, self.A = attention_forward_np(q, k, v)
        return out

    def backward(self, g):
        return attention_backward_np(*self.saved, self.A, g)


print("tinyvision's fused attention:", tv.gradcheck(tv.nn.scaled_dot_product_attention, q64, k64, v64))
print("the NumPy backward above:   ", tv.gradcheck(NumpyAttention.apply, q64, k64, v64))

# %% [markdown]
# ### Multi-head attention
# $$\text{MultiHead}(Q, K, V) = \text{Concat}(\text{head}_1, \dots, \text{head}_h)W^O,\quad
# \text{head}_i = \text{Attention}(XW_i^Q, XW_i^K, XW_i^V)$$
# Each of the $h$ heads attends with its own $d_k = D/h$-dimensional projections, so different heads can
# follow different relations. `tv.nn.MultiheadSelfAttention` stores all $W_i^Q, W_i^K, W_i^V$ as one
# linear layer `qkv` (outputs ordered [all query heads | all key heads | all value heads]) and $W^O$ as
# `proj`. We redo its computation in NumPy from its own weights.

# %%
h = 2
mha = tv.nn.MultiheadSelfAttention(D, num_heads=h)
Wqkv, bqkv = mha.qkv.weight.numpy(), mha.qkv.bias.numpy()     # (3D, D): y = x W^T + b
Wo, bo = mha.proj.weight.numpy(), mha.proj.bias.numpy()

qkv = X @ Wqkv.T + bqkv                                        # (N, 3D)
q, k, v = qkv[:, :D], qkv[:, D:2 * D], qkv[:, 2 * D:]
d = D // h
heads = [attention_forward_np(q[:, i * d:(i + 1) * d], k[:, i * d:(i + 1) * d], v[:, i * d:(i + 1) * d])[0]
         for i in range(h)]
out_np = np.concatenate(heads, axis=1) @ Wo.T + bo             # Concat(heads) W^O

out_tv = mha(tv.tensor(X[None]))[0]
print("max |NumPy - tinyvision| =", np.abs(out_np - out_tv.numpy()).max())

# %% [markdown]
# ### Why position encodings are needed
# Attention treats its input as a *set*: permute the tokens and the outputs are permuted the same
# way, nothing else changes. An image's patches would be a bag of pieces. Position information must
# be added.

# %%
perm = np.array([3, 0, 4, 1, 2])
out_perm = mha(tv.tensor(X[perm][None]))[0].numpy()
print("attention(permuted tokens) == permuted attention(tokens):", np.allclose(out_perm, out_tv.numpy()[perm], atol=1e-5))

# %% [markdown]
# ### Absolute position encodings: sine-cosine and learned
# The Transformer's fixed code gives position $p$ the vector
# $PE(p, 2i) = \sin(p / 10000^{2i/D})$, $PE(p, 2i+1) = \cos(p / 10000^{2i/D})$: a set of clocks of
# geometrically growing periods. The dot product of two codes depends only on their distance, so
# nearby positions look alike. ViT *learns* one $D$-dimensional vector per position instead
# (`LearnedPositionEmbedding`, random at initialisation); a 2-D variant (`sincos_2d`) encodes row and
# column separately for a patch grid.

# %%
pe = tv.nn.sincos_1d(64, 32)
grid = tv.nn.sincos_2d((8, 8), 32)                              # 8x8 patch grid, row-major
learned = tv.nn.LearnedPositionEmbedding(64, 32).pos_embed.numpy()[0]

fig, axes = plt.subplots(1, 4, figsize=(15, 3.3))
axes[0].imshow(pe.T, aspect="auto", cmap="RdBu"); axes[0].set_title("sincos_1d: channel x position")
axes[1].plot(pe @ pe[20] / (pe[20] @ pe[20])); axes[1].set_title("similarity of position 20 to all")
sim = grid @ grid[3 * 8 + 5]                                    # patch at row 3, column 5
axes[2].imshow(sim.reshape(8, 8), cmap="viridis"); axes[2].set_title("sincos_2d: patch (3, 5) vs grid")
axes[3].imshow((learned @ learned[3 * 8 + 5]).reshape(8, 8), cmap="viridis"); axes[3].set_title("learned, untrained")
plt.tight_layout(); plt.show()

# %% [markdown]
# ### Relative position encoding
# Instead of adding a code to the tokens, a relative scheme adds a learned bias to the attention
# logits that depends only on the offset between query and key:
# $\text{softmax}(QK^T/\sqrt{d_k} + B)V$ with $B_{ij} = b[\text{offset}(i, j)]$ (Swin's
# `RelativePositionBias`). In a 3x3 window there are 5x5 = 25 possible offsets; the index table below
# says which of them each (query, key) pair uses, and one gather turns the 25 learned numbers per head
# into the 9x9 bias. (The bias's gradient is $dS$ of the derivation above, summed over whatever it
# was broadcast across.)

# %%
print(tv.nn.relative_position_index(3, 3))
rpb = tv.nn.RelativePositionBias(3, num_heads=2)
bias = rpb()                                                    # (heads, 9, 9)
print("bias:", bias.shape, "from a table of", rpb.relative_position_bias_table.shape)
tokens = tv.tensor(rng.normal(size=(1, 9, D)).astype(np.float32))
attn = tv.nn.MultiheadSelfAttention(D, num_heads=2, rel_pos_bias=rpb)
print("attention with relative position bias:", attn(tokens).shape)

# %% [markdown]
# ## 2.2 ViT architecture (ViT模型架构)
#
# ### Patches
# ViT cuts an image into $P \times P$ patches and treats each as a token. For ImageNet's 224x224
# images and $P = 16$: 224/16 = 14 patches per side, 14 x 14 = 196 tokens of 16·16·3 = 768 numbers
# each; with $P = 32$ only 7 x 7 = 49. For CIFAR's 32x32 images, $P = 4$ gives 8 x 8 = 64 tokens of 48
# numbers. With the class token, attention then works on 197, 50 or 65 tokens; its cost grows with
# the square of that number.

# %%
for size, P in [(224, 16), (224, 32), (384, 16), (32, 4)]:
    n = size // P
    print(f"{size}x{size}, patch {P}: {n}x{n} = {n * n} patches of {P * P * 3} values; "
          f"{n * n + 1} tokens with the class token; attention matrix {(n * n + 1) ** 2:,} entries per head")

split = C.load_data(train_per_class=2, test_per_class=1)
image = split.train.data[0]
P = 4
patches = image.reshape(8, P, 8, P, 3).transpose(0, 2, 1, 3, 4)  # (8, 8, P, P, 3)
fig, axes = plt.subplots(8, 8, figsize=(4, 4))
for r in range(8):
    for c in range(8):
        axes[r, c].imshow(patches[r, c]); axes[r, c].axis("off")
plt.suptitle("a 32x32 image as 8x8 patches of 4x4"); plt.show()

# %% [markdown]
# The patch embedding is one linear map $E$ applied to each flattened patch. tinyvision implements
# it as a convolution with kernel = stride = $P$, which computes exactly that; we check it against
# "flatten the patch, multiply by $E$".

# %%
vit = tv.models.create("vit_cifar_tiny", num_classes=10)
x = tv.tensor(C.normalised(C.subset(split.train, [0, 1])))            # (2, 3, 32, 32)
tokens = vit.patch_embed(x).numpy()                                   # (2, 64, 64)
W = vit.patch_embed.proj.weight.numpy()                               # (D, 3, P, P)
b = vit.patch_embed.proj.bias.numpy()
xp = x.numpy().reshape(2, 3, 8, P, 8, P).transpose(0, 2, 4, 1, 3, 5).reshape(2, 64, 3 * P * P)
manual = xp @ W.reshape(W.shape[0], -1).T + b
print("tokens:", tokens.shape, " max |conv - flatten @ E| =", np.abs(tokens - manual).max())

# %% [markdown]
# ## 2.3 ViT implementation details (ViT模型实现细节)
#
# ### Layer norm and GELU, the block's two other ops
# **Layer norm** normalises each token over its own $D$ features, then rescales:
# $$\text{LN}(x) = \gamma \odot \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta,\qquad
# \mu = \frac{1}{D}\sum_{j} x_j,\quad \sigma^2 = \frac{1}{D}\sum_{j} (x_j - \mu)^2 .$$
# Unlike batch norm (chapter 3), the statistics are per token, not per channel over the batch: a
# token's output does not depend on the other images in the batch, and training and evaluation
# compute the same function. $\gamma$, $\beta$ ($D$ numbers each) start at 1 and 0.
#
# **GELU** weights its input by the probability that a standard normal variable is below it:
# $\text{GELU}(a) = a\,\Phi(a)$ with $\Phi(a) = \tfrac12\big(1 + \text{erf}(a/\sqrt2)\big)$, and
# derivative $\Phi(a) + a\,\varphi(a)$, $\varphi(a) = e^{-a^2/2}/\sqrt{2\pi}$. Unlike ReLU it is smooth
# and slightly negative for negative inputs. A tanh formula approximates it,
# $\tfrac{a}{2}\big(1 + \tanh(\sqrt{2/\pi}\,(a + 0.044715\,a^3))\big)$; tinyvision's CIFAR ViTs use that
# one (cheaper on the CPU), the 224-pixel ones the exact form, as the pretrained weights expect.
#
# We check the formulas against tinyvision's ops, then `tv.gradcheck` the ops in float64.

# %%
F = tv.nn.functional
rng = np.random.default_rng(2)
z64 = rng.normal(2.0, 3.0, size=(2, 5, 6))                 # 2 images x 5 tokens x 6 features, off-centre and wide
ln = tv.nn.LayerNorm(6)                                    # gamma = 1, beta = 0 as initialised
y = ln(tv.tensor(z64, dtype=np.float64)).numpy()
mu, var = z64.mean(axis=-1, keepdims=True), z64.var(axis=-1, keepdims=True)
print("max |formula - tv.nn.LayerNorm| =", f"{np.abs((z64 - mu) / np.sqrt(var + ln.eps) - y).max():.1e}")
print(f"after LN every token has mean {np.abs(y.mean(-1)).max():.1e} (max |.|) and variance "
      f"{y.var(-1).min():.4f}..{y.var(-1).max():.4f}")
gamma, beta = rng.normal(size=6), rng.normal(size=6)
print("layer norm (x, gamma, beta):", tv.gradcheck(lambda x, w, b: F.layer_norm(x, (6,), w, b), z64, gamma, beta))

# %%
import math
a = np.linspace(-4, 4, 801)
Phi = 0.5 * (1 + np.vectorize(math.erf)(a / math.sqrt(2)))
gelu_exact = a * Phi
gelu_tanh = 0.5 * a * (1 + np.tanh(math.sqrt(2 / math.pi) * (a + 0.044715 * a ** 3)))
at = tv.tensor(a, dtype=np.float64, requires_grad=True)
F.gelu(at).sum().backward()                                # d/da of sum(GELU(a)): the derivative at each a
print("max |a Phi(a) - F.gelu| =", f"{np.abs(gelu_exact - F.gelu(tv.tensor(a, dtype=np.float64)).numpy()).max():.1e}",
      "   tanh form vs F.gelu(approximate='tanh'):",
      f"{np.abs(gelu_tanh - F.gelu(tv.tensor(a, dtype=np.float64), approximate='tanh').numpy()).max():.1e}")
print("max |Phi + a phi - tinyvision's derivative| =",
      f"{np.abs(Phi + a * np.exp(-a * a / 2) / math.sqrt(2 * math.pi) - at.grad.numpy()).max():.1e}")
print(f"the tanh form differs from the exact GELU by at most {np.abs(gelu_exact - gelu_tanh).max():.1e}; "
      f"GELU's minimum is {gelu_exact.min():.3f} at a = {a[gelu_exact.argmin()]:.2f}")
a64 = rng.normal(size=(3, 7)) * 2
print("GELU exact:", tv.gradcheck(F.gelu, a64))
print("GELU tanh: ", tv.gradcheck(lambda t: F.gelu(t, approximate="tanh"), a64))
fig, axes = plt.subplots(1, 2, figsize=(9, 3))
axes[0].plot(a, np.maximum(a, 0), "--", label="ReLU"); axes[0].plot(a, gelu_exact, label="GELU")
axes[1].plot(a, (a > 0).astype(float), "--", label="ReLU'"); axes[1].plot(a, at.grad.numpy(), label="GELU'")
for ax in axes: ax.legend(); ax.grid(alpha=0.3)
plt.tight_layout(); plt.show()

# %% [markdown]
# ### The whole forward pass, layer by layer
# With the model's own modules:
# $z_0 = [x_{cls}; E x_1; \dots; E x_N] + E_{pos}$, then per block
# $z' = z + \text{MSA}(\text{LN}(z))$, $z = z' + \text{MLP}(\text{LN}(z'))$, and the head reads the
# class token after a final LayerNorm. The result must equal `vit(x)`.

# %%
vit.eval()
with tv.no_grad():
    z = vit.patch_embed(x)                                             # (B, 64, D)
    cls = tv.ops.broadcast_to(vit.cls_token, (z.shape[0], 1, vit.embed_dim))
    z = tv.cat([cls, z], axis=1) + vit.pos_embed                       # (B, 65, D)
    for i, block in enumerate(vit.blocks):
        z = z + block.attn(block.norm1(z))                             # tokens exchange information
        z = z + block.mlp(block.norm2(z))                              # each token alone
        print(f"after block {i}: {z.shape}")
    logits = vit.head(vit.norm(z)[:, 0])
    print("max |layer by layer - vit(x)| =", np.abs(logits.numpy() - vit(x).numpy()).max())
tv.summary(vit, (1, 3, 32, 32), depth=2);

# %% [markdown]
# ### Counting the parameters
# Per block: the two layer norms ($2 \cdot 2D$), `qkv` ($3D^2 + 3D$), `proj` ($D^2 + D$) and the MLP
# ($2DM + M + D$ for hidden width $M$): $4D^2 + 2DM + 9D + M$. Around the blocks: the patch embedding
# ($P^2 C D + D$), the class token ($D$), the position embeddings ($(N + 1)D$), the final norm ($2D$)
# and the head ($DK + K$). The formula must match tinyvision's models; then it gives the sizes of
# the ViT paper's models (Dosovitskiy et al. 2021, Table 1: Base 86M, Large 307M, Huge 632M).

# %%
def vit_parameters(D, depth, mlp, P, img=224, classes=1000, chans=3):
    """Parameter count of a ViT with a class token, learned position embeddings and qkv bias."""
    N = (img // P) ** 2
    block = 4 * D * D + 2 * D * mlp + 9 * D + mlp
    return P * P * chans * D + D + D + (N + 1) * D + depth * block + 2 * D + D * classes + classes


for name, (D_, depth, mlp) in [("vit_cifar_tiny", (64, 2, 128)), ("vit_cifar_small", (192, 6, 384))]:
    count = C.params_count(tv.models.create(name, num_classes=10))
    print(f"{name}: formula {vit_parameters(D_, depth, mlp, 4, img=32, classes=10):,}, tinyvision {count:,}")
for name, (D_, depth, mlp, P_), paper in [("ViT-B/16", (768, 12, 3072, 16), 86), ("ViT-L/16", (1024, 24, 4096, 16), 307),
                                          ("ViT-H/14", (1280, 32, 5120, 14), 632)]:
    print(f"{name}: D {D_}, {depth} blocks, MLP {mlp}: {vit_parameters(D_, depth, mlp, P_) / 1e6:.1f}M parameters "
          f"with a 1000-class head (paper's Table 1: {paper}M)")

# %% [markdown]
# ### Training a small ViT
# The ViT recipe (chapter 5): AdamW, warmup then cosine decay, label smoothing, gradient clipping.
# The default mode trains the 75k-parameter `vit_cifar_tiny` (D 64, 2 blocks) on 10,000 images for 10
# epochs (the cell prints its wall time). The full mode (`TINYVISION_FULL=1`) trains the
# 1.8M-parameter `vit_cifar_small` (D 192, 6 blocks) on 20,000 images for 15 epochs (about an hour
# on one core); its recorded result is plotted beside this run's.

# %%
run = C.by_mode(default=dict(model="vit_cifar_tiny", per_class=1000, test_per_class=100, epochs=10, batch_size=64,
                             warmup_epochs=1),
                quick=dict(model="vit_cifar_tiny", per_class=60, test_per_class=20, epochs=2, batch_size=32,
                           warmup_epochs=0),
                full=dict(model="vit_cifar_small", per_class=2000, test_per_class=200, epochs=15, batch_size=128,
                          warmup_epochs=2))
split = C.load_data(train_per_class=run["per_class"], test_per_class=run["test_per_class"])
C.describe(split)
tv.manual_seed(0)
vit = tv.models.create(run["model"], num_classes=10)
start = time.perf_counter()
history = C.fit(vit, split, "vit_adamw", epochs=run["epochs"], batch_size=run["batch_size"],
                warmup_epochs=run["warmup_epochs"])
minutes = (time.perf_counter() - start) / 60
C.say(f"{run['model']} ({C.params_count(vit):,} parameters): test accuracy {history[0]['test_acc']:.3f} after "
      f"epoch 1, {history[-1]['test_acc']:.3f} after epoch {len(history)}, on {len(split.train):,} training "
      f"images, in {minutes:.1f} min")
C.record("02_vit_training", dict(model=run["model"], parameters=C.params_count(vit), recipe="vit_adamw",
                                 epochs=run["epochs"], batch_size=run["batch_size"], warmup_epochs=run["warmup_epochs"],
                                 train_images=len(split.train), test_images=len(split.test), data=split.source,
                                 history=[{k: float(v) for k, v in row.items()} for row in history]),
         "TINYVISION_FULL=1 python chapters/_execute.py 02_transformer_and_vit")

# %%
rec = C.recorded("02_vit_training")
fig, axes = plt.subplots(1, 2 if rec else 1, figsize=(12 if rec else 6, 3.8), squeeze=False)
curves = [(axes[0, 0], history, f"this run ({C.MODE} mode): {run['model']}, {len(split.train):,} images")]
if rec:
    r = rec["results"]
    curves.append((axes[0, 1], r["history"], f"recorded: {r['model']}, {r['train_images']:,} images"))
for ax, hist, title in curves:
    ax.plot([h["epoch"] for h in hist], [h["train_acc"] for h in hist], marker="o", label="train")
    ax.plot([h["epoch"] for h in hist], [h["test_acc"] for h in hist], marker="o", label="test")
    ax.set_xlabel("epoch"); ax.set_ylabel("accuracy"); ax.set_ylim(0, 0.8); ax.set_title(title, fontsize=9)
    ax.legend(); ax.grid(alpha=0.3)
if rec:
    fig.text(0.5, -0.02, C.recorded_label(rec), ha="center", fontsize=8)
plt.tight_layout(); plt.show()
if rec:
    best = r["history"][-1]["test_acc"]
    C.say(f"recorded full run: {r['model']} ({r['parameters']:,} parameters) {best:.3f} after {r['epochs']} epochs on "
          f"{r['train_images']:,} images; this run {history[-1]['test_acc']:.3f}. The recorded run is "
          f"{abs(100 * (best - history[-1]['test_acc'])):.1f} points {'higher' if best > history[-1]['test_acc'] else 'lower'}, with "
          f"{r['parameters'] / C.params_count(vit):.0f}x the parameters and "
          f"{r['epochs'] * r['train_images'] / (len(history) * len(split.train)):.1f}x the training images seen")

# %% [markdown]
# ### Why a class token? Measured against mean pooling
# ViT's head reads an extra token $x_{cls}$ that belongs to no patch and gathers information from the
# patches through attention, as BERT's `[CLS]` does. The obvious alternative is global average pooling
# (GAP): average the patch tokens' final states. The ViT paper (Dosovitskiy et al. 2021, appendix D.3,
# figure 9) reports that both work about equally well once each has its own learning rate (GAP needed
# a lower one), and kept the token to stay close to the NLP Transformer.
#
# Here: the same `vit_cifar_tiny`, recipe, data and budget, only `global_pool` differs ('token' or
# 'avg'; with 'avg' the class token is still in the sequence, the head ignores it), each trained with
# three seeds (the seed sets the initialisation and the order of the batches). The verdict below
# calls a difference real only when every seed of one beats every seed of the other. Both poolings
# get the recipe's one learning rate, not one tuned for each as in the paper's figure 9, so a
# difference here measures this recipe as much as the pooling, and neither confirms nor
# contradicts the paper's "about equally well".

# %%
pool_run = C.by_mode(default=dict(per_class=500, epochs=5, warmup_epochs=1, seeds=(0, 1, 2)),
                     quick=dict(per_class=20, epochs=1, warmup_epochs=0, seeds=(0, 1)))
small = C.load_data(train_per_class=pool_run["per_class"], test_per_class=C.by_mode(100, 20))
C.describe(small)
pool_acc = {"token": [], "avg": []}
for seed in pool_run["seeds"]:
    for pool, accs in pool_acc.items():
        tv.manual_seed(seed)
        model = tv.models.create("vit_cifar_tiny", num_classes=10, global_pool=pool)
        hist = C.fit(model, small, "vit_adamw", epochs=pool_run["epochs"], batch_size=64,
                     warmup_epochs=pool_run["warmup_epochs"], seed=seed, verbose=False)
        accs.append(hist[-1]["test_acc"])
        C.say(f"seed {seed}, global_pool={pool!r}: test accuracy {accs[-1]:.3f}")

# %%
tok, avg = np.array(pool_acc["token"]), np.array(pool_acc["avg"])
for name, accs in (("class token", tok), ("mean pooling", avg)):
    C.say(f"{name}: mean {accs.mean():.3f}, seeds from {accs.min():.3f} to {accs.max():.3f}")
gap = 100 * (tok.mean() - avg.mean())
C.say(f"per seed, token - mean pooling: {', '.join(f'{100 * d:+.1f}' for d in tok - avg)} points")
if tok.min() > avg.max() or avg.min() > tok.max():
    winner, loser = ("class token", "mean pooling") if gap > 0 else ("mean pooling", "class token")
    C.say(f"verdict: {winner} beats {loser} by {abs(gap):.1f} points on average, beyond the seed spread "
          f"(every seed of one above every seed of the other)")
else:
    C.say(f"verdict: no difference beyond the seed spread (means differ by {gap:+.1f} points; the seeds of "
          f"each span {100 * np.ptp(tok):.1f} and {100 * np.ptp(avg):.1f} points)")

# %% [markdown]
# ### Attention maps
# `get_attention_maps` returns every block's attention weights (B, heads, 65, 65). Row 0 is where the
# class token looks; its 64 entries over the patches, averaged over the heads and reshaped to 8x8,
# are drawn over the image (brighter = more attention). The four test images come from four
# different classes.
#
# CIFAR-10 has no object masks, so whether a map "covers the object" is not something this notebook
# can measure. What it measures is how far each map is from uniform (its entropy as a fraction of
# the uniform map's, $\log 64$: 1 means uniform) and how much weight falls on the central 4x4 patches,
# a quarter of the image, where CIFAR-10's objects usually sit, compared with a freshly initialised
# model of the same kind.

# %%
vit.eval()
picks = [int(np.flatnonzero(split.test.targets == c)[0]) for c in (1, 3, 7, 8)]    # four classes
show = C.subset(split.test, picks)
untrained = tv.models.create(run["model"], num_classes=10).eval()
with tv.no_grad():
    maps = [m.numpy()[:, :, 0, 1:].mean(axis=1) for m in vit.get_attention_maps(tv.tensor(C.normalised(show)))]
    maps0 = [m.numpy()[:, :, 0, 1:].mean(axis=1) for m in untrained.get_attention_maps(tv.tensor(C.normalised(show)))]
grid = int(np.sqrt(maps[0].shape[-1]))                                   # class-token rows (images, 64)
fig, axes = plt.subplots(len(maps) + 1, 4, figsize=(8, 2.1 * (len(maps) + 1)))
for j in range(4):
    axes[0, j].imshow(show.data[j]); axes[0, j].set_title(show.classes[show.targets[j]], fontsize=8)
    for layer, m in enumerate(maps):
        up = np.kron(m[j].reshape(grid, grid), np.ones((32 // grid, 32 // grid)))
        axes[layer + 1, j].imshow(show.data[j]); axes[layer + 1, j].imshow(up, cmap="inferno", alpha=0.6)
        axes[layer + 1, j].set_title(f"block {layer}", fontsize=8)
for ax in axes.ravel(): ax.axis("off")
plt.tight_layout(); plt.show()


def map_stats(rows):
    """Entropy / log(64) and the weight on the central quarter of the patch grid, per image."""
    entropy = -(rows * np.log(rows + 1e-12)).sum(-1) / np.log(rows.shape[-1])
    centre = rows.reshape(-1, grid, grid)[:, grid // 4:3 * grid // 4, grid // 4:3 * grid // 4].sum((1, 2))
    return entropy, centre


for layer, (m, m0) in enumerate(zip(maps, maps0)):
    (ent, centre), (ent0, centre0) = map_stats(m), map_stats(m0)
    C.say(f"block {layer}: entropy/uniform {ent.mean():.3f} (untrained {ent0.mean():.3f}); weight on the central "
          f"quarter {centre.mean():.3f} (untrained {centre0.mean():.3f}, uniform 0.250); per image "
          f"{', '.join(f'{c:.2f}' for c in centre)}")
ent, centre = map_stats(maps[-1])
ent0, centre0 = map_stats(maps0[-1])
C.say(f"verdict, last block: the class token's attention has {ent.mean():.2f} of a uniform map's entropy "
      f"(untrained {ent0.mean():.2f}) and puts {centre.mean():.0%} of its weight on the central quarter "
      f"({'more' if centre.mean() > 0.25 else 'no more'} than a uniform map's 25%; "
      f"{int((centre > 0.25).sum())} of the 4 images above 25%)")

# %% [markdown]
# The article's §2.2-2.3 also list ViT's uses (classification, detection, segmentation); those need
# pretrained checkpoints and data sets far beyond a CPU notebook. `tv.models.load_pretrained` reads
# timm- or torchvision-named `.safetensors` weights into `vit_base_patch16_224` and friends when you
# have them. Chapter 4 compares ViT and ResNet on equal footing; chapter 6 discusses dense tasks.

# %%
C.say(f"chapter so far: {(time.perf_counter() - chapter_start) / 60:.1f} min in {C.MODE} mode")

# %% [markdown]
# ## Where the article is wrong
# Checked against the ViT paper (A. Dosovitskiy et al., *An Image is Worth 16x16 Words: Transformers
# for Image Recognition at Scale*, ICLR 2021, arXiv:2010.11929) and the cells above.
#
# - **"ViT-B/32 reaches about 76% top-1 on ImageNet."** The paper gives no such number. Its Table 5
#   has ViT-B/32 at 73.4% when pre-trained on ImageNet alone, 81.3% after ImageNet-21k and 80.7% after
#   JFT-300M pre-training (fine-tuned at 384 pixels). 76% is close to torchvision's later
#   ImageNet-only recipe (`vit_b_32`, 75.9%, torchvision model documentation), not the paper's.
# - **"On ImageNet, ViT matches or beats ResNet."** Only after large-scale pre-training. Trained on
#   ImageNet-1k (1.3M images, 1k classes) alone, the paper's ViTs end a few points *below* ResNets of
#   similar size (§1, §4.3, figure 3); they overtake them when pre-trained on ImageNet-21k (14M
#   images, 21k classes) or JFT-300M (303M images, 18k classes).
# - **"ViT-B/32 gets about 44.7% AP on COCO" and "76.1% IoU on the AOTA data set."** The ViT paper
#   reports classification only: no detection, no segmentation. There is no "AOTA" segmentation
#   benchmark; the common ones are ADE20K, Cityscapes and Pascal VOC. Neither number has a source.
# - **"Self-attention is computationally efficient, suited to large images."** Attention's cost grows
#   with the square of the number of tokens: the patch cell above prints 38,809 weights per head at
#   224 pixels and 332,929 at 384 (2.9x the pixels, 8.6x the weights). The paper's efficiency claim
#   is about pre-training compute against ResNets at equal accuracy, not about large images; that
#   quadratic growth is why Swin restricts attention to windows.
# - **"Absolute position encoding encodes the positions as [0, 1, ..., n-1]."** ViT adds a learned
#   $D$-dimensional vector per position, $E_{pos} \in \mathbb{R}^{(N+1) \times D}$ (equation 1), not the
#   index itself; the Transformer's fixed code is the sine-cosine one drawn above.
# - **"Relative position encoding captures relations better and improves performance."** For ViT the
#   paper found no such gain: 1-D, 2-D and relative position embeddings score about the same, and only
#   leaving position information out is clearly worse (appendix D.4, table 8).
# - **"The image-patch vectors are concatenated into the image's feature vector."** ViT classifies
#   from the class token's final state, $y = \text{LN}(z_L^0)$ (equation 4); the measured
#   alternative above averages the patch tokens; neither concatenates them.
# - **"Training: take a pretrained Transformer, then train the classification head."** ViT trains the
#   whole network, supervised, on the large data set, then fine-tunes *all* weights on the target task
#   with a new zero-initialised head, often at a higher resolution (the position embeddings are then
#   interpolated in 2-D, §3.2).
# - **"Patches are usually 16x16 or 32x32; a 224x224 image gives 14x14 patches."** 14x14 holds for
#   16-pixel patches only (32-pixel ones give 7x7, as printed above), and the paper's largest model,
#   ViT-H/14, uses 14-pixel patches. For the sizes, the parameter formula above gives 86.6M, 304.3M and
#   632.0M for ViT-B/16, L/16 and H/14; the paper's Table 1 gives 86M, 307M and 632M.

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell to fill in (its answer starts as `None`, or a function that returns
# `None`) and a self-check cell below it that prints **PASS** or **FAIL** with what is wrong.
# Predict before you compute where the exercise asks for a prediction. Solutions:
# `chapters/solutions/02_transformer_and_vit.py`; the checks: `chapters/checks/ch02.py`.

# %%
from checks import ch02 as check

# %% [markdown]
# ### Exercise 1: the shapes inside multi-head attention (predict)
# `vit_cifar_small` runs `tv.nn.MultiheadSelfAttention(192, num_heads=3)` on a batch of 2 images of
# 65 tokens (64 patches and the class token). Predict, without running it, the shapes of the queries
# of all heads, of the attention weights and of the output, as three tuples (see the layout in
# 2.1's multi-head cell and `tinyvision/nn/attention.py`). The check runs the module and compares.

# %%
q_shape = None          # e.g. (a, b, c, d)
weights_shape = None
output_shape = None

# %%
check.attention_shapes(q_shape, weights_shape, output_shape)

# %% [markdown]
# ### Exercise 2: patchify an image (implement)
# Write `patchify(images, P)`: images (B, C, H, W) to patches (B, N, C·P·P), N = (H/P)(W/P), the
# patches in row-major order over the grid and each patch's values in the order channel, row,
# column (the order in which a (D, C, P, P) convolution weight flattens). Then
# `patchify(x, P) @ W.reshape(D, -1).T + b` is exactly tinyvision's `PatchEmbed`; the check tests
# that on 32x32 images with P = 4 and on 16x16 images with P = 8.

# %%
def patchify(images, P):
    """(B, C, H, W) -> (B, N, C * P * P)."""
    return None          # your code


# %%
check.patchify(patchify)

# %% [markdown]
# ### Exercise 3: layer norm's backward pass (derive, implement)
# For one token $x \in \mathbb{R}^D$, $\hat x = (x - \mu)/\sigma$ with $\sigma = \sqrt{\text{var}(x) + \epsilon}$ and
# $y = \gamma \odot \hat x + \beta$. Given $g = \partial L/\partial y$, derive $\partial L/\partial x$: write
# $g' = g \odot \gamma = \partial L/\partial \hat x$, and remember that $\mu$ and $\sigma$ depend on every
# $x_j$ (so the answer has three terms, one of them a mean of $g'$). Implement it for x of shape (N, D),
# normalised over the last axis. The check makes your function the backward pass of a tinyvision
# `Function` whose forward is layer norm, and runs `tv.gradcheck`.

# %%
def layer_norm_backward(x, gamma, grad, eps=1e-5):
    """dL/dx for y = gamma * (x - mean) / sqrt(var + eps) + beta over the last axis."""
    return None          # your code


# %%
check.layer_norm_backward(layer_norm_backward)

# %% [markdown]
# ### Exercise 4: the sine-cosine position code (implement)
# Implement the Transformer's fixed position code of 2.1: `sincos(num_positions, dim)` returns
# (num_positions, dim) with $PE(p, 2i) = \sin(p / 10000^{2i/\text{dim}})$ and
# $PE(p, 2i+1) = \cos(p / 10000^{2i/\text{dim}})$ (sines in the even channels, cosines in the odd ones).
# The check compares it with `tv.nn.sincos_1d`, then tests the property that makes it useful: the dot
# product of two positions' codes depends only on their distance.

# %%
def sincos(num_positions, dim):
    """(num_positions, dim) sine-cosine position codes."""
    return None          # your code


# %%
check.sincos(sincos)
