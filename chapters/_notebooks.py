"""The cells of every chapter notebook (see ``_build.py``)."""
from _build import DATA_NOTE, SETUP

NOTEBOOKS = {}

# =====================================================================================
NOTEBOOKS["01_computer_vision_and_pretraining"] = [
    """md:
    # Chapter 1 · Computer vision and pretrained models (计算机视觉与预训练模型概述)

    Before deep networks, vision systems were pipelines of hand-designed steps: filter the image,
    find edges and corners, match templates. This notebook builds each of those steps with
    tinyvision's convolution (and NumPy where no learning is involved), then shows in a small
    experiment why features *learned* on one task and reused on another (pretraining) help.
    """,
    SETUP,
    DATA_NOTE,
    """md:
    ## 1.1 Computer-vision basics (计算机视觉基础)

    ### Pixels, channels and resolution
    A colour image is an array of shape (height, width, channels): every pixel holds one number per
    channel (red, green, blue), stored as an 8-bit integer 0-255. Networks take the channels-first
    layout (N, C, H, W) as float32, usually normalised per channel.
    """,
    """
    split = C.load_data(train_per_class=4, test_per_class=1)
    C.describe(split)
    img = split.train.data[0]
    print("one image:", img.shape, img.dtype, "values", img.min(), "..", img.max())

    fig, axes = plt.subplots(1, 4, figsize=(10, 2.6))
    axes[0].imshow(img); axes[0].set_title(split.classes[split.train.targets[0]])
    for ax, c, name in zip(axes[1:], range(3), ["red", "green", "blue"]):
        ax.imshow(img[:, :, c], cmap="gray", vmin=0, vmax=255); ax.set_title(f"{name} channel")
    for ax in axes: ax.axis("off")
    plt.show()
    """,
    """md:
    Resolution is the number of pixels. Average pooling (a fixed 2x2 mean, `tv.nn.functional.avg_pool2d`)
    halves it: each output pixel summarises four inputs, and fine detail disappears.
    """,
    """
    x = tv.tensor(img.transpose(2, 0, 1)[None] / 255.0)            # (1, 3, 32, 32) float32
    views = [x]
    for _ in range(2):
        views.append(tv.nn.functional.avg_pool2d(views[-1], 2))
    fig, axes = plt.subplots(1, 3, figsize=(7, 2.6))
    for ax, v in zip(axes, views):
        ax.imshow(v.numpy()[0].transpose(1, 2, 0)); ax.set_title(f"{v.shape[2]}x{v.shape[3]}"); ax.axis("off")
    plt.show()
    """,
    """md:
    ### Filtering is convolution
    A linear filter replaces every pixel by a weighted sum of its neighbours,
    $y[i, j] = \\sum_{u, v} k[u, v]\\, x[i + u, j + v]$ (deep-learning "convolution" is this
    cross-correlation). The mean filter uses equal weights $1/k^2$ and smooths noise away together with
    detail. We filter a grey test scene with `tv.nn.functional.conv2d` and check one output pixel by hand.
    """,
    """
    scene = C.demo_scene()                                           # (96, 96) in [0, 1]
    noisy = np.clip(scene + np.random.default_rng(1).normal(0, 0.1, scene.shape), 0, 1).astype(np.float32)

    def filter2d(image, kernel):
        # 'same' output size: pad by half the kernel; image (H, W), kernel (k, k) -> (H, W)
        k = kernel.shape[0]
        out = tv.nn.functional.conv2d(tv.tensor(image[None, None]), tv.tensor(kernel[None, None]), padding=k // 2)
        return out.numpy()[0, 0]

    mean3 = np.full((3, 3), 1 / 9, np.float32)
    mean7 = np.full((7, 7), 1 / 49, np.float32)
    smooth3, smooth7 = filter2d(noisy, mean3), filter2d(noisy, mean7)
    i, j = 40, 50
    print("by hand:", noisy[i - 1:i + 2, j - 1:j + 2].mean(), " conv2d:", smooth3[i, j])

    fig, axes = plt.subplots(1, 3, figsize=(9, 3))
    for ax, im, t in zip(axes, [noisy, smooth3, smooth7], ["noisy", "3x3 mean", "7x7 mean"]):
        ax.imshow(im, cmap="gray", vmin=0, vmax=1); ax.set_title(t); ax.axis("off")
    plt.show()
    """,
    """md:
    ### Histogram equalisation and contrast enhancement
    A low-contrast image uses only a narrow band of grey levels. Two remedies:

    * **linear stretch**: map the 1st..99th percentile range onto [0, 1];
    * **histogram equalisation**: map each level $v$ through the cumulative histogram,
      $T(v) = \\frac{\\mathrm{CDF}(v) - \\mathrm{CDF}_{min}}{1 - \\mathrm{CDF}_{min}}$, so the output levels are
      spread (approximately) uniformly.

    Pure NumPy: no learning, no gradients.
    """,
    """
    gray = (img.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)) / 255.0
    dull = 0.35 + 0.25 * gray                                         # squeezed into [0.35, 0.6]
    levels = np.round(dull * 255).astype(np.int64)

    def equalise(levels):
        hist = np.bincount(levels.ravel(), minlength=256)
        cdf = np.cumsum(hist) / levels.size
        cdf_min = cdf[hist > 0][0]
        return ((cdf - cdf_min) / (1 - cdf_min)).clip(0, 1)[levels]

    lo, hi = np.percentile(dull, [1, 99])
    stretched = ((dull - lo) / (hi - lo)).clip(0, 1)
    equalised = equalise(levels)

    fig, axes = plt.subplots(2, 3, figsize=(10, 5))
    for col, (im, title) in enumerate([(dull, "low contrast"), (stretched, "linear stretch"), (equalised, "equalised")]):
        axes[0, col].imshow(im, cmap="gray", vmin=0, vmax=1); axes[0, col].set_title(title); axes[0, col].axis("off")
        axes[1, col].hist(im.ravel(), bins=32, range=(0, 1)); axes[1, col].set_xlabel("grey level")
    plt.tight_layout(); plt.show()
    """,
    """md:
    ### Edges: the Sobel operator
    Edges are large intensity gradients. Sobel kernels estimate $\\partial I/\\partial x$ and
    $\\partial I/\\partial y$ with a derivative across and a smoothing along; the gradient magnitude
    $\\sqrt{G_x^2 + G_y^2}$ is the edge strength. Both kernels go through `conv2d` in one call (two output channels).
    """,
    """
    sobel_x = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32)
    sobel_y = sobel_x.T.copy()
    kernels = tv.tensor(np.stack([sobel_x, sobel_y])[:, None])          # (2, 1, 3, 3)
    g = tv.nn.functional.conv2d(tv.tensor(scene[None, None]), kernels, padding=1).numpy()[0]
    gx, gy = g
    magnitude = np.hypot(gx, gy)

    fig, axes = plt.subplots(1, 4, figsize=(12, 3))
    for ax, im, t in zip(axes, [scene, gx, gy, magnitude], ["scene", "Gx", "Gy", "|G| (edges)"]):
        ax.imshow(im, cmap="gray"); ax.set_title(t); ax.axis("off")
    plt.show()
    """,
    """md:
    ### Corners: the Harris detector
    At a corner the image changes in *every* direction. Harris summarises the gradients around a pixel
    in the structure tensor $M = \\sum_w \\begin{pmatrix} I_x^2 & I_x I_y \\\\ I_x I_y & I_y^2 \\end{pmatrix}$
    (a Gaussian-weighted window $w$) and scores $R = \\det M - k\\,(\\operatorname{tr} M)^2$, $k \\approx 0.05$:
    $R$ is large and positive when both eigenvalues of $M$ are large (corner), negative on an edge (one
    large eigenvalue), small in flat regions. Corners are the local maxima of $R$ (non-maximum
    suppression with a 7x7 max pool).
    """,
    """
    def gaussian_kernel(size=5, sigma=1.0):
        r = np.arange(size) - size // 2
        k = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma ** 2))
        return (k / k.sum()).astype(np.float32)

    w = gaussian_kernel(5, 1.2)
    Sxx, Syy, Sxy = (filter2d(a.astype(np.float32), w) for a in (gx * gx, gy * gy, gx * gy))
    R = Sxx * Syy - Sxy ** 2 - 0.05 * (Sxx + Syy) ** 2

    local_max = tv.nn.functional.max_pool2d(tv.tensor(R[None, None]), 7, stride=1, padding=3).numpy()[0, 0]
    ys, xs = np.nonzero((R == local_max) & (R > 0.05 * R.max()))
    print(f"{len(ys)} corners found")

    fig, axes = plt.subplots(1, 2, figsize=(8, 4))
    axes[0].imshow(R, cmap="RdBu_r", vmin=-abs(R).max(), vmax=abs(R).max()); axes[0].set_title("Harris response R")
    axes[1].imshow(scene, cmap="gray"); axes[1].scatter(xs, ys, s=30, c="red", marker="x"); axes[1].set_title("corners")
    for ax in axes: ax.axis("off")
    plt.show()
    """,
    """md:
    ### Template matching: the traditional detector
    To find an object, slide a picture of it (the template $T$) over the image and score every position
    by the normalised cross-correlation
    $\\mathrm{NCC}(i, j) = \\frac{\\sum (I - \\bar I)(T - \\bar T)}{\\sqrt{\\sum (I - \\bar I)^2 \\sum (T - \\bar T)^2}}$
    (in [-1, 1], insensitive to brightness and contrast). The numerator is one convolution with the
    zero-mean template; the local means and energies are box filters, also convolutions.
    """,
    """
    template = scene[58:84, 57:83].copy()                              # the cross, with a margin
    th, tw = template.shape
    t0 = template - template.mean()

    def ncc_map(image, t0):
        th, tw = t0.shape
        I = tv.tensor(image[None, None])
        corr = tv.nn.functional.conv2d(I, tv.tensor(t0[None, None])).numpy()[0, 0]
        box = tv.tensor(np.ones((1, 1, th, tw), np.float32))
        s1 = tv.nn.functional.conv2d(I, box).numpy()[0, 0]
        s2 = tv.nn.functional.conv2d(I * I, box).numpy()[0, 0]
        local_energy = np.maximum(s2 - s1 ** 2 / t0.size, 1e-8)
        return corr / np.sqrt(local_energy * (t0 ** 2).sum())

    score = ncc_map(scene, t0)
    y, x = np.unravel_index(score.argmax(), score.shape)
    print(f"best match at (row {y}, col {x}), NCC = {score.max():.3f}")

    # The weakness: a template matches one appearance. Enlarge the cross by 1.5x and match again.
    big = np.kron(scene, np.ones((3, 3), np.float32))[::2, ::2]         # the scene zoomed 1.5x
    score_big = ncc_map(big, t0)
    print(f"same template on the 1.5x zoomed scene: best NCC = {score_big.max():.3f}")

    fig, axes = plt.subplots(1, 3, figsize=(11, 3.5))
    axes[0].imshow(template, cmap="gray"); axes[0].set_title("template")
    axes[1].imshow(scene, cmap="gray"); axes[1].add_patch(plt.Rectangle((x, y), tw, th, fill=False, color="lime", lw=2))
    axes[1].set_title(f"match, NCC {score.max():.2f}")
    axes[2].imshow(score, cmap="magma"); axes[2].set_title("NCC map")
    for ax in axes: ax.axis("off")
    plt.show()
    """,
    """md:
    Each step above was designed by hand for one kind of structure, and breaks when the appearance
    changes (scale, rotation, lighting, clutter): the article's first limitation of traditional vision,
    *hand-designed features struggle with complex structure*. A convolutional network has the same
    building block, `conv2d`, but learns its kernels from data, and stacks them so later layers combine
    edges into parts and objects.

    ## 1.2 Pretrained models (预训练模型概述)

    Pretraining means learning those kernels once, on a large (labelled or unlabelled) data set, and
    reusing them for new tasks. The article's claims: less labelled data needed, better accuracy, less
    overfitting, faster training. A miniature test: pretrain a small ResNet on five classes (the
    *source* task), then train on the *other* five classes with only a few labelled images each,
    starting either from the pretrained weights (new classifier head) or from scratch, with the same
    number of steps.
    """,
    """
    per_class = 40 if QUICK else 1000
    few = 10 if QUICK else 50
    split = C.load_data(train_per_class=per_class, test_per_class=20 if QUICK else 200)
    C.describe(split)
    source, target = [0, 1, 2, 3, 4], [5, 6, 7, 8, 9]
    src = C.Split(C.select_classes(split.train, source), C.select_classes(split.test, source), split.source)
    tgt = C.Split(C.select_classes(split.train, target, per_class=few), C.select_classes(split.test, target),
                  split.source)
    print(f"source task: {len(src.train)} images; target task: {len(tgt.train)} labelled images")

    depth = 8 if QUICK else 20
    pre = C.cifar_resnet(depth, num_classes=5)
    print("pretraining on the source classes")
    C.fit(pre, src, "resnet_sgd", epochs=2 if QUICK else 15, batch_size=32 if QUICK else 128)
    """,
    """
    epochs_target = 3 if QUICK else 30
    results = {}
    for start in ["scratch", "pretrained"]:
        tv.manual_seed(1)
        model = C.cifar_resnet(depth, num_classes=5)
        if start == "pretrained":
            state = {k: v for k, v in pre.state_dict().items() if not k.startswith("fc.")}
            model.load_state_dict(state, strict=False)                 # keep the new head
        print(start)
        hist = C.fit(model, tgt, "resnet_sgd", epochs=epochs_target, batch_size=16, lr=0.05)
        results[start] = hist

    for name, hist in results.items():
        plt.plot([h["epoch"] for h in hist], [h["test_acc"] for h in hist], marker="o", label=name)
    plt.xlabel("epoch on the target task"); plt.ylabel("target test accuracy"); plt.legend(); plt.grid(alpha=0.3)
    plt.title(f"{few} labelled images per class ({split.source})"); plt.show()
    gain = results["pretrained"][-1]["test_acc"] - results["scratch"][-1]["test_acc"]
    print(f"pretrained minus scratch after {epochs_target} epochs: {gain:+.3f}")
    """,
    """md:
    With real CIFAR-10 and the full settings, the pretrained start is expected to be ahead after the
    same number of steps: the stem and early stages already detect edges, colours and textures that the
    new classes share. In QUICK mode (tiny sets, few steps) the difference is within noise; the cell
    shows the mechanics: copy every weight except the classifier (`strict=False`) and fine-tune.
    `tinyvision.transfer` does this at scale (freezing, per-stage learning rates, self-supervised
    pretext tasks; `python -m tinyvision finetune`).

    ## 1.3 Mainstream large models (主流AI大模型简介) and 1.4 applications in industry (AI大模型在企业中的应用前景)

    The article surveys large pretrained models and their business use (efficiency, cost, accuracy;
    data privacy, fairness and compute as obstacles). Those sections have no experiment here; the two
    families it focuses on, the Vision Transformer and ResNet, are built and measured in chapters 2-4,
    and the compute side is measured in chapter 7.
    """,
]

