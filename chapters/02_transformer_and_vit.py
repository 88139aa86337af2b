# %% [markdown]
# # Chapter 2 · The Transformer and the Vision Transformer (ViT（Vision Transformer）模型)
#
# We compute attention by hand in NumPy, check tinyvision's layers against it, look at position
# encodings, cut images into patches, assemble a ViT layer by layer, train a small one briefly and
# draw where its class token looks.

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
heads = []
for i in range(h):
    s = q[:, i * d:(i + 1) * d] @ k[:, i * d:(i + 1) * d].T / np.sqrt(d)
    a = np.exp(s - s.max(1, keepdims=True)); a /= a.sum(1, keepdims=True)
    heads.append(a @ v[:, i * d:(i + 1) * d])
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
# nearby positions look alike. ViT usually *learns* one vector per position instead
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
# into the 9x9 bias.

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
# each. For CIFAR's 32x32 images, $P = 4$ gives 8 x 8 = 64 tokens of 48 numbers. With the class token,
# attention then works on 197 or 65 tokens; its cost grows with the square of that number.

# %%
for size, P in [(224, 16), (32, 4)]:
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
# The whole forward pass, one layer at a time, with the model's own modules:
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
# ### Training a small ViT briefly
# The ViT recipe (chapter 5): AdamW, warmup then cosine decay, label smoothing, gradient clipping.
# In QUICK mode this is the 75k-parameter `vit_cifar_tiny` on a few hundred images for two epochs;
# in full mode `vit_cifar_small` on 20,000 images.

# %%
split = C.load_data(train_per_class=60 if QUICK else 2000, test_per_class=20 if QUICK else 200)
C.describe(split)
name = "vit_cifar_tiny" if QUICK else "vit_cifar_small"
vit = tv.models.create(name, num_classes=10)
history = C.fit(vit, split, "vit_adamw", epochs=2 if QUICK else 15, batch_size=32 if QUICK else 128,
                warmup_epochs=0 if QUICK else 2)
plt.plot([h["epoch"] for h in history], [h["train_acc"] for h in history], marker="o", label="train")
plt.plot([h["epoch"] for h in history], [h["test_acc"] for h in history], marker="o", label="test")
plt.xlabel("epoch"); plt.ylabel("accuracy"); plt.title(name); plt.legend(); plt.grid(alpha=0.3); plt.show()

# %% [markdown]
# ### Attention maps
# `get_attention_maps` returns every block's attention weights (B, heads, 65, 65). Row 0 is where the
# class token looks; its 64 entries over the patches, reshaped to 8x8 and averaged over the heads, are
# drawn over the image (brighter = more attention). After brief training the maps are diffuse; after
# full training they tend to concentrate on the object.

# %%
vit.eval()
show = C.subset(split.test, np.arange(4))
with tv.no_grad():
    maps = vit.get_attention_maps(tv.tensor(C.normalised(show)))
grid = int(np.sqrt(maps[0].shape[-1] - 1))
fig, axes = plt.subplots(len(maps) + 1, 4, figsize=(8, 2.1 * (len(maps) + 1)))
for j in range(4):
    axes[0, j].imshow(show.data[j]); axes[0, j].set_title(show.classes[show.targets[j]], fontsize=8)
    for layer, m in enumerate(maps):
        cls_row = m.numpy()[j, :, 0, 1:].mean(axis=0).reshape(grid, grid)
        up = np.kron(cls_row, np.ones((32 // grid, 32 // grid)))
        axes[layer + 1, j].imshow(show.data[j]); axes[layer + 1, j].imshow(up, cmap="inferno", alpha=0.6)
        axes[layer + 1, j].set_title(f"block {layer}", fontsize=8)
for ax in axes.ravel(): ax.axis("off")
plt.tight_layout(); plt.show()

# %% [markdown]
# The article's §2.2-2.3 also list ViT's uses (classification, detection, segmentation) and its
# results on ImageNet and COCO; those need pretrained checkpoints and data sets far beyond a CPU
# notebook. `tv.models.load_pretrained` reads timm- or torchvision-named `.safetensors` weights into
# `vit_base_patch16_224` and friends when you have them. Chapter 4 compares ViT and ResNet on equal
# footing; chapter 6 discusses dense tasks.
