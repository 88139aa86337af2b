"""The transfer experiment: does pretraining let a model learn a task from fewer labels, in
fewer epochs, with less overfitting?

Target task: CIFAR-10 classes 5-9 (dog, frog, horse, ship, truck), relabelled 0-4, with a
stratified fraction of their training labels (1%, 10%, ...). Every method is then trained
on the same labelled images with the same recipe and evaluated on the same test images:

- ``scratch``: random initialisation;
- ``ssl_<method>``: a backbone pretrained without labels on images of all ten classes
  (pretext task: rotation, position or mae), then fine-tuned;
- ``supervised``: a model trained with labels on classes 0-4 (airplane ... deer), its head
  replaced, fine-tuned on classes 5-9 (5 -> 5 class transfer).

Per run: the best and final test accuracy, the train-test accuracy gap at the end
(overfitting), the first epoch reaching the scratch run's best accuracy (speed), and wall
times. ``verdicts`` turns these into statements about the article's four claims.
"""
import dataclasses
import os
import time

from .. import backend, models
from ..fileio import write_json
from ..train import TrainConfig
from .finetune import FinetuneOptions, FinetuneTrainer, finetune_datasets
from .trainer import AdaptedTrainer, PretextTrainer

SOURCE_CLASSES = [0, 1, 2, 3, 4]
TARGET_CLASSES = [5, 6, 7, 8, 9]


@dataclasses.dataclass
class ModelPlan:
    """The budget of one architecture in the experiment.

    recipe: TrainConfig fields for every run (lr, batch size, schedule, ...).
    pretrain_per_class / pretrain_epochs: images per class and epochs of both pretrainings
    (supervised: classes 0-4 with labels; self-supervised: all ten classes, no labels).
    ssl_per_class: images per class for the self-supervised one alone (default
    pretrain_per_class).
    ssl_methods: pretext tasks to try. finetune_epochs: {label fraction: epochs}.
    """
    model: str
    recipe: dict
    ssl_methods: tuple
    pretrain_per_class: int
    pretrain_epochs: int
    finetune_epochs: dict
    backbone_lr_scale: float = 0.3
    pretrain_recipe: dict = dataclasses.field(default_factory=dict)
    ssl_per_class: int = None


def _cfg(plan, out, epochs, seed, data, test_per_class, **extra):
    fields = dict(plan.recipe, **extra)
    return TrainConfig(model=plan.model, data=data, out=out, epochs=epochs, seed=seed,
                       test_subset=test_per_class, prefetch=0, **fields)


def pretrain_supervised(plan, data, out, seed, test_per_class):
    """Train ``plan.model`` with labels on the source classes; returns (checkpoint, seconds,
    history, number of training images)."""
    cfg = _cfg(plan, out, plan.pretrain_epochs, seed, data, test_per_class, subset=plan.pretrain_per_class,
               **plan.pretrain_recipe)
    train_set, test_set = finetune_datasets(data, SOURCE_CLASSES, plan.pretrain_per_class, None, test_per_class, seed)
    backend.manual_seed(seed)
    model = models.create(plan.model, num_classes=len(SOURCE_CLASSES))
    t0 = time.perf_counter()
    trainer = AdaptedTrainer(cfg, model, train_set, test_set, progress=False)
    history = trainer.fit()
    return os.path.join(out, "last.tvz"), time.perf_counter() - t0, history, len(train_set)


def pretrain_self_supervised(plan, method, data, out, seed, test_per_class):
    """Pretext pretraining on images of all classes (labels unused); returns (backbone file,
    seconds, history, number of training images)."""
    # position prediction must not see the crop's padding (PretextTrainer explains)
    options = dict(plan.pretrain_recipe, **({"augment": "flip"} if method == "position" else {}))
    cfg = _cfg(plan, out, plan.pretrain_epochs, seed, data, test_per_class,
               subset=plan.ssl_per_class or plan.pretrain_per_class, label_smoothing=0.0, **options)
    t0 = time.perf_counter()
    trainer = PretextTrainer(cfg, method, progress=False)
    history = trainer.fit()
    path = trainer.export(os.path.join(out, "backbone.safetensors"))
    return path, time.perf_counter() - t0, history, len(trainer.train_set)