# =====================================================================================
NOTEBOOKS["02_transformer_and_vit"] = [
    """md:
    # Chapter 2 · The Transformer and the Vision Transformer (ViT（Vision Transformer）模型)

    We compute attention by hand in NumPy, check tinyvision's layers against it, look at position
    encodings, cut images into patches, assemble a ViT layer by layer, train a small one briefly and
    draw where its class token looks.
    """,
    SETUP,
    """md:
    ## 2.1 The Transformer (Transformer模型简介)

    ### Scaled dot-product attention, step by step
    $$\\text{Attention}(Q, K, V) = \\text{softmax}\\left(\\frac{QK^T}{\\sqrt{d_k}}\\right)V$$
    Every token emits a query, a key and a value (three linear maps of its features). Token $i$'s output
    is an average of all values, weighted by how well its query matches each key; dividing by
    $\\sqrt{d_k}$ keeps the dot products' spread independent of the width, so the softmax does not saturate.
    """,
    """
    rng = np.random.default_rng(0)
    N, D = 5, 8                                   # 5 tokens of 8 features
    X = rng.normal(size=(N, D)).astype(np.float32)
    Wq, Wk, Wv = (rng.normal(size=(D, D)).astype(np.float32) / np.sqrt(D) for _ in range(3))

    Q, K, V = X @ Wq, X @ Wk, X @ Wv              # step 1: projections        (N, d_k)
    scores = Q @ K.T / np.sqrt(D)                 # step 2: similarities       (N, N)
    A = np.exp(scores - scores.max(axis=1, keepdims=True))
    A /= A.sum(axis=1, keepdims=True)             # step 3: softmax per row    (rows sum to 1)
    out_np = A @ V                                # step 4: weighted values    (N, d_k)
    print("attention weights (row i: where token i looks):\\n", A.round(2))
    print("row sums:", A.sum(axis=1))

    out_tv = tv.nn.scaled_dot_product_attention(tv.tensor(Q), tv.tensor(K), tv.tensor(V))
    print("max |NumPy - tinyvision| =", np.abs(out_np - out_tv.numpy()).max())
    """,
    """md:
    ### Multi-head attention
    $$\\text{MultiHead}(Q, K, V) = \\text{Concat}(\\text{head}_1, \\dots, \\text{head}_h)W^O,\\quad
    \\text{head}_i = \\text{Attention}(XW_i^Q, XW_i^K, XW_i^V)$$
    Each of the $h$ heads attends with its own $d_k = D/h$-dimensional projections, so different heads can
    follow different relations. `tv.nn.MultiheadSelfAttention` stores all $W_i^Q, W_i^K, W_i^V$ as one
    linear layer `qkv` (outputs ordered [all query heads | all key heads | all value heads]) and $W^O$ as
    `proj`. We redo its computation in NumPy from its own weights.
    """,
    """
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
    """,
    """md:
    ### Why position encodings are needed
    Attention treats its input as a *set*: permute the tokens and the outputs are permuted the same
    way, nothing else changes. An image's patches would be a bag of pieces. Position information must
    be added.
    """,
    """
    perm = np.array([3, 0, 4, 1, 2])
    out_perm = mha(tv.tensor(X[perm][None]))[0].numpy()
    print("attention(permuted tokens) == permuted attention(tokens):", np.allclose(out_perm, out_tv.numpy()[perm], atol=1e-5))
    """,
    """md:
    ### Absolute position encodings: sine-cosine and learned
    The Transformer's fixed code gives position $p$ the vector
    $PE(p, 2i) = \\sin(p / 10000^{2i/D})$, $PE(p, 2i+1) = \\cos(p / 10000^{2i/D})$: a set of clocks of
    geometrically growing periods. The dot product of two codes depends only on their distance, so
    nearby positions look alike. ViT usually *learns* one vector per position instead
    (`LearnedPositionEmbedding`, random at initialisation); a 2-D variant (`sincos_2d`) encodes row and
    column separately for a patch grid.
    """,
    """
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
    """,
    """md:
    ### Relative position encoding
    Instead of adding a code to the tokens, a relative scheme adds a learned bias to the attention
    logits that depends only on the offset between query and key:
    $\\text{softmax}(QK^T/\\sqrt{d_k} + B)V$ with $B_{ij} = b[\\text{offset}(i, j)]$ (Swin's
    `RelativePositionBias`). In a 3x3 window there are 5x5 = 25 possible offsets; the index table below
    says which of them each (query, key) pair uses, and one gather turns the 25 learned numbers per head
    into the 9x9 bias.
    """,
    """
    print(tv.nn.relative_position_index(3, 3))
    rpb = tv.nn.RelativePositionBias(3, num_heads=2)
    bias = rpb()                                                    # (heads, 9, 9)
    print("bias:", bias.shape, "from a table of", rpb.relative_position_bias_table.shape)
    tokens = tv.tensor(rng.normal(size=(1, 9, D)).astype(np.float32))
    attn = tv.nn.MultiheadSelfAttention(D, num_heads=2, rel_pos_bias=rpb)
    print("attention with relative position bias:", attn(tokens).shape)
    """,
    """md:
    ## 2.2 ViT architecture (ViT模型架构)

    ### Patches
    ViT cuts an image into $P \\times P$ patches and treats each as a token. For ImageNet's 224x224
    images and $P = 16$: 224/16 = 14 patches per side, 14 x 14 = 196 tokens of 16·16·3 = 768 numbers
    each. For CIFAR's 32x32 images, $P = 4$ gives 8 x 8 = 64 tokens of 48 numbers. With the class token,
    attention then works on 197 or 65 tokens; its cost grows with the square of that number.
    """,
    """
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
    """,
    """md:
    The patch embedding is one linear map $E$ applied to each flattened patch. tinyvision implements
    it as a convolution with kernel = stride = $P$, which computes exactly that; we check it against
    "flatten the patch, multiply by $E$".
    """,
    """
    vit = tv.models.create("vit_cifar_tiny", num_classes=10)
    x = tv.tensor(C.normalised(C.subset(split.train, [0, 1])))            # (2, 3, 32, 32)
    tokens = vit.patch_embed(x).numpy()                                   # (2, 64, 64)
    W = vit.patch_embed.proj.weight.numpy()                               # (D, 3, P, P)
    b = vit.patch_embed.proj.bias.numpy()
    xp = x.numpy().reshape(2, 3, 8, P, 8, P).transpose(0, 2, 4, 1, 3, 5).reshape(2, 64, 3 * P * P)
    manual = xp @ W.reshape(W.shape[0], -1).T + b
    print("tokens:", tokens.shape, " max |conv - flatten @ E| =", np.abs(tokens - manual).max())
    """,
    """md:
    ## 2.3 ViT implementation details (ViT模型实现细节)

    The whole forward pass, one layer at a time, with the model's own modules:
    $z_0 = [x_{cls}; E x_1; \\dots; E x_N] + E_{pos}$, then per block
    $z' = z + \\text{MSA}(\\text{LN}(z))$, $z = z' + \\text{MLP}(\\text{LN}(z'))$, and the head reads the
    class token after a final LayerNorm. The result must equal `vit(x)`.
    """,
    """
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
    """,
    """md:
    ### Training a small ViT briefly
    The ViT recipe (chapter 5): AdamW, warmup then cosine decay, label smoothing, gradient clipping.
    In QUICK mode this is the 75k-parameter `vit_cifar_tiny` on a few hundred images for two epochs;
    in full mode `vit_cifar_small` on 20,000 images.
    """,
    C_TRAIN := """
    split = C.load_data(train_per_class=60 if QUICK else 2000, test_per_class=20 if QUICK else 200)
    C.describe(split)
    name = "vit_cifar_tiny" if QUICK else "vit_cifar_small"
    vit = tv.models.create(name, num_classes=10)
    history = C.fit(vit, split, "vit_adamw", epochs=2 if QUICK else 15, batch_size=32 if QUICK else 128,
                    warmup_epochs=0 if QUICK else 2)
    plt.plot([h["epoch"] for h in history], [h["train_acc"] for h in history], marker="o", label="train")
    plt.plot([h["epoch"] for h in history], [h["test_acc"] for h in history], marker="o", label="test")
    plt.xlabel("epoch"); plt.ylabel("accuracy"); plt.title(name); plt.legend(); plt.grid(alpha=0.3); plt.show()
    """,
    """md:
    ### Attention maps
    `get_attention_maps` returns every block's attention weights (B, heads, 65, 65). Row 0 is where the
    class token looks; its 64 entries over the patches, reshaped to 8x8 and averaged over the heads, are
    drawn over the image (brighter = more attention). After brief training the maps are diffuse; after
    full training they tend to concentrate on the object.
    """,
    """
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
    """,
    """md:
    The article's §2.2-2.3 also list ViT's uses (classification, detection, segmentation) and its
    results on ImageNet and COCO; those need pretrained checkpoints and data sets far beyond a CPU
    notebook. `tv.models.load_pretrained` reads timm- or torchvision-named `.safetensors` weights into
    `vit_base_patch16_224` and friends when you have them. Chapter 4 compares ViT and ResNet on equal
    footing; chapter 6 discusses dense tasks.
    """,
]

