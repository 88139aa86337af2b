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