def finetune(plan, source, fraction, data, out, seed, test_per_class):
    """Train on the target task from ``source`` weights (None: from scratch); returns the
    history (one dict per epoch) and the seconds taken."""
    epochs = plan.finetune_epochs[fraction]
    cfg = _cfg(plan, out, epochs, seed, data, test_per_class)
    t0 = time.perf_counter()
    if source is None:
        train_set, test_set = finetune_datasets(data, TARGET_CLASSES, None, fraction, test_per_class, seed)
        backend.manual_seed(seed)
        model = models.create(plan.model, num_classes=len(TARGET_CLASSES))
        trainer = AdaptedTrainer(cfg, model, train_set, test_set, progress=False)
    else:
        options = FinetuneOptions(source=source, mode="full", backbone_lr_scale=plan.backbone_lr_scale,
                                  classes=TARGET_CLASSES, label_fraction=fraction)
        trainer = FinetuneTrainer(cfg, options, progress=False)
    history = trainer.fit()
    return history, time.perf_counter() - t0


def summarise(history, threshold=None):
    """Best/final test accuracy, final train-test gap, and the first epoch whose test
    accuracy reaches ``threshold`` (None if never)."""
    accs = [h["test_acc"] for h in history]
    reach = next((i + 1 for i, a in enumerate(accs) if threshold is not None and a >= threshold), None)
    return dict(best_acc=max(accs), final_acc=accs[-1], final_train_acc=history[-1]["train_acc"],
                gap=history[-1]["train_acc"] - accs[-1], epochs=len(accs), epochs_to_threshold=reach,
                curve=accs)


def run_experiment(plans, data, out, seed=0, test_per_class=100, log=print):
    """Run every plan (pretrainings, then scratch and transfer runs at each label fraction).
    Returns the results dict (also written to ``out/results.json`` after each run)."""
    os.makedirs(out, exist_ok=True)
    results = {"setup": {"source_classes": SOURCE_CLASSES, "target_classes": TARGET_CLASSES,
                         "test_images": test_per_class * len(TARGET_CLASSES), "seed": seed,
                         "plans": [dataclasses.asdict(p) for p in plans]},
               "pretraining": {}, "runs": []}
    save = lambda: write_json(os.path.join(out, "results.json"), results)  # noqa: E731
    for plan in plans:
        sources = {}
        path, secs, hist, n = pretrain_supervised(plan, data, os.path.join(out, plan.model, "pre_supervised"),
                                                  seed, test_per_class)
        sources["supervised"] = path
        results["pretraining"][f"{plan.model}/supervised"] = dict(seconds=secs, images=n,
                                                                  final_acc=hist[-1]["test_acc"])
        log(f"{plan.model}: supervised pretraining on classes 0-4: acc {hist[-1]['test_acc']:.3f}, {secs:.0f} s")
        for method in plan.ssl_methods:
            path, secs, hist, n = pretrain_self_supervised(plan, method, data,
                                                           os.path.join(out, plan.model, f"pre_{method}"), seed,
                                                           test_per_class)
            sources[f"ssl_{method}"] = path
            results["pretraining"][f"{plan.model}/ssl_{method}"] = dict(
                seconds=secs, images=n, final_pretext_acc=hist[-1]["test_acc"], final_pretext_loss=hist[-1]["test_loss"])
            log(f"{plan.model}: {method} pretraining: pretext acc {hist[-1]['test_acc']:.3f} "
                f"loss {hist[-1]['test_loss']:.3f}, {secs:.0f} s")
        save()
        for fraction in plan.finetune_epochs:
            scratch_hist, secs = finetune(plan, None, fraction, data,
                                          os.path.join(out, plan.model, f"f{fraction}", "scratch"), seed, test_per_class)
            threshold = max(h["test_acc"] for h in scratch_hist)
            rows = [dict(method="scratch", seconds=secs, **summarise(scratch_hist, threshold))]
            for name, source in sources.items():
                hist, secs = finetune(plan, source, fraction, data, os.path.join(out, plan.model, f"f{fraction}", name),
                                      seed, test_per_class)
                rows.append(dict(method=name, seconds=secs, **summarise(hist, threshold)))
            for row in rows:
                row.update(model=plan.model, label_fraction=fraction, threshold=threshold,
                           train_images=len(finetune_datasets(data, TARGET_CLASSES, None, fraction, None, seed)[0]))
                results["runs"].append(row)
                log(f"{plan.model} {fraction:.0%} {row['method']:>14}: best {row['best_acc']:.3f} final "
                    f"{row['final_acc']:.3f} gap {row['gap']:+.3f} reach@{row['epochs_to_threshold']} {row['seconds']:.0f} s")
            save()
    results["verdicts"] = verdicts(results["runs"])
    save()
    return results