# =====================================================================================
NOTEBOOKS["03_resnet"] = [
    """md:
    # Chapter 3 · Residual networks (ResNet（残差网络）模型)

    A residual block adds its input back to what its layers compute. This notebook checks that idea
    numerically, reproduces the degradation experiment in miniature (plain vs residual networks of
    growing depth), derives batch normalisation from its formula, and compares gradient clipping by
    norm and by value, and identity vs projection shortcuts.
    """,
    SETUP,
    DATA_NOTE,
    """md:
    ## 3.1 The residual idea (残差网络概念)
    $$y = F(x) + x$$
    The block's layers learn only the *correction* $F$. If doing nothing is best, they push $F$ to 0,
    which is easy; and backpropagation gets $\\partial y/\\partial x = \\partial F/\\partial x + I$: the
    identity term carries the gradient past the block even when $\\partial F/\\partial x$ is small.

    A check: in tinyvision's `BasicBlock` (`y = relu(F(x) + x)`), setting the last batch-norm scale to
    zero makes $F \\equiv 0$, and the block returns `relu(x)`.
    """,
    """
    block = tv.models.BasicBlock(16, 16).eval()
    block.bn2.weight.data[:] = 0.0
    x = tv.randn(2, 16, 8, 8)
    with tv.no_grad():
        print("F = 0  =>  y == relu(x):", np.allclose(block(x).numpy(), np.maximum(x.numpy(), 0)))
    """,
    """md:
    ### Gradients at initialisation
    How much gradient reaches the first convolution of a freshly initialised network, as depth grows?
    One forward and backward pass on a batch, for plain and residual CIFAR networks of depth 6n + 2.
    """,
    """
    split = C.load_data(train_per_class=20 if QUICK else 500, test_per_class=10 if QUICK else 200)
    C.describe(split)
    xb = tv.tensor(C.normalised(C.subset(split.train, np.arange(32))))
    yb = tv.tensor(split.train.targets[:32])
    depths = [8, 20, 32] if QUICK else [8, 20, 32, 56, 110]
    grad_norms = {"plain": [], "residual": []}
    for depth in depths:
        for kind in grad_norms:
            tv.manual_seed(0)
            model = C.cifar_resnet(depth, widths=(8, 16, 32) if QUICK else (16, 32, 64), plain=kind == "plain")
            loss = tv.nn.functional.cross_entropy(model(xb), yb)
            loss.backward()
            grad_norms[kind].append(float(np.linalg.norm(model.conv1.weight.grad.numpy())))
    for kind, g in grad_norms.items():
        plt.semilogy(depths, g, marker="o", label=kind)
    plt.xlabel("depth"); plt.ylabel("|dL/dW| of the first conv"); plt.legend(); plt.grid(alpha=0.3); plt.show()
    print({k: [f"{v:.2e}" for v in g] for k, g in grad_norms.items()})
    """,
    """md:
    ### The degradation experiment
    He et al. observed that a deeper *plain* network reaches a higher *training* error than a
    shallower one (not overfitting: an optimisation problem), while residual networks improve with
    depth. We train plain and residual networks of two depths with the same recipe and compare their
    training curves. Full mode uses depths 20 and 56 on 5,000 images; QUICK mode only demonstrates the
    procedure with narrow networks and a few hundred images, where no conclusion can be drawn.
    """,
    """
    depths = [8, 14] if QUICK else [20, 56]
    widths = (8, 16, 32) if QUICK else (16, 32, 64)
    curves = {}
    for depth in depths:
        for kind in ["plain", "residual"]:
            tv.manual_seed(0)
            model = C.cifar_resnet(depth, widths=widths, plain=kind == "plain")
            print(f"{kind}-{depth}")
            curves[f"{kind}-{depth}"] = C.fit(model, split, "resnet_sgd", epochs=2 if QUICK else 20,
                                              batch_size=32 if QUICK else 128, schedule="step")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, hist in curves.items():
        style = "--" if name.startswith("plain") else "-"
        epochs = [h["epoch"] for h in hist]
        axes[0].plot(epochs, [1 - h["train_acc"] for h in hist], style, marker="o", label=name)
        axes[1].plot(epochs, [1 - h["test_acc"] for h in hist], style, marker="o", label=name)
    for ax, t in zip(axes, ["training error", "test error"]):
        ax.set_xlabel("epoch"); ax.set_title(t); ax.legend(); ax.grid(alpha=0.3)
    plt.show()
    final = {k: round(1 - h[-1]["train_acc"], 3) for k, h in curves.items()}
    print("final training error:", final)
    deep, shallow = depths[1], depths[0]
    print(f"plain: deeper has {'higher' if final[f'plain-{deep}'] > final[f'plain-{shallow}'] else 'lower'} training error; "
          f"residual: deeper has {'higher' if final[f'residual-{deep}'] > final[f'residual-{shallow}'] else 'lower'} training error")
    """,
    """md:
    ## 3.2 ResNet architecture (ResNet模型架构)

    Input stem, stacked residual stages, pooled output layer. The CIFAR ResNet-20: a 3x3 stem with 16
    channels, three stages of three blocks (16, 32, 64 channels at 32x32, 16x16, 8x8), global average
    pooling, a linear classifier.
    """,
    """
    resnet20 = tv.models.create("resnet20", num_classes=10)
    tv.summary(resnet20, (1, 3, 32, 32), depth=2);
    """,
    """md:
    ## 3.3 Training techniques (ResNet模型训练技巧)

    ### Batch normalisation from its formula
    $$\\bar{x} = \\frac{1}{N}\\sum_{i=1}^{N}x_i,\\quad \\sigma^2 = \\frac{1}{N}\\sum_{i=1}^{N}(x_i - \\bar{x})^2,\\quad
    \\hat{x}_i = \\frac{x_i - \\bar{x}}{\\sqrt{\\sigma^2 + \\epsilon}},\\quad y_i = \\gamma \\hat{x}_i + \\beta$$
    For images the statistics are per channel, over the batch and both spatial axes. In training mode
    the layer also updates running averages (momentum 0.1, the unbiased variance), which evaluation mode
    then uses instead of the batch statistics.
    """,
    """
    rng = np.random.default_rng(0)
    xs = (rng.normal(size=(8, 4, 5, 5)) * 3 + 2).astype(np.float32)
    bn = tv.nn.BatchNorm2d(4)
    bn.weight.data[:] = rng.uniform(0.5, 2, 4); bn.bias.data[:] = rng.normal(size=4)

    mean = xs.mean(axis=(0, 2, 3), keepdims=True)
    var = xs.var(axis=(0, 2, 3), keepdims=True)
    x_hat = (xs - mean) / np.sqrt(var + bn.eps)
    y_np = bn.weight.numpy().reshape(1, -1, 1, 1) * x_hat + bn.bias.numpy().reshape(1, -1, 1, 1)

    y_tv = bn.train()(tv.tensor(xs)).numpy()
    print("training mode, max |formula - layer| =", np.abs(y_np - y_tv).max())
    n = xs.size / xs.shape[1]
    expected_running_var = 0.9 * 1.0 + 0.1 * var.ravel() * n / (n - 1)
    print("running mean:", np.allclose(bn.running_mean.numpy(), 0.1 * mean.ravel(), atol=1e-5),
          " running var:", np.allclose(bn.running_var.numpy(), expected_running_var, atol=1e-4))
    y_eval = bn.eval()(tv.tensor(xs)).numpy()
    print("evaluation mode uses the running statistics, output mean per channel:", y_eval.mean(axis=(0, 2, 3)).round(2))
    """,
    """md:
    ### Exploding gradients and clipping by the norm
    The article's formula rescales the whole gradient when its L2 norm exceeds a threshold:
    $$\\text{clip}(g, c) = \\begin{cases} g & \\|g\\|_2 \\le c \\\\ \\frac{c}{\\|g\\|_2}\\, g & \\|g\\|_2 > c \\end{cases}$$
    Here $g$ is all parameters' gradients together (the *global* norm). We implement it in NumPy and
    compare with `tv.optim.clip_grad_norm_`, then contrast with clipping each *value* into $[-c, c]$
    (`clip_grad_value_`), which changes the gradient's direction.
    """,
    """
    def grads_of(model):
        model.zero_grad()
        tv.nn.functional.cross_entropy(model(xb), yb).backward()
        return [p.grad.numpy().copy() for p in model.parameters()]

    model = C.cifar_resnet(8, widths=(8, 16, 32))
    g = grads_of(model)
    norm = np.sqrt(sum((a ** 2).sum() for a in g))
    c = 0.25 * norm
    by_formula = [a * (c / norm) if norm > c else a for a in g]

    grads_of(model)
    total = tv.optim.clip_grad_norm_(model.parameters(), c)
    by_norm = [p.grad.numpy() for p in model.parameters()]
    grads_of(model)
    tv.optim.clip_grad_value_(model.parameters(), 0.25 * max(abs(a).max() for a in g))
    by_value = [p.grad.numpy() for p in model.parameters()]

    flat = lambda gs: np.concatenate([a.ravel() for a in gs])
    cos = lambda a, b: float(flat(a) @ flat(b) / np.linalg.norm(flat(a)) / np.linalg.norm(flat(b)))
    print(f"norm before: {norm:.4f} (library reports {total:.4f}); after: {np.linalg.norm(flat(by_norm)):.4f} (target {c:.4f})")
    print("max |formula - clip_grad_norm_| =", np.abs(flat(by_formula) - flat(by_norm)).max())
    print(f"direction kept?  by norm: cos = {cos(g, by_norm):.4f};  by value: cos = {cos(g, by_value):.4f}")
    """,
    """md:
    A deliberately unstable run: a *plain* network (no shortcuts) with a far too large learning rate.
    Without clipping the loss explodes (or becomes NaN); with the global-norm clip at 1.0 each step's
    size is bounded and training proceeds. Same data, same initialisation.
    """,
    """
    steps = 10 if QUICK else 60
    loader_x = tv.tensor(C.normalised(split.train))
    loader_y = tv.tensor(split.train.targets)
    runs = {}
    for clip in [None, 1.0]:
        tv.manual_seed(0)
        model = C.cifar_resnet(8 if QUICK else 32, widths=(8, 16, 32), plain=True)
        opt = tv.optim.SGD(model.parameters(), lr=3.0, momentum=0.9)
        losses, norms = [], []
        for step in range(steps):
            idx = np.random.default_rng(step).choice(len(split.train), 32, replace=False)
            loss = tv.nn.functional.cross_entropy(model(loader_x[idx]), loader_y[idx])
            opt.zero_grad(); loss.backward()
            norms.append(tv.optim.clip_grad_norm_(model.parameters(), clip if clip else float("inf")))
            opt.step()
            losses.append(float(loss.item()))
        runs["no clipping" if clip is None else f"clip norm {clip}"] = (losses, norms)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for name, (losses, norms) in runs.items():
        axes[0].plot(np.nan_to_num(losses, nan=1e3, posinf=1e3), marker=".", label=name)
        axes[1].semilogy(np.nan_to_num(norms, nan=1e12, posinf=1e12), marker=".", label=name)
    axes[0].set_title("loss (NaN drawn as 1000)"); axes[1].set_title("gradient norm before clipping")
    for ax in axes: ax.set_xlabel("step"); ax.legend(); ax.grid(alpha=0.3)
    plt.show()
    """,
    """md:
    ## 3.4 Advantages, and identity vs projection shortcuts (ResNet模型的优势)

    Where a block halves the resolution and doubles the channels, $x$ and $F(x)$ differ in shape. Option
    **A** subsamples $x$ and pads the new channels with zeros (no parameters; the paper's CIFAR nets);
    option **B** projects with a strided 1x1 convolution and batch norm (torchvision's `downsample`).
    Elsewhere both use the identity.
    """,
    """
    results = {}
    for option in ["A", "B"]:
        tv.manual_seed(0)
        model = C.cifar_resnet(8 if QUICK else 20, widths=(8, 16, 32) if QUICK else (16, 32, 64), shortcut=option)
        print(f"shortcut {option}: {C.params_count(model):,} parameters")
        results[option] = C.fit(model, split, "resnet_sgd", epochs=1 if QUICK else 20, batch_size=32 if QUICK else 128)
    print({k: round(h[-1]["test_acc"], 3) for k, h in results.items()})
    sc = tv.models.PadShortcut(16, 32, stride=2)
    print("option A on (1, 16, 32, 32):", sc(tv.randn(1, 16, 32, 32)).shape)
    """,
    """md:
    The projection adds parameters and computation for a small or no accuracy gain on CIFAR, which is
    why the CIFAR ResNets use option A; ImageNet ResNets use B, where it also changes the width by
    the bottleneck's factor 4.
    """,
]

# =====================================================================================
NOTEBOOKS["04_vit_vs_resnet"] = [
    """md:
    # Chapter 4 · ViT and ResNet compared (ViT和ResNet模型的联系与差异)

    The article's comparison, measured: parameters, multiply-adds, throughput, accuracy for the same
    training time, and accuracy as the training set grows. At the end we say which of the usual
    claims the measurements support, and how strongly.
    """,
    SETUP,
    DATA_NOTE,
    """md:
    ## 4.1 What they share (ViT和ResNet的共性) and 4.2 how they differ (ViT和ResNet的差异)

    Both are stacks of residual blocks ($x + F(x)$) with normalisation, trained end to end by the same
    loop, and both end in global pooling (ResNet: average over positions; ViT: the class token) and a
    linear classifier. They differ in how positions interact: a 3x3 convolution only mixes neighbours
    with weights shared across the image (locality and translation equivariance are built in), while
    attention lets every patch look at every other from the first layer, with weights computed from the
    content, and must learn what locality it needs (fewer built-in assumptions, "inductive biases").

    ### Size and computation
    `tv.summary` counts parameters and multiply-adds (MACs) for one image.
    """,
    """
    cifar_models = ["resnet20", "resnet56", "vit_cifar_tiny", "vit_cifar_small", "vit_lite_7_4"]
    big_models = ["resnet18", "vit_tiny_patch16_224"] if QUICK else ["resnet18", "resnet50", "vit_tiny_patch16_224", "vit_small_patch16_224", "vit_base_patch16_224"]
    rows = []
    for name, size in [(m, 32) for m in cifar_models] + [(m, 224) for m in big_models]:
        model = tv.models.create(name)
        s = tv.summary(model, (1, 3, size, size), verbose=False)
        rows.append((name, size, s.total_params, s.total_macs))
    print(f"{'model':24s} {'input':>6s} {'params':>12s} {'MACs':>14s} {'MACs/param':>10s}")
    for name, size, p, m in rows:
        print(f"{name:24s} {size:>6d} {p:>12,d} {m:>14,d} {m / p:>10.1f}")
    """,
    """md:
    A convolution applies each weight at every position of its feature map; a ViT applies each weight
    once per token (plus the attention products, which have no weights). So a ViT's MACs per parameter
    is close to its number of tokens: about 65-74 for the CIFAR ViTs (65 tokens), over 200 for ViT-Ti/16
    at 224x224 (197 tokens), whereas ResNet's ratio depends on where its parameters sit (most are in the
    low-resolution last stage: about 150 for both ResNet-20 and ResNet-18). Which family is "cheaper per
    parameter" therefore depends on image and patch size, not on the family.

    ### Throughput
    Images per second for training steps (forward + backward + update) and for inference, measured on
    this machine. The numbers depend on the CPU and on whatever else runs on it.
    """,
    """
    def throughput(model, batch, reps, train=True):
        x = tv.randn(batch, 3, 32, 32)
        y = tv.tensor(np.random.default_rng(0).integers(0, 10, batch))
        opt = tv.optim.SGD(model.parameters(), lr=0.01)
        model.train(train)
        times = []
        for _ in range(reps + 1):
            t0 = time.perf_counter()
            if train:
                loss = tv.nn.functional.cross_entropy(model(x), y)
                opt.zero_grad(); loss.backward(); opt.step()
            else:
                with tv.no_grad():
                    model(x)
            times.append(time.perf_counter() - t0)
        return batch / np.median(times[1:])                         # first call warms up

    batch, reps = (32, 2) if QUICK else (128, 5)
    speed = {}
    for name in ["resnet20", "vit_cifar_tiny"] + ([] if QUICK else ["vit_cifar_small"]):
        model = tv.models.create(name)
        speed[name] = (throughput(model, batch, reps, True), throughput(model, batch, reps, False))
        print(f"{name:16s} train {speed[name][0]:7.0f} img/s   inference {speed[name][1]:7.0f} img/s")
    """,
    """md:
    ## 4.3 Performance on vision tasks (ViT和ResNet在计算机视觉任务中的表现)

    ### Accuracy for the same training time
    Each model gets the same wall-clock budget on the same images with its own recipe (ResNet: SGD;
    ViT: AdamW); the schedule is laid out for a fixed number of epochs and training stops when the time
    is up.
    """,
    """
    split = C.load_data(train_per_class=40 if QUICK else 2000, test_per_class=20 if QUICK else 300)
    C.describe(split)
    budget = 6 if QUICK else 600
    # QUICK mode: a narrow ResNet-8 and the tiny ViT (similar sizes); full mode: ResNet-20 and the small ViT.
    res_name, vit_name = ("resnet8 (narrow)", "vit_cifar_tiny") if QUICK else ("resnet20", "vit_cifar_small")
    def build(name):
        return C.cifar_resnet(8, widths=(8, 16, 32)) if name == "resnet8 (narrow)" else tv.models.create(name)
    contenders = {res_name: "resnet_sgd", vit_name: "vit_adamw"}
    timed = {}
    for name, recipe in contenders.items():
        tv.manual_seed(0)
        print(name)
        timed[name] = C.fit(build(name), split, recipe, epochs=3 if QUICK else 30, time_budget=budget,
                            batch_size=32 if QUICK else 128, warmup_epochs=0 if QUICK else None)
    for name, hist in timed.items():
        plt.plot([h["wall_time"] for h in hist], [h["test_acc"] for h in hist], marker="o", label=name)
    plt.xlabel("training time (s)"); plt.ylabel("test accuracy"); plt.legend(); plt.grid(alpha=0.3)
    plt.title(f"same budget: {budget} s"); plt.show()
    """,
    """md:
    **On the full data set** (50,000 training images; measured with `python -m tinyvision train`, see
    the README): run side by side on the same 2-core machine, one core each, for the same ~95 minutes,
    ResNet-20 reached 83.6% test accuracy (12 epochs) and the ViT (dim 192, depth 6, patch 4) 65.8%
    (8 epochs). On an H200 GPU, ResNet-20 reached 88.2% in 3.1 minutes (30 epochs) and the same ViT
    74.1% in 2.8 minutes (19 epochs). Equal time, equal data, and the convolution's built-in locality is
    worth 14-18 points at this scale.
    """,
    """md:
    ### Data efficiency
    The claim most often made: ViT needs more data than a CNN, because it must learn the locality a
    convolution has built in. We train both on growing fractions of the training set (6 epochs
    each in full mode, so that the chapter runs in about an hour and a half on one core) and compare test
    accuracy.
    """,
    """
    fractions = [0.25, 1.0] if QUICK else [0.1, 0.25, 0.5, 1.0]
    efficiency = {res_name: [], vit_name: []}
    rng = np.random.default_rng(0)
    order = rng.permutation(len(split.train))
    for f in fractions:
        part = C.Split(C.subset(split.train, order[:int(f * len(order))]), split.test, split.source)
        for name, recipe in contenders.items():
            tv.manual_seed(0)
            hist = C.fit(build(name), part, recipe, epochs=2 if QUICK else 6, verbose=False,
                         batch_size=32 if QUICK else 128, warmup_epochs=0 if QUICK else None)
            efficiency[name].append(hist[-1]["test_acc"])
            print(f"fraction {f:.2f} ({len(part.train)} images) {name:16s} test acc {hist[-1]['test_acc']:.3f}")
    for name, accs in efficiency.items():
        plt.plot([f * len(split.train) for f in fractions], accs, marker="o", label=name)
    plt.xscale("log"); plt.xlabel("training images"); plt.ylabel("test accuracy"); plt.legend(); plt.grid(alpha=0.3)
    plt.show()
    """,
    """md:
    ### What the measurements support
    The cell below turns the measurements into verdicts. They only speak for this scale (small models,
    CIFAR-sized images, short training, a CPU); the article's statements about ImageNet-scale
    pretraining cannot be tested here.
    """,
    """
    def verdict(ok):
        return "SUPPORTED by this run" if ok else "NOT supported by this run"

    r = {name: (p, m) for name, size, p, m in rows if size == 32}
    big = {name: (p, m) for name, size, p, m in rows if size == 224}
    ratio = lambda d, n: d[n][1] / d[n][0]
    print("1. 'ViT does fewer multiply-adds per parameter than a CNN': at 32x32",
          verdict(ratio(r, "vit_cifar_small") < ratio(r, "resnet20")), "; at 224x224",
          verdict(ratio(big, "vit_tiny_patch16_224") < ratio(big, "resnet18")))
    res_final, vit_final = timed[res_name][-1]["test_acc"], timed[vit_name][-1]["test_acc"]
    print(f"2. 'for the same (short) training time the CNN is more accurate': {res_name} {res_final:.3f} vs "
          f"{vit_name} {vit_final:.3f}:", verdict(res_final > vit_final))
    gap = np.array(efficiency[res_name]) - np.array(efficiency[vit_name])
    print(f"3. 'ViT's deficit shrinks as data grows': ResNet minus ViT accuracy by fraction {np.round(gap, 3).tolist()}:",
          verdict(gap[-1] < gap[0]))
    print("   (differences of a few points on a few hundred test images are within noise:",
          f"the standard error of one accuracy near 0.5 on {len(split.test)} images is "
          f"{np.sqrt(0.25 / len(split.test)):.3f})")
    if not split.real:
        print("   The data were SYNTHETIC: none of these verdicts is about CIFAR-10.")
    """,
]