def verdicts(runs):
    """The article's claims against the runs: for each (model, fraction), transfer methods
    are compared with scratch. A difference under 2 accuracy points (about one standard error
    on 500 test images) counts as no difference."""
    margin = 0.02
    groups = {}
    for r in runs:
        groups.setdefault((r["model"], r["label_fraction"]), {})[r["method"]] = r
    better, worse, faster, slower, less_overfit, more_overfit, evidence = 0, 0, 0, 0, 0, 0, []
    for (model, fraction), by in groups.items():
        base = by["scratch"]
        for name, r in by.items():
            if name == "scratch":
                continue
            d = r["best_acc"] - base["best_acc"]
            better += d > margin
            worse += d < -margin
            reach = r["epochs_to_threshold"]
            faster += reach is not None and reach < base["epochs_to_threshold"]
            slower += reach is None or reach > base["epochs_to_threshold"]
            g = r["gap"] - base["gap"]
            less_overfit += g < -margin
            more_overfit += g > margin
            evidence.append(f"{model} {fraction:.0%} {name}: acc {d:+.3f} vs scratch, gap {g:+.3f}, "
                            f"reaches scratch's best at epoch {reach} (scratch {base['epochs_to_threshold']})")
    n = max(1, sum(len(by) - 1 for by in groups.values()))

    def verdict(pos, neg):
        if pos > n / 2 and neg == 0:
            return "confirmed"
        if neg > n / 2 and pos == 0:
            return "refuted"
        return "inconclusive"

    return {
        "reuse of data": f"{verdict(better, worse)}: {better} of {n} transfer runs beat scratch by more than "
                         f"{margin:.0%} using data that is not the target's labels (unlabelled images or other classes)",
        "better performance": f"{verdict(better, worse)}: {better} better, {worse} worse, {n - better - worse} within {margin:.0%}",
        "less overfitting": f"{verdict(less_overfit, more_overfit)}: smaller train-test gap in {less_overfit}, larger in {more_overfit} of {n}",
        "faster training": f"{verdict(faster, slower)}: reached scratch's best accuracy sooner in {faster}, later or never in {slower} of {n}",
        "evidence": evidence,
    }


def markdown_table(results):
    """The runs as a markdown table."""
    lines = ["| model | labels | train images | method | best acc | final acc | train-test gap | epochs to scratch's best | time (s) |",
             "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in results["runs"]:
        reach = r["epochs_to_threshold"]
        lines.append(f"| {r['model']} | {r['label_fraction']:.0%} | {r['train_images']} | {r['method']} | "
                     f"{r['best_acc']:.3f} | {r['final_acc']:.3f} | {r['gap']:+.3f} | "
                     f"{reach if reach is not None else 'never'} / {r['epochs']} | {r['seconds']:.0f} |")
    return "\n".join(lines)