# =====================================================================================
NOTEBOOKS["05_training_evaluation_optimization"] = [
    """md:
    # Chapter 5 · Training, evaluation and optimisation (计算机视觉预训练模型应用案例)

    Data preparation, the two training recipes, the evaluation metrics (accuracy, precision, recall,
    F1, IoU), learning-rate schedules, and ablations of augmentation and regularisation.
    """,
    SETUP,
    DATA_NOTE,
    """md:
    ## 5.1 Preparing the data (数据集准备)

    Check the class balance, compute the per-channel mean and standard deviation used for
    normalisation, and look at what augmentation does to a batch.
    """,
    """
    split = C.load_data(train_per_class=50 if QUICK else 2000, test_per_class=20 if QUICK else 300)
    C.describe(split)
    print("images per class:", np.bincount(split.train.targets).tolist())
    pixels = split.train.data.reshape(-1, 3) / 255.0
    print("mean per channel", pixels.mean(0).round(4), " std", pixels.std(0).round(4))
    print("CIFAR-10 constants used by the models:", tv.data.CIFAR10_MEAN, tv.data.CIFAR10_STD)

    from tinyvision.train import build_transform, RECIPES
    augment = build_transform("crop_flip_cutout", (0, 0, 0), (1, 1, 1))          # no normalisation, to show it
    sample = split.train.data[:6]
    out = augment(sample, np.random.default_rng(0))
    fig, axes = plt.subplots(2, 6, figsize=(10, 3.6))
    for j in range(6):
        axes[0, j].imshow(sample[j]); axes[1, j].imshow(out[j].transpose(1, 2, 0).clip(0, 1))
        axes[0, j].axis("off"); axes[1, j].axis("off")
    axes[0, 0].set_title("original", loc="left"); axes[1, 0].set_title("crop + flip + cutout", loc="left")
    plt.show()
    """,
    """md:
    ## 5.2 Training and optimisation (模型训练与优化)

    The article trains ViT with Adam and ResNet with SGD. tinyvision's recipes
    (`tinyvision.train.RECIPES`) make that concrete: ResNet uses SGD with Nesterov momentum, weight
    decay $5 \\cdot 10^{-4}$ and a one-cycle schedule; ViT uses AdamW (decoupled weight decay 0.05),
    a linear warmup and cosine decay, label smoothing 0.1 and gradient clipping at norm 1.
    """,
    """
    for name, recipe in RECIPES.items():
        print(name, {k: v for k, v in recipe.items()})
    curves = {}
    # QUICK mode: a narrow ResNet-8 in place of ResNet-20 (same recipe), to keep the run short
    for name, recipe in [("resnet8 (narrow)" if QUICK else "resnet20", "resnet_sgd"), ("vit_cifar_tiny", "vit_adamw")]:
        tv.manual_seed(0)
        print(name)
        model = C.cifar_resnet(8, widths=(8, 16, 32)) if QUICK else tv.models.create(name)
        curves[name] = (model, C.fit(model, split, recipe, epochs=2 if QUICK else 15, batch_size=32 if QUICK else 128,
                                     warmup_epochs=0 if QUICK else None))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for name, (_, hist) in curves.items():
        axes[0].plot([h["epoch"] for h in hist], [h["train_loss"] for h in hist], marker="o", label=name)
        axes[1].plot([h["epoch"] for h in hist], [h["test_acc"] for h in hist], marker="o", label=name)
    axes[0].set_title("training loss"); axes[1].set_title("test accuracy")
    for ax in axes: ax.set_xlabel("epoch"); ax.legend(); ax.grid(alpha=0.3)
    plt.show()
    """,
    """md:
    **The recipes at full scale** (measured with `python -m tinyvision train` on all 50,000 images; see
    the README): the ResNet recipe trained ResNet-20 for 20 epochs in 119 minutes on a 2-core CPU to
    86.0% test accuracy (86.9% averaging each image with its mirror), and for 30 epochs at batch 512
    (max lr 0.4, label smoothing 0.1) on an H200 GPU to 88.2% in 3.1 minutes. The ViT recipe took the
    small ViT to 65.8% in 8 epochs on one CPU core (93 minutes) and to 74.1% in 19 epochs on the GPU.
    On the 2-core CPU, the same 30 epochs fit in two hours with progressive resizing
    (`--progressive 24:18`: epochs 1-18 on random 24 x 24 crops, each step 0.55 of a whole-image
    one, then 12 epochs on whole images): 87.0% plain, 88.4% averaging each image's mirror and
    shifts by 2 pixels, in 112 minutes with the evaluation; a second seed gave 86.8% and 88.3%.
    While the crops last, the test accuracy trails partly because batch norm's running statistics
    describe crops; `tv.optim.swa_utils.update_bn(loader, model)` re-estimates them on whole images
    (`train` does so before it tests a crop epoch).
    """,
    """md:
    ## 5.3 Evaluation and optimisation (模型评估与优化)

    ### Metrics
    With predictions $p_i$ and labels $t_i$: accuracy $= \\frac{1}{N}\\sum_i [p_i = t_i]$; for class $c$,
    precision $= TP_c/(TP_c + FP_c)$ (of the images called $c$, how many are $c$), recall
    $= TP_c/(TP_c + FN_c)$ (of the images of $c$, how many were found), $F_1$ their harmonic mean. The
    confusion matrix holds all of it: row = truth, column = prediction.
    """,
    """
    from tinyvision import metrics
    model = curves[list(curves)[0]][0]
    logits, targets = C.evaluate(model, split.test)
    preds = logits.argmax(1)
    cm = metrics.confusion_matrix(preds, targets, 10)
    precision, recall, f1 = metrics.precision_recall_f1(preds, targets, 10)
    print(f"accuracy {metrics.accuracy(logits, targets):.3f}   top-5 {metrics.topk_accuracy(logits, targets, 5):.3f}")
    tp = np.diag(cm); print("precision from the matrix by hand equals the library's:",
                            np.allclose(np.divide(tp, cm.sum(0), out=np.zeros(10), where=cm.sum(0) > 0), precision))
    for c, name in enumerate(split.classes):
        print(f"  {name:12s} precision {precision[c]:.2f}  recall {recall[c]:.2f}  F1 {f1[c]:.2f}")
    metrics.plot_confusion_matrix(cm, split.classes, normalize=True); plt.show()
    """,
    """md:
    For detection and segmentation the basic score is the **intersection over union**,
    $\\mathrm{IoU}(A, B) = |A \\cap B| / |A \\cup B|$, of a predicted and a true box or mask; a detection
    usually counts as correct when IoU $\\ge 0.5$, and segmentation reports the mean IoU over classes.
    """,
    """
    truth = np.array([[10, 10, 50, 50]])
    guesses = np.array([[10, 10, 50, 50], [20, 20, 60, 60], [30, 10, 70, 50], [60, 60, 90, 90]])
    ious = metrics.box_iou(guesses, truth)[:, 0]
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.add_patch(plt.Rectangle((10, 10), 40, 40, fill=False, lw=3, color="black", label="truth"))
    for g, iou, colour in zip(guesses, ious, ["tab:green", "tab:blue", "tab:orange", "tab:red"]):
        ax.add_patch(plt.Rectangle(g[:2], g[2] - g[0], g[3] - g[1], fill=False, lw=1.5, color=colour, ls="--"))
        ax.text(g[0] + 1, g[3] - 3, f"IoU {iou:.2f}", color=colour, fontsize=8)
    ax.set_xlim(0, 100); ax.set_ylim(100, 0); ax.set_title("box IoU"); plt.show()
    # a mask: predicted and true label maps with 3 classes
    true_map = np.zeros((20, 20), int); true_map[5:15, 5:15] = 1; true_map[:, 17:] = 2
    pred_map = np.zeros((20, 20), int); pred_map[6:16, 4:14] = 1; pred_map[:, 16:] = 2
    print("per-class IoU:", metrics.per_class_iou(pred_map, true_map, 3).round(3), " mIoU:",
          round(metrics.mean_iou(pred_map, true_map, 3), 3), " pixel accuracy:", metrics.pixel_accuracy(pred_map, true_map))
    """,
    """md:
    ### Learning-rate schedules: cosine vs step
    Both start at the base rate. Step decay divides it by 10 at fixed milestones (here 50% and 75%
    of training, as in the ResNet paper); cosine annealing follows
    $\\eta_t = \\eta_{min} + \\frac{1}{2}(\\eta_0 - \\eta_{min})(1 + \\cos(\\pi t / T))$; warmup ramps up
    linearly first; one-cycle rises then falls. Plotted from each scheduler's closed form `lr_at(t)`,
    no training needed.
    """,
    """
    total = 1000
    def make(kind):
        opt = tv.optim.SGD([tv.nn.Parameter(np.zeros(1, np.float32))], lr=0.1)
        if kind == "step (x0.1 at 50%, 75%)":
            return tv.optim.MultiStepLR(opt, milestones=[total // 2, total * 3 // 4], gamma=0.1)
        if kind == "cosine":
            return tv.optim.CosineAnnealingLR(opt, T_max=total)
        if kind == "warmup 50 + cosine":
            return tv.optim.LinearWarmup(tv.optim.CosineAnnealingLR(opt, T_max=total - 50), warmup_steps=50)
        return tv.optim.OneCycleLR(opt, max_lr=0.1, total_steps=total)
    for kind in ["step (x0.1 at 50%, 75%)", "cosine", "warmup 50 + cosine", "one-cycle"]:
        sched = make(kind)
        plt.plot([sched.lr_at(t)[0] for t in range(total)], label=kind)
    plt.xlabel("step"); plt.ylabel("learning rate"); plt.legend(); plt.grid(alpha=0.3); plt.show()
    """,
    """md:
    ### Ablations: augmentation and regularisation
    The article lists more augmentation and L1/L2/dropout regularisation as remedies for overfitting.
    One model and recipe, one change at a time. In QUICK mode each run sees a few hundred images for
    two epochs, so the differences are noise; in full mode (8 epochs on 10,000 images, so that six
    runs fit in an hour of one CPU core) augmentation's benefit is expected to show as a smaller gap
    between training and test accuracy.
    """,
    """
    variants = {
        "no augmentation": dict(augment="none"),
        "flip": dict(augment="flip"),
        "crop + flip": dict(augment="crop_flip"),
        "crop + flip + cutout": dict(augment="crop_flip_cutout"),
        "crop + flip, no weight decay": dict(augment="crop_flip", weight_decay=0.0),
        "crop + flip, label smoothing 0.1": dict(augment="crop_flip", label_smoothing=0.1),
    }
    if QUICK:
        variants = {k: variants[k] for k in ["no augmentation", "crop + flip", "crop + flip, no weight decay"]}
    half = C.Split(C.subset(split.train, tv.data.per_class_subset(split.train.targets, len(split.train) // 20)),
                   split.test, split.source)
    ablation = {}
    for name, change in variants.items():
        tv.manual_seed(0)
        model = C.cifar_resnet(8 if QUICK else 20, widths=(8, 16, 32) if QUICK else (16, 32, 64))
        hist = C.fit(model, half, "resnet_sgd", epochs=2 if QUICK else 8, batch_size=32 if QUICK else 128,
                     verbose=False, **change)
        ablation[name] = (hist[-1]["train_acc"], hist[-1]["test_acc"])
        print(f"{name:34s} train acc {ablation[name][0]:.3f}   test acc {ablation[name][1]:.3f}")
    """,
    """md:
    ## Pretrained initialisation (5.2, step 3: 模型初始化：使用预训练的模型作为初始化权重)

    Both of the article's recipes start from pretrained weights "to reduce training time". Does that
    hold, and what is gained? A controlled test on the five classes dog, frog, horse, ship and truck
    (the *target* task), with 1%, 10% and 100% of their training labels, from three starts:

    * **scratch**: random weights;
    * **supervised transfer**: ResNet-20 trained with labels on the other five classes (airplane ...
      deer), its classifier replaced by a new 5-way head;
    * **self-supervised**: ResNet-20 trained *without labels* on images of all ten classes to tell
      by how many quarter turns an image was rotated (a pretext task: knowing which way is up needs
      knowing what objects look like), its rotation head replaced.

    Every start is then fine-tuned in full with the same recipe for the same number of epochs.
    `tinyvision.transfer` does the work: `PretextTrainer` (the training loop of
    `tinyvision.train` around the pretext task), `build_finetune_model` (load, new head), and
    `experiment.summarise`/`verdicts`, which turn the runs into statements about the article's
    claims: reuse of data, better performance, less overfitting, faster training (a difference under
    2 points counts as none).
    """,
    """
    import tempfile
    from IPython.display import Markdown, display
    from tinyvision import transfer
    from tinyvision.train import TrainConfig
    from tinyvision.transfer.experiment import markdown_table, summarise, verdicts

    SOURCE, TARGET, ARCH = [0, 1, 2, 3, 4], [5, 6, 7, 8, 9], "resnet20"
    work = tempfile.mkdtemp(prefix="tinyvision_ch5_")
    pre_epochs = 1 if QUICK else 5

    # supervised pretraining on the source classes, saved as timm-style .safetensors
    tv.manual_seed(0)
    source_model = tv.models.create(ARCH, num_classes=len(SOURCE))
    source = C.Split(C.select_classes(split.train, SOURCE), C.select_classes(split.test, SOURCE), split.source)
    hist = C.fit(source_model, source, "resnet_sgd", epochs=pre_epochs, batch_size=32 if QUICK else 128, verbose=False)
    print(f"supervised pretraining on {len(source.train)} images of classes 0-4: test acc {hist[-1]['test_acc']:.3f}")
    starts = {"supervised": os.path.join(work, "supervised.safetensors")}
    tv.models.save_pretrained(source_model, starts["supervised"])

    # self-supervised pretraining on all training images, labels unused
    cfg = TrainConfig(model=ARCH, out=os.path.join(work, "rotation"), epochs=pre_epochs, batch_size=32 if QUICK else 128,
                      prefetch=0, lr=0.1)
    pretext = transfer.PretextTrainer(cfg, "rotation", progress=False, datasets=(split.train, split.test))
    hist = pretext.fit()
    print(f"rotation pretraining on {len(split.train)} unlabelled images: pretext test acc {hist[-1]['test_acc']:.3f} "
          "(chance 0.25)")
    starts["self-supervised (rotation)"] = pretext.export(os.path.join(work, "rotation.safetensors"))
    """,
    """
    fractions = {0.1: 4, 1.0: 2} if QUICK else {0.01: 30, 0.1: 10, 1.0: 4}      # label fraction: epochs
    target_train, target_test = C.select_classes(split.train, TARGET), C.select_classes(split.test, TARGET)

    def start_model(start):
        tv.manual_seed(0)   # the same new head in every run
        if start == "scratch":
            return tv.models.create(ARCH, num_classes=len(TARGET))
        return transfer.build_finetune_model(starts[start], len(TARGET), mode="full", model=ARCH)[0]

    methods = ["scratch", *starts]
    curves, rows = {}, []
    for fraction, epochs in fractions.items():
        idx = transfer.label_fraction_indices(target_train.targets, fraction, seed=0)
        part = C.Split(C.subset(target_train, idx), target_test, split.source)
        batch = min(32 if QUICK else 128, max(8, len(idx) // 4))
        for start in methods:
            curves[fraction, start] = C.fit(start_model(start), part, "resnet_sgd", epochs=epochs, batch_size=batch,
                                            verbose=False)
        best_scratch = max(h["test_acc"] for h in curves[fraction, "scratch"])
        for start in methods:
            hist = curves[fraction, start]
            rows.append(dict(model=ARCH, label_fraction=fraction, method=start, train_images=len(idx),
                             seconds=hist[-1]["wall_time"], threshold=best_scratch, **summarise(hist, best_scratch)))
        print(f"{fraction:.0%} of the labels ({len(idx)} images) done")
    display(Markdown(markdown_table({"runs": rows})))
    for claim, verdict in verdicts(rows).items():
        if claim != "evidence":
            print(f"{claim:20s} {verdict}")
    """,
    """
    fig, axes = plt.subplots(1, len(fractions), figsize=(4.5 * len(fractions), 3.6), sharey=True)
    for ax, fraction in zip(axes, fractions):
        for start in methods:
            hist = curves[fraction, start]
            ax.plot([h["epoch"] for h in hist], [h["test_acc"] for h in hist], marker="o", label=start)
        ax.set_title(f"{fraction:.0%} of the target labels"); ax.set_xlabel("epoch"); ax.grid(alpha=0.3)
    axes[0].set_ylabel("target test accuracy"); axes[0].legend(); plt.tight_layout(); plt.show()
    """,
    """md:
    How to read it: transfer pays when its curve starts higher and its best accuracy beats scratch's,
    most at 1% of the labels, where scratch has the least to learn from. At 100% of the labels
    scratch has seen everything the target task offers and the gap is expected to close. The
    "epochs to scratch's best" column is the article's *faster training*; the train-test gap is
    *less overfitting*. The pretraining budgets here are small (a few CPU minutes in full mode;
    QUICK mode's numbers are noise), so a refuted claim says "not at this budget"; the README's
    `benchmarks/transfer_experiment.py` runs the same comparison for ResNet-20 and a ViT (with patch
    position prediction and MAE pretext tasks) and records its measurements.
    """,
]

# =====================================================================================
NOTEBOOKS["06_projects"] = [
    """md:
    # Chapter 6 · Projects (ViT和ResNet模型在实际项目中的应用)

    Image classification when some classes are rare, and what detection and segmentation need from a
    backbone.
    """,
    SETUP,
    DATA_NOTE,
    """md:
    ## 6.1 Image classification project (图像分类项目)

    Real data sets are rarely balanced. We build a long-tailed training set (class $c$ keeps
    $n_{max} \\cdot 10^{-c/9}$ images: the last class has a tenth of the first) and compare three ways of
    training on it, judged on a *balanced* test set:

    * **baseline**: plain cross-entropy; the model learns that rare classes are rarely right;
    * **resampling**: draw training images with probability inversely proportional to their class's
      frequency (`WeightedRandomSampler`), so batches are balanced on average;
    * **class weights**: keep the data, weight each class's loss by $w_c = N / (C\\, n_c)$
      (`class_weights`), so rare-class mistakes cost more.

    Accuracy hides the problem; per-class recall and macro-averaged F1 show it.
    """,
    """
    from tinyvision import data, metrics
    split = C.load_data(train_per_class=60 if QUICK else 2000, test_per_class=20 if QUICK else 300)
    C.describe(split)
    idx = data.make_imbalanced(split.train.targets, imbalance_factor=10.0, seed=0)
    long_tail = C.Split(C.subset(split.train, idx), split.test, split.source)
    counts = np.bincount(long_tail.train.targets, minlength=10)
    print("training images per class:", counts.tolist())

    y = long_tail.train.targets
    per_item = 1.0 / counts[y]
    setups = {
        "baseline": dict(),
        "resampling": dict(sampler=data.WeightedRandomSampler(per_item, num_samples=len(y), seed=0)),
        "class weights": dict(class_weight=data.class_weights(y, 10)),
    }
    outcome = {}
    for name, extra in setups.items():
        tv.manual_seed(0)
        model = C.cifar_resnet(8 if QUICK else 20, widths=(8, 16, 32) if QUICK else (16, 32, 64))
        C.fit(model, long_tail, "resnet_sgd", epochs=3 if QUICK else 15, batch_size=32 if QUICK else 128,
              verbose=False, **extra)
        logits, targets = C.evaluate(model, long_tail.test)
        p, r, f1 = metrics.precision_recall_f1(logits.argmax(1), targets, 10)
        outcome[name] = dict(acc=metrics.accuracy(logits, targets), recall=r, macro_f1=f1.mean())
        print(f"{name:14s} accuracy {outcome[name]['acc']:.3f}   macro F1 {outcome[name]['macro_f1']:.3f}   "
              f"recall of the 3 rarest classes {r[-3:].round(2).tolist()}")
    """,
    """
    width = 0.27
    for k, (name, o) in enumerate(outcome.items()):
        plt.bar(np.arange(10) + (k - 1) * width, o["recall"], width, label=name)
    plt.plot(np.arange(10), counts / counts.max(), "k.--", label="share of training images (rel.)")
    plt.xticks(range(10), [c[:8] for c in split.classes], rotation=45)
    plt.ylabel("recall on the balanced test set"); plt.legend(fontsize=8); plt.show()
    """,
    """md:
    Expected with enough training (full mode): the baseline's recall falls along the tail; both
    remedies lift the rare classes' recall at some cost to the frequent ones, raising macro F1.
    Resampling repeats the few rare images many times (overfitting risk, helped by augmentation);
    class weights keep each image once but make the loss noisier. In QUICK mode all three models are
    barely trained and the comparison is not meaningful.

    ## 6.2 Object detection (目标检测项目) and 6.3 segmentation (图像分割项目)

    CIFAR-10 has one centred object per image, so we make scenes: 1-4 CIFAR objects pasted at random
    sizes (16-40 px) and places onto 64x64 textured canvases, each with its box, class and pixel mask
    (`tinyvision.tasks.make_scenes`; train scenes from the train split, test scenes from the test split).

    Both tasks need a *spatial feature map* from the backbone, not one vector per image:

    * **ResNet backbone**: a stride-2 stem and three residual stages, features at strides 2, 4 and 8
      (`tasks.backbones.ResNetBackbone`).
    * **ViT backbone**: the patch tokens (8x8 patches) reshaped to their 8x8 grid, the class token dropped.

    On top of them:

    * **Detection, CenterNet-style (anchor-free)**: a heat map per class at stride 4 whose peaks are
      object centres, trained with the focal loss $-(1-p)^2 \\log p$ at centres and
      $-(1-y)^4 p^2 \\log(1-p)$ elsewhere ($y$ a Gaussian bump around each centre), plus L1 losses
      on box size and sub-cell offset. Decoding keeps 3x3 local maxima, then class-wise NMS.
      Scored by AP@0.5 and COCO's AP@[.5:.95].
    * **Segmentation**: a U-Net decoder (transposed conv and bilinear upsampling, concatenating the
      stride-4 and stride-2 skips) on the ResNet,
      a SETR-style decoder (token grid, convolutions, progressive upsampling) on the ViT; per-pixel
      cross-entropy over background + 10 classes. Scored by mIoU (`metrics.mask_iou` per class).
    """,
    """
    import tempfile
    from tinyvision import tasks
    from tinyvision.tasks import draw

    def scenes(ds, n, seed):
        return tasks.SceneDataset(tasks.make_scenes(ds.data, ds.targets, n, seed=seed), ds.classes)

    scene_train = scenes(split.train, 200 if QUICK else 4000, seed=0)
    scene_test = scenes(split.test, 40 if QUICK else 500, seed=1)
    print(scene_train, scene_test)
    fig, axes = plt.subplots(2, 4, figsize=(12, 6.2))
    for i in range(4):
        img, t = scene_test[i]
        axes[0, i].imshow(draw.draw_boxes(img, t["boxes"], t["labels"], scene_test.classes))
        axes[1, i].imshow(draw.overlay_mask(img, t["mask"]))
    for ax in axes.ravel(): ax.axis("off")
    axes[0, 0].set_title("boxes and labels", loc="left"); axes[1, 0].set_title("pixel masks", loc="left")
    plt.show()
    """,
    """md:
    Train the four models, detection and segmentation on each backbone, with the same budget
    (AdamW, warmup + cosine, flips). `tasks.fit` is the loop behind
    `python -m tinyvision detect|segment train`.
    """,
    """
    task_models, task_rows = {}, []
    workdir = tempfile.mkdtemp(prefix="tinyvision-ch06-")
    for task in ["detect", "segment"]:
        for backbone in ["resnet", "vit"]:
            cfg = tasks.TaskConfig(task=task, backbone=backbone, epochs=1 if QUICK else 6, batch_size=32,
                                   out=os.path.join(workdir, f"{task}_{backbone}"))
            t0 = time.time()
            model, history = tasks.fit(cfg, scene_train, scene_test, progress=False, log=lambda line: None)
            task_models[task, backbone] = model
            m = history[-1]
            score = (f"AP@0.5 {m['ap50']:.3f}  AP@[.5:.95] {m['ap']:.3f}" if task == "detect"
                     else f"mIoU {m['miou']:.3f}  pixel acc. {m['pixel_accuracy']:.3f}")
            task_rows.append((task, backbone, m, time.time() - t0))
            print(f"{task:8s} {backbone:6s} {score}   ({time.time() - t0:.0f} s)")
    """,
    """
    x4 = tv.tensor(scene_test.batch(np.arange(4))[0])
    det = {b: task_models["detect", b].predict(x4) for b in ["resnet", "vit"]}
    seg = {b: task_models["segment", b].predict(x4) for b in ["resnet", "vit"]}
    fig, axes = plt.subplots(4, 4, figsize=(12, 12.4))
    for i in range(4):
        img = scene_test.images[i]
        for r, b in enumerate(["resnet", "vit"]):
            d = det[b][i]
            keep = d["scores"] >= 0.3
            axes[r, i].imshow(draw.draw_boxes(img, d["boxes"][keep], d["labels"][keep], scene_test.classes,
                                              d["scores"][keep]))
            axes[2 + r, i].imshow(draw.overlay_mask(img, seg[b][i]))
    for r, title in enumerate(["ResNet detector", "ViT detector", "ResNet U-Net", "ViT SETR"]):
        axes[r, 0].set_title(title, loc="left")
    for ax in axes.ravel(): ax.axis("off")
    plt.show()
    """,
    """md:
    **Measured.** With the ResNet backbone on an H200 GPU (same code, `--device cuda`; see the
    README), 8,000 train scenes x 6 epochs gave segmentation mIoU 0.345 (pixel accuracy 0.839) in
    1.3 minutes, and 2,000 scenes x 5 epochs gave detection AP@0.5 0.258 (AP@[.5:.95] 0.177).
    A pixel accuracy of 0.84 (background is most of every scene) beside an mIoU of 0.35 says that
    objects are separated from the background far better than they are told apart: naming a small
    CIFAR object is the job of CIFAR-10 classification, here learnt from scratch in a few epochs.
    That is the article's case for pretraining, and it holds here. On the 2-core CPU (README,
    4,000 scenes, detection 8 epochs, segmentation 10), backbones started from the CIFAR-10
    classifiers of `python -m tinyvision train` gave: ResNet-20 detection AP@0.5 0.690 (from random
    weights 0.321), ResNet-20 U-Net mIoU 0.513 (0.582 with 8,000 scenes, 12 epochs and a backbone
    learning rate of 0.3x the head's; 0.615 when each scene is averaged with its mirror image,
    `segment eval --tta-flip`); the CIFAR ViT (`--backbone vit_cifar_small`, its
    position table resampled to the 16x16 grid) AP@0.5 0.390 and mIoU 0.291, barely above a small
    ViT from scratch (0.306, 0.274). The article expects the ViT's global attention to help with
    context and the ResNet's locality to help with small objects and little data: at this scale,
    small objects and 50,000 training images, locality wins clearly, even allowing for the ViT
    classifier's weaker start (65.8% against 86.0%). The rows above put the two small backbones
    side by side on one budget (in QUICK mode they are barely trained and say nothing).
    """,
    """md:
    What an 8x8 feature map costs a segmentation: if the masks are predicted per feature-map cell and
    upsampled, the best possible result is limited by the grid. We take a fine mask, reduce it to 8x8 by
    majority vote, upsample it back and measure the IoU that remains: an upper bound for a head that
    does not refine its output (real heads use skip connections or upsampling decoders).
    """,
    """
    yy, xx = np.mgrid[0:32, 0:32]
    fine = ((yy - 15) ** 2 + (xx - 17) ** 2 < 9 ** 2).astype(int)          # a disc
    for grid in [16, 8, 4]:
        f = 32 // grid
        coarse = fine.reshape(grid, f, grid, f).mean(axis=(1, 3)) >= 0.5
        back = np.kron(coarse, np.ones((f, f), int))
        print(f"{grid:2d}x{grid:<2d} grid: mask IoU {metrics.mask_iou(back, fine):.3f}")
    """,
]

# =====================================================================================
NOTEBOOKS["07_outlook"] = [
    """md:
    # Chapter 7 · Outlook and challenges (未来展望与挑战)

    Two of the article's themes, made measurable on a small scale: the compute (and energy) that
    accuracy costs, and model compression to make models cheaper to deploy.
    """,
    SETUP,
    DATA_NOTE,
    """md:
    ## 7.1 Trends (计算机视觉预训练模型的发展趋势): compute and energy against accuracy

    Training compute is roughly $3 \\times$ (forward MACs per image) $\\times$ (images seen) multiply-adds:
    the backward pass costs about twice the forward. Energy is measured here as CPU time times an
    *assumed* power draw; set `WATTS` to your machine's figure (the default is a guess for a laptop-class
    2-core CPU, not a measurement).
    """,
    """
    WATTS = 15.0
    split = C.load_data(train_per_class=40 if QUICK else 2000, test_per_class=20 if QUICK else 300)
    C.describe(split)
    entries = [("resnet8 (narrow)", lambda: C.cifar_resnet(8, widths=(8, 16, 32)), "resnet_sgd"),
               ("vit_cifar_tiny", lambda: tv.models.create("vit_cifar_tiny"), "vit_adamw")]
    if not QUICK:   # QUICK mode keeps to the two smallest models
        entries += [("resnet20", lambda: tv.models.create("resnet20"), "resnet_sgd"),
                    ("vit_cifar_small", lambda: tv.models.create("vit_cifar_small"), "vit_adamw")]
    budget = []
    trained = {}
    for name, build, recipe in entries:
        tv.manual_seed(0)
        model = build()
        macs = tv.summary(model, (1, 3, 32, 32), verbose=False).total_macs
        cpu0 = time.process_time()
        hist = C.fit(model, split, recipe, epochs=2 if QUICK else 8, batch_size=32 if QUICK else 128,
                     verbose=False, warmup_epochs=0 if QUICK else None)
        cpu = time.process_time() - cpu0
        batch = 32 if QUICK else 128
        seen = len(split.train) // batch * batch * len(hist)        # drop_last: whole batches per epoch
        flops = 2 * 3 * macs * seen                                   # 1 MAC = 2 floating-point operations
        budget.append((name, macs, flops, cpu, cpu * WATTS, hist[-1]["test_acc"]))
        trained[name] = model
        print(f"{name:18s} {macs / 1e6:6.2f} MMACs/img  {flops / 1e12:7.3f} TFLOP  cpu {cpu:6.1f} s  "
              f"~{cpu * WATTS / 3600:.4f} Wh  test acc {hist[-1]['test_acc']:.3f}")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, macs, flops, cpu, joules, acc in budget:
        axes[0].scatter(flops, acc); axes[0].annotate(name, (flops, acc), fontsize=8)
        axes[1].scatter(joules, acc); axes[1].annotate(name, (joules, acc), fontsize=8)
    axes[0].set_xscale("log"); axes[0].set_xlabel("training FLOPs"); axes[1].set_xlabel(f"energy (J, at {WATTS} W assumed)")
    for ax in axes: ax.set_ylabel("test accuracy"); ax.grid(alpha=0.3)
    plt.show()
    """,
    """md:
    ## 7.2 Challenges (预训练模型在计算机视觉中的挑战) and 7.3 research directions (未来研究方向)

    Deployment asks for smaller, cheaper models. Two compression methods, applied after training
    to the ResNet trained above (ResNet-20; the narrow ResNet-8 in QUICK mode), each with its accuracy
    cost on the test set:

    * **magnitude pruning**: set the fraction $s$ of convolution and linear weights with the smallest
      $|w|$ (over the whole network) to zero. Batch-norm parameters are kept;
    * **int8 post-training quantisation** of the weights: per output channel, $q = \\mathrm{round}(w / \\Delta)$
      clipped to $[-127, 127]$ with $\\Delta = \\max|w| / 127$, then $w \\approx q\\Delta$ (simulated: the
      arithmetic stays float32, the stored weights shrink 4x).
    """,
    """
    from tinyvision import metrics
    model = trained["resnet8 (narrow)" if QUICK else "resnet20"]
    original = {k: v.copy() for k, v in model.state_dict().items()}
    weights = [name for name, p in model.named_parameters() if p.ndim >= 2]     # conv and linear weights

    def accuracy_now():
        logits, targets = C.evaluate(model, split.test)
        return metrics.accuracy(logits, targets)

    def restore():
        model.load_state_dict(original)

    def replace_weights(new):
        # load_state_dict copies NumPy arrays onto the model's device (CPU or GPU)
        model.load_state_dict(new, strict=False)

    base = accuracy_now()
    sparsities = [0.0, 0.5, 0.8, 0.9] if QUICK else [0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95]
    dense = {n: tv.backend.to_numpy(original[n]) for n in weights}     # the float32 snapshot, on the host
    magnitudes = np.concatenate([np.abs(w).ravel() for w in dense.values()])
    pruned = []
    for s in sparsities:
        threshold = np.quantile(magnitudes, s) if s > 0 else -1
        replace_weights({n: np.where(np.abs(w) <= threshold, 0, w) for n, w in dense.items()})
        pruned.append(accuracy_now())
        print(f"sparsity {s:.2f}: test accuracy {pruned[-1]:.3f} (dense {base:.3f})")

    size_fp32 = sum(w.size * 4 for w in dense.values())
    dequantised = {}
    for n, w in dense.items():
        scale = np.abs(w.reshape(w.shape[0], -1)).max(axis=1) / 127.0
        scale = np.where(scale == 0, 1.0, scale).reshape((-1,) + (1,) * (w.ndim - 1))
        q = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
        dequantised[n] = q.astype(np.float32) * scale
    replace_weights(dequantised)
    int8_acc = accuracy_now()
    size_int8 = sum(w.size + w.shape[0] * 4 for w in dense.values())      # int8 values + one fp32 scale per row
    print(f"int8 weights: test accuracy {int8_acc:.3f} (float32 {base:.3f}); weight storage "
          f"{size_fp32 / 1024:.0f} KiB -> {size_int8 / 1024:.0f} KiB")
    restore()

    plt.plot(sparsities, pruned, marker="o", label="magnitude pruning")
    plt.axhline(int8_acc, color="tab:orange", ls="--", label="int8 weights")
    plt.axhline(base, color="gray", ls=":", label="float32")
    plt.xlabel("fraction of weights set to zero"); plt.ylabel("test accuracy"); plt.legend(); plt.grid(alpha=0.3); plt.show()
    """,
    """md:
    Pruning without fine-tuning costs little at moderate sparsity and collapses at high sparsity;
    pruning followed by a few epochs of retraining recovers much of the loss (not done here).
    Unstructured zeros only save time with sparse kernels; structured pruning (whole channels) and
    int8 arithmetic are what make CPUs faster in practice. The article's further directions
    (self-supervised pretraining, efficiency, robustness, interpretability) appear elsewhere in
    tinyvision: `tinyvision.transfer` (masked-autoencoder, rotation and patch-position pretext tasks)
    and the attention maps of chapter 2.
    """,
]

# =====================================================================================
NOTEBOOKS["appendix_b_math"] = [
    """md:
    # Appendix B · Mathematical foundations (深度学习数学基础)

    Linear algebra, the derivative and its numerical check, and the probability behind softmax and
    cross-entropy, each computed in NumPy and then with tinyvision.
    """,
    SETUP,
    """md:
    ## B.1 Linear algebra (线性代数基础)

    The matrix product $C = AB$, $C_{ij} = \\sum_k A_{ik}B_{kj}$, is what a linear layer and (after
    im2col) a convolution compute. `tv.matmul` also knows its gradients:
    $\\partial L/\\partial A = G B^T$ and $\\partial L/\\partial B = A^T G$ for upstream gradient $G$.
    """,
    """
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
    """,
    """md:
    ### Eigen-decomposition
    $Av = \\lambda v$: $A$ only stretches its eigenvectors. A diagonalisable matrix factors as
    $A = PDP^{-1}$, eigenvectors in the columns of $P$, eigenvalues on the diagonal of $D$; then
    $A^n = PD^nP^{-1}$. A symmetric matrix (a covariance) has orthogonal eigenvectors, $P^{-1} = P^T$.
    Application: the 3x3 covariance of the images' RGB values; its eigenvectors are the colour directions
    along which pixels vary most (the basis of AlexNet's "PCA colour" augmentation).
    """,
    """
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
    """,
    """md:
    ## B.2 Calculus (微积分基础)

    $$f'(x) = \\lim_{h \\to 0} \\frac{f(x + h) - f(x)}{h}$$
    With finite $h$ the forward difference has error $O(h)$, the central difference
    $\\frac{f(x+h) - f(x-h)}{2h}$ error $O(h^2)$; but as $h$ shrinks, rounding errors of size
    $\\epsilon_{mach}/h$ grow. The plot shows both effects for $f = \\sin$ at $x = 1$ in float64.
    """,
    """
    x0, exact = 1.0, np.cos(1.0)
    hs = np.logspace(-14, -1, 60)
    forward = np.abs((np.sin(x0 + hs) - np.sin(x0)) / hs - exact)
    central = np.abs((np.sin(x0 + hs) - np.sin(x0 - hs)) / (2 * hs) - exact)
    plt.loglog(hs, forward, label="forward difference, O(h)")
    plt.loglog(hs, central, label="central difference, O(h^2)")
    plt.xlabel("h"); plt.ylabel("|error|"); plt.legend(); plt.grid(alpha=0.3); plt.show()
    print(f"best central-difference step here: h = {hs[central.argmin()]:.1e}")
    """,
    """md:
    ### Numerical gradients and `tv.gradcheck`
    For a function of many inputs, nudge each one in turn. That is too slow for training (one pass per
    parameter) but the perfect test of a hand-written backward pass. By hand first, for
    $L = \\sum G \\odot \\tanh(xW)$; then `tv.gradcheck` on a convolution followed by GELU and batch norm,
    which does the same in float64 with a random upstream gradient $G$.
    """,
    """
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
    """,
    """md:
    ## B.3 Probability (概率论基础)

    Classical probability counts outcomes, $P(A) = N(A)/N(S)$. Conditional probability and Bayes' theorem:
    $$P(B|A) = \\frac{P(A \\cap B)}{P(A)},\\qquad P(A|B) = \\frac{P(B|A)P(A)}{P(B)}$$
    A classifier example: if a class makes up 1% of the images, and the model finds 95% of them
    (recall, $P(\\text{says }c\\,|\\,c)$) while wrongly flagging 5% of the others, how often is it right
    when it says $c$ (precision, $P(c\\,|\\,\\text{says }c)$)? Bayes answers; a simulation agrees.
    """,
    """
    faces = np.arange(1, 7)
    print("P(two dice sum to 7) by counting:", np.mean([(i + j) == 7 for i in faces for j in faces]), "= 6/36")

    prior, recall, false_alarm = 0.01, 0.95, 0.05
    p_says = recall * prior + false_alarm * (1 - prior)               # total probability
    print(f"Bayes: P(c | says c) = {recall * prior / p_says:.3f}")
    sim = np.random.default_rng(0)
    is_c = sim.random(1_000_000) < prior
    says = np.where(is_c, sim.random(is_c.size) < recall, sim.random(is_c.size) < false_alarm)
    print(f"simulation: {is_c[says].mean():.3f}")
    """,
    """md:
    ### Softmax and cross-entropy
    Softmax turns scores $z$ into a distribution, $p_k = e^{z_k} / \\sum_j e^{z_j}$ (computed after
    subtracting $\\max z$, which changes nothing mathematically but avoids overflow). Cross-entropy is the
    negative log-probability of the true class, $L = -\\log p_y$, and its gradient is simply
    $\\partial L / \\partial z = p - \\text{onehot}(y)$.
    """,
    """
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
    """,
]

# =====================================================================================
NOTEBOOKS["appendix_cef_code_listings"] = [
    """md:
    # Appendices C, E, F · The article's code listings, explained and corrected (附录 C / E / F)

    The article's appendices show PyTorch code for a ViT classifier, a ResNet, gradient clipping and
    batch normalisation (F repeats C with commentary). Several listings do not run or do something else
    than the text says. For each: what goes wrong, a corrected PyTorch version (shown, not executed:
    PyTorch is not a dependency here), and working tinyvision code, which is executed.
    """,
    SETUP,
    """md:
    ## C.1 / F.1 The ViT listing (ViT模型实现代码)

    The listing wraps `torchvision.models.vit_b_16(pretrained=True)` as an encoder, builds
    `nn.Linear(self.encoder.num_features, num_classes)` and classifies `x.mean([2, 3])`. Problems:

    1. torchvision's `VisionTransformer` has **no `num_features` attribute** (its width is `hidden_dim`,
       768), so the constructor raises `AttributeError`.
    2. `vit_b_16(...)` returns **class logits of shape (B, 1000)**, not a feature map: there are no axes
       2 and 3 to average, so `mean([2, 3])` fails; and a classifier stacked on ImageNet logits would
       discard the features the head was meant to read.
    3. `pretrained=True` is deprecated in torchvision (≥ 0.13) in favour of `weights=...`.

    A corrected PyTorch version replaces the pretrained head by the identity, so the encoder returns the
    class token's 768 features:

    ```python
    import torch.nn as nn
    from torchvision.models import vit_b_16, ViT_B_16_Weights

    class ViTClassifier(nn.Module):
        def __init__(self, num_classes):
            super().__init__()
            self.encoder = vit_b_16(weights=ViT_B_16_Weights.IMAGENET1K_V1)
            width = self.encoder.hidden_dim          # 768
            self.encoder.heads = nn.Identity()       # encoder(x) -> (B, 768), the class token
            self.classifier = nn.Linear(width, num_classes)

        def forward(self, x):                        # x: (B, 3, 224, 224)
            return self.classifier(self.encoder(x))
    ```

    In tinyvision a model built with `num_classes=0` returns pooled features and does have
    `num_features`; `tv.models.load_pretrained` maps torchvision's parameter names if you have the weights.
    """,
    """
    class ViTClassifier(tv.nn.Module):
        def __init__(self, num_classes, backbone="vit_cifar_tiny"):
            super().__init__()
            self.encoder = tv.models.create(backbone, num_classes=0)     # features, not logits
            self.classifier = tv.nn.Linear(self.encoder.num_features, num_classes)

        def forward(self, x):
            return self.classifier(self.encoder(x))                       # encoder(x): (B, D)

    model = ViTClassifier(num_classes=7)
    x = tv.randn(2, 3, 32, 32)
    print("features:", model.encoder(x).shape, " logits:", model(x).shape)
    big = tv.models.create("vit_base_patch16_224", num_classes=0)
    print("ViT-B/16 feature width:", big.num_features, f"({C.params_count(big):,} parameters without a head)")
    print("torchvision name -> tinyvision name:",
          tv.models.torchvision_vit_to_timm("encoder.layers.encoder_layer_0.self_attention.in_proj_weight"))
    """,
    """md:
    ## C.2 / F.2 The ResNet listing (ResNet模型实现代码)

    The class itself follows torchvision's ResNet, but it is instantiated as
    `ResNet(models.resnet18, [2, 2, 2, 2])`: **`models.resnet18` is a function that builds a whole
    network, not a block class**. `_make_layer` then reads `block.expansion` (a function has no such
    attribute: `AttributeError`), and would call `block(in_channels, out_channels, stride, downsample)`
    expecting one residual block. The listing also never defines a block class. The fix is to pass a
    block class such as torchvision's `BasicBlock`:

    ```python
    from torchvision.models.resnet import BasicBlock
    model = ResNet(BasicBlock, [2, 2, 2, 2])          # ResNet-18
    ```

    The same mistake in tinyvision, and the corrected call:
    """,
    """
    try:
        tv.models.ResNet(tv.models.resnet18, (2, 2, 2, 2))
    except Exception as err:
        print("passing a model constructor as the block:", type(err).__name__, err)

    mine = tv.models.ResNet(tv.models.BasicBlock, (2, 2, 2, 2), num_classes=1000)
    ref = tv.models.create("resnet18", num_classes=1000)
    print(f"ResNet(BasicBlock, (2, 2, 2, 2)): {C.params_count(mine):,} parameters; resnet18: {C.params_count(ref):,}")
    print("same parameter names:", list(mine.state_dict()) == list(ref.state_dict()))
    with tv.no_grad():
        print("forward on a 224x224 image:", mine.eval()(tv.randn(1, 3, 224, 224)).shape)
    """,
    """md:
    ## E.1 The gradient-clipping listing (梯度裁剪)

    The listing sets `clip_value = 1.0`, computes `torch.autograd.grad(model.loss, model.parameters(),
    create_graph=True)`, and then loops `param.grad.data = torch.clamp(param.grad.data, -clip_value, clip_value)`.
    Problems:

    1. `model.loss` is not an attribute of a PyTorch module; the loss is a tensor computed from the
       model's output.
    2. The gradients returned by `autograd.grad` are stored in `gradient` and **never used**;
       `autograd.grad` does not fill `param.grad`, which stays `None` (so `.data` fails) unless
       `backward()` ran before. `create_graph=True` builds a graph for second derivatives for nothing.
    3. Most importantly, `clamp` clips each **value** into [-1, 1], while the formula in §3.3 rescales the
       whole gradient when its **L2 norm** exceeds the threshold. Value clipping changes the gradient's
       direction; norm clipping only its length.

    Corrected PyTorch, matching the formula:

    ```python
    loss = criterion(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)   # the formula of section 3.3
    optimizer.step()
    ```

    tinyvision has both under PyTorch's names; the difference on a real gradient:
    """,
    """
    model = C.cifar_resnet(8, widths=(8, 16, 32))
    x = tv.randn(16, 3, 32, 32)
    y = tv.tensor(np.random.default_rng(0).integers(0, 10, 16))

    def gradient():
        model.zero_grad()
        tv.nn.functional.cross_entropy(model(x), y).backward()
        return np.concatenate([p.grad.numpy().ravel() for p in model.parameters()])

    g = gradient()
    max_norm = 0.5 * np.linalg.norm(g)
    tv.optim.clip_grad_norm_(model.parameters(), max_norm)
    g_norm = np.concatenate([p.grad.numpy().ravel() for p in model.parameters()])
    gradient()
    tv.optim.clip_grad_value_(model.parameters(), 0.1 * np.abs(g).max())
    g_value = np.concatenate([p.grad.numpy().ravel() for p in model.parameters()])
    formula = g * min(1.0, max_norm / np.linalg.norm(g))
    cos = lambda a, b: a @ b / np.linalg.norm(a) / np.linalg.norm(b)
    print(f"norm clipping:  |g| {np.linalg.norm(g):.4f} -> {np.linalg.norm(g_norm):.4f}, matches the formula: "
          f"{np.allclose(g_norm, formula, atol=1e-6)}, cos(g, clipped) = {cos(g, g_norm):.4f}")
    print(f"value clipping: |g| -> {np.linalg.norm(g_value):.4f}, cos(g, clipped) = {cos(g, g_value):.4f} (direction changed)")
    """,
    """md:
    ## E.2 The batch-normalisation listing (批量归一化)

    `nn.BatchNorm2d(num_features=64)` applied to `input` is correct, with two remarks: `input` shadows a
    Python built-in (use another name), and the layer behaves differently in training mode (batch
    statistics, running averages updated) and evaluation mode (running averages), so call
    `model.train()` / `model.eval()` accordingly. Chapter 3 derives the layer from its formula. The
    tinyvision equivalent:
    """,
    """
    batch_norm = tv.nn.BatchNorm2d(num_features=64)
    features = tv.randn(8, 64, 16, 16) * 3 + 1
    out = batch_norm.train()(features)
    print("training mode: per-channel mean ~0:", np.abs(out.numpy().mean(axis=(0, 2, 3))).max() < 1e-4,
          " std ~1:", np.allclose(out.numpy().std(axis=(0, 2, 3)), 1, atol=1e-3))
    print("running mean after one batch (momentum 0.1):", batch_norm.running_mean.numpy()[:4].round(3))
    """,
]
