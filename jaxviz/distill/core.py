"""Dataset distillation by differentiating through unrolled training (Wang et al. 2018, Algorithm 1).

A distilled set is ``steps`` batches of ``n`` synthetic images, each with a label (a fixed class, or
learned label logits as in Sucholutsky & Schonlau 2021), plus one learned step size per inner step and
epoch. An inner run starts from initial weights ``theta_0`` and takes ``epochs * steps`` plain gradient
steps on mean softmax cross-entropy; inner step ``k`` uses batch ``k % steps`` and step size
``softplus(raw_lrs[k])``. The outer loss is the cross-entropy of the trained network on a real
minibatch; Adam updates the images, the step sizes (and the label logits) by its gradient through the
whole unrolled run.

In JAX the unrolled run is a :func:`jax.lax.scan` whose body is wrapped in :func:`jax.checkpoint`
(memory grows with the parameters per step, not with every activation of every step), the
distribution of initialisations is a ``vmap`` over ``jax.vmap(model.init)(keys)`` sampled afresh at each
outer iteration, and the outer loop is :func:`jaxviz.train.run_loop` (orbax checkpoints, resume, NaN
guard).

References:
  Wang, Zhu, Torralba, Efros. "Dataset Distillation", arXiv:1811.10959 (2018).
  Sucholutsky, Schonlau. "Soft-Label Dataset Distillation and Text Dataset Distillation", IJCNN 2021.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxviz.data import Dataset
from jaxviz.distill.memory import check_fits
from jaxviz.distill.pools import check_attack, pool_params
from jaxviz.errors import JaxvizError, ShapeError, TargetError
from jaxviz.models import ops
from jaxviz.models.contract import Model
from jaxviz.train import Checkpointer, cache_dir, run_id, run_loop

INITS = ("fixed", "random", "pool")
EVAL_INITS = 4  # fresh initialisations behind the test accuracy shown during a random-init run


def over_networks(fn: Callable[..., Any], params: Any, *args: Any) -> Any:
    """``fn(p, *args)`` for each network ``p`` of a stacked ``params`` tree (leading axis), stacked back.

    Vmapped on accelerators; a loop (``lax.map``) on CPU, where XLA runs a convolution with a batch of
    kernels as a grouped convolution: looping was 1.4-2.2x faster there for LeNet and the ConvNet, both
    for forward passes on 1,000 images and for 20 full-batch SGD steps (2-core Xeon, interleaved runs).
    """
    if jax.default_backend() == "cpu":
        return jax.lax.map(lambda p: fn(p, *args), params)
    return jax.vmap(fn, in_axes=(0,) + (None,) * len(args))(params, *args)


class DistillConfig(NamedTuple):
    """The recipe of one distillation run.

    Attributes:
      images_per_class: distilled images per class in each step (hard labels).
      num_images: with ``soft_labels``, the number of distilled images per step (may be fewer than the
        classes); ``None`` = ``images_per_class * classes``.
      steps: inner gradient steps per epoch, each on its own batch of distilled images.
      epochs: passes over the distilled batches; one learned step size per step and epoch.
      init: ``"fixed"`` (the model's own parameters), ``"random"`` (fresh ``model.init`` draws) or
        ``"pool"`` (networks drawn from a pool of pretrained ones, ``distill(..., pool=...)``; Wang et
        al.'s adaptation and poisoning settings).
      num_inits: initialisations sampled per outer iteration (``init="random"`` or ``"pool"``); see ``inits_per_pass``.
      inits_per_pass: vmap this many initialisations at a time and loop (``lax.map``) over the
        groups; ``None``: all of them at once on accelerators and when sharded over a mesh, one at a
        time on CPU (there a vmapped convolution over a batch of kernels runs grouped: 4.3x slower
        per initialisation at 4 inits for LeNet, ``## distill`` of ``benchmarks/RESULTS.md``).
      soft_labels: learn label logits per distilled image (SLDD).
      iterations: outer Adam iterations. The defaults (Adam at 0.01 on the images and 0.02 on the raw
        step sizes, beta1 0.5, real batch 256) take LeNet from its fixed initialisation on MNIST-5k
        with 10 images, 1 step x 3 epochs, to 86% test accuracy in 8000 iterations (about 12 minutes
        on one CPU core), 88.9% in 20,000 and 91.7% in 30,000 (46 minutes); 3000 give about 80%. Wang et al. train for
        about 23,000 iterations of 1,024 real images.
      batch_size: real images per outer iteration.
      lr: Adam learning rate for images and label logits (cosine decay to a tenth), in pixel units.
      step_size_lr: Adam learning rate for the raw (pre-softplus) step sizes (cosine decay to a tenth).
      beta1: Adam's first-moment decay for both (0.5 as in Wang et al.'s reference code: a short
        memory of the noisy minibatch gradients).
      initial_step_size: the inner step size every step starts from (through softplus).
      label_scale: soft labels start as ``label_scale * one_hot(class)`` logits.
      learn_images: ``False`` keeps the starting images and learns only step sizes (and labels): the
        baselines' setting.
      remat: wrap each inner step in :func:`jax.checkpoint`.
      unroll: inner steps unrolled per iteration of the compiled inner loop (:func:`inner_train`); the
        default unrolls the paper's 1 step x 3 epochs completely, a little faster per outer iteration
        on CPU than a rolled loop (LeNet, MNIST-5k, ``## distill`` of ``benchmarks/RESULTS.md``); 1
        keeps compile time and memory lowest.
      seed: images, initialisations and minibatches all derive from it.
      checkpoint_seconds: wall time between orbax checkpoints (not part of the run's identity).
    """

    images_per_class: int = 1
    num_images: int | None = None
    steps: int = 1
    epochs: int = 3
    init: str = "fixed"
    num_inits: int = 4
    inits_per_pass: int | None = None
    soft_labels: bool = False
    iterations: int = 8000
    batch_size: int = 256
    lr: float = 0.01
    step_size_lr: float = 0.02
    beta1: float = 0.5
    initial_step_size: float = 0.02
    label_scale: float = 3.0
    learn_images: bool = True
    remat: bool = True
    unroll: int = 3
    seed: int = 0
    checkpoint_seconds: float = 30.0


class Distilled(NamedTuple):
    """What Adam learns: images ``(steps, n, H, W, C)``, labels and raw (pre-softplus) step sizes."""

    x: jax.Array
    labels: jax.Array  # (steps, n) int classes, or (steps, n, classes) logits with soft labels
    raw_lrs: jax.Array  # (epochs * steps,)

    @property
    def lrs(self) -> jax.Array:
        """The step sizes in the order the inner steps apply them."""
        return jax.nn.softplus(self.raw_lrs)

    def targets(self, num_classes: int) -> jax.Array:
        """Target distributions ``(steps, n, classes)``: one-hot classes or ``softmax(label logits)``."""
        if jnp.issubdtype(self.labels.dtype, jnp.integer):
            return jax.nn.one_hot(self.labels, num_classes)
        return jax.nn.softmax(self.labels, axis=-1)


class DistillResult(NamedTuple):
    distilled: Distilled
    init_params: Any  # the fixed initialisation (``init="fixed"``), else None
    config: DistillConfig
    model: str
    dataset: str
    history: dict[str, np.ndarray]  # outer loss and real-minibatch accuracy per iteration run
    seconds: float
    resumed_from: int | None
    checkpoint_dir: str | None
    pool: Any = None  # ``init="pool"``: the pretrained networks distilled on, stacked on a leading axis
    test_history: dict[str, np.ndarray] | None = None  # {"step", "test_accuracy"} every ``eval_every`` iterations (resumed runs included)
    selected: dict[str, float] | None = None  # with ``validation=``: {"iteration", "validation_accuracy"} of the set returned


def soft_cross_entropy(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy against target distributions."""
    return optax.softmax_cross_entropy(logits, targets).mean()


def inner_train(model: Model, params: Any, x: jax.Array, targets: jax.Array, lrs: jax.Array, *, remat: bool = True,
                unroll: int = 1) -> Any:
    """Parameters after the unrolled inner run: ``len(lrs)`` plain gradient steps from ``params``.

    Step ``k`` uses ``x[k % steps]`` with targets ``targets[k % steps]`` and step size ``lrs[k]``.
    To differentiate through the run, trace the gradient under
    :func:`jaxviz.models.ops.reverse_only`, as :func:`make_outer_step` does (on CPU the
    convolutions of a gradient of gradients are otherwise several times slower in loops).

    Args:
      model: a classifier; only ``model.apply(params, x)`` is used.
      params: initial trainable parameters.
      x: ``(steps, n, H, W, C)`` distilled images.
      targets: ``(steps, n, classes)`` target distributions.
      lrs: ``(epochs * steps,)`` positive step sizes.
      remat: recompute each step's activations in the backward pass (:func:`jax.checkpoint`).
      unroll: inner steps per iteration of the compiled loop (``lax.scan``'s ``unroll``); unrolling
        a short run lets XLA fuse across steps and skips the loop's overhead.
    """
    steps = x.shape[0]

    def step(p, k_lr):
        k, lr = k_lr
        i = k % steps
        g = jax.grad(lambda q: soft_cross_entropy(model.apply(q, x[i]), targets[i]))(p)
        return jax.tree.map(lambda a, b: a - lr * b, p, g), None

    body = jax.checkpoint(step) if remat else step
    params, _ = jax.lax.scan(body, params, (jnp.arange(lrs.shape[0]), lrs), unroll=max(1, min(unroll, lrs.shape[0])))
    return params


def check_config(config: DistillConfig) -> None:
    """Raise :class:`~jaxviz.errors.JaxvizError` for a config no run can use (before any data is loaded)."""
    if config.init not in INITS:
        raise JaxvizError(f"unknown init {config.init!r}; use one of {', '.join(INITS)}.")
    for name in ("steps", "epochs", "iterations", "batch_size", "num_inits", "unroll"):
        if getattr(config, name) < 1:
            raise JaxvizError(f"{name} must be at least 1; got {getattr(config, name)}.")
    if not config.initial_step_size > 0:
        raise JaxvizError(f"initial_step_size must be positive (a step size through softplus); got {config.initial_step_size}.")
    if not 0.0 <= config.beta1 < 1.0:
        raise JaxvizError(f"beta1 must be in [0, 1); got {config.beta1}.")
    if config.inits_per_pass is not None and not 1 <= config.inits_per_pass <= config.num_inits:
        raise JaxvizError(f"inits_per_pass must be between 1 and num_inits ({config.num_inits}), or None; got {config.inits_per_pass}.")
    if config.soft_labels and config.num_images is not None:
        if config.num_images < 1:
            raise JaxvizError(f"num_images must be at least 1; got {config.num_images}.")
    elif config.images_per_class < 1:
        raise JaxvizError(f"images_per_class must be at least 1; got {config.images_per_class}. "
                          "With soft labels, num_images may be fewer than the classes.")


def pool_indices(config: DistillConfig, pool_size: int, iteration: jax.Array) -> jax.Array:
    """The ``num_inits`` distinct pool networks outer iteration ``iteration`` trains, from ``fold_in(key(seed + 1), iteration)``."""
    key = jax.random.fold_in(jax.random.key(config.seed + 1), iteration)
    return jax.random.choice(key, pool_size, (config.num_inits,), replace=False)


def _check(model: Model, data: Dataset, config: DistillConfig) -> int:
    check_config(config)
    model.require_head("dataset distillation")
    if model.init is None and config.init == "random":
        raise ShapeError(f"{model.name} has no init function, so random initialisations cannot be sampled; use init='fixed' "
                         "or a zoo model (lenet, convnet).")
    counts = class_counts(model, data)
    if config.batch_size > counts.sum():
        raise ShapeError(f"batch_size {config.batch_size} exceeds the {counts.sum()} training examples of {data.name}.")
    return model.num_classes


def class_counts(model: Model, data: Dataset) -> np.ndarray:
    """Training images per class, after checking ``data`` fits ``model``'s input and has every one of its classes."""
    k = model.num_classes
    if tuple(data.x_train.shape[1:]) != tuple(model.input_shape):
        raise ShapeError(f"{model.name} expects inputs {model.input_shape}; {data.name} has {data.x_train.shape[1:]}.")
    y = np.asarray(data.y_train)
    if y.min() < 0 or y.max() >= k:
        raise TargetError(f"{data.name} has labels outside 0..{k - 1} for {model.name} with {k} classes.")
    counts = np.bincount(y, minlength=k)
    missing = np.flatnonzero(counts == 0).tolist()
    if missing:
        raise JaxvizError(f"{data.name} has no training example of class(es) {missing}; every class needs real images to "
                          "distil against. Use a model with fewer classes or a complete data set.")
    return counts


def initial_labels(config: DistillConfig, num_classes: int) -> jax.Array:
    """Labels of the distilled images: classes ``(steps, n)``, or scaled one-hot logits with soft labels."""
    n = config.num_images if (config.soft_labels and config.num_images is not None) else config.images_per_class * num_classes
    classes = jnp.tile(jnp.arange(n) % num_classes, (config.steps, 1))
    if config.soft_labels:
        return config.label_scale * jax.nn.one_hot(classes, num_classes)
    return classes.astype(jnp.int32)


def initial_distilled(config: DistillConfig, data: Dataset, num_classes: int, images: Any = None, labels: Any = None) -> Distilled:
    """Starting point: images drawn from ``N(mean, std)`` of the data (or ``images``), step sizes at the initial value.

    ``labels`` replaces the hard labels of :func:`initial_labels` (same shape, classes in range), e.g.
    real images of one class all labelled as another (the poisoning baseline).
    """
    default = initial_labels(config, num_classes)
    if labels is None:
        labels = default
    else:
        labels = np.asarray(labels)
        if config.soft_labels or labels.shape != default.shape or not np.issubdtype(labels.dtype, np.integer):
            raise ShapeError(f"labels must be {default.shape} (steps, n) int classes with hard labels; got {labels.shape} {labels.dtype}.")
        if labels.min() < 0 or labels.max() >= num_classes:
            raise TargetError(f"labels must be classes in 0..{num_classes - 1}; got {labels.min()}..{labels.max()}.")
        labels = jnp.asarray(labels, jnp.int32)
    shape = (*labels.shape[:2], *data.x_train.shape[1:])
    if images is None:
        x = float(data.x_train.mean()) + float(data.x_train.std()) * jax.random.normal(jax.random.key(config.seed), shape)
    else:
        x = jnp.asarray(images, jnp.float32)
        if x.shape != shape:
            raise ShapeError(f"starting images must have shape {shape} (steps, n, H, W, C); got {x.shape}.")
    raw = float(np.log(np.expm1(config.initial_step_size)))
    return Distilled(x, labels, jnp.full((config.epochs * config.steps,), raw, jnp.float32))


def make_optimizer(config: DistillConfig) -> optax.GradientTransformation:
    """Adam on the images (and label logits) and, with its own learning rate, on the raw step sizes."""
    def adam(lr):
        return optax.adam(optax.cosine_decay_schedule(lr, config.iterations, alpha=0.1), b1=config.beta1)

    groups = Distilled("data", "data" if config.soft_labels else None, "lrs")
    return optax.multi_transform({"data": adam(config.lr), "lrs": adam(config.step_size_lr)}, groups)


def make_outer_step(model: Model, config: DistillConfig, init_params: Any, optimizer: optax.GradientTransformation,
                    mesh: jax.sharding.Mesh | None = None):
    """``step((distilled, opt_state), (x_real, y_real, i)) -> (new, {"loss", "acc"})`` for :func:`run_loop`.

    ``init="random"`` draws ``num_inits`` fresh initialisations from ``fold_in(key(seed + 1), i)`` and
    vmaps the unrolled run over them; ``"pool"`` takes the networks :func:`pool_indices` names from
    ``init_params``, a pool stacked on a leading axis; ``"fixed"`` uses ``init_params``. With a ``mesh``, the batch of
    initialisations is split over its first axis (one slice of inits per device; the distilled set
    and the real batch are replicated), which gives the same result as one device.
    """
    k = model.num_classes
    pool_size = jax.tree.leaves(init_params)[0].shape[0] if config.init == "pool" else 0
    if mesh is not None:
        size = mesh.shape[mesh.axis_names[0]]
        if config.init != "random" or config.num_inits % size or config.inits_per_pass is not None:
            raise JaxvizError(f"sharding splits the random initialisations over {size} devices: use init='random' with "
                              f"num_inits a multiple of {size} and inits_per_pass None (got init={config.init!r}, num_inits={config.num_inits}, "
                              f"inits_per_pass={config.inits_per_pass}).")
        auto = jax.sharding.Mesh(mesh.devices, mesh.axis_names)  # a sharding constraint needs automatic axes
        spread = jax.sharding.NamedSharding(auto, jax.sharding.PartitionSpec(mesh.axis_names[0]))

    def per_init(d: Distilled, theta0, xr, yr):
        x = d.x if config.learn_images else jax.lax.stop_gradient(d.x)
        theta = inner_train(model, theta0, x, d.targets(k), d.lrs, remat=config.remat, unroll=config.unroll)
        logits = model.apply(theta, xr)
        return optax.softmax_cross_entropy_with_integer_labels(logits, yr).mean(), jnp.mean(jnp.argmax(logits, -1) == yr)

    def step(carry, batch):
        d, opt_state = carry
        xr, yr, i = batch
        if config.init == "random":
            inits = jax.vmap(model.init)(jax.random.split(jax.random.fold_in(jax.random.key(config.seed + 1), i), config.num_inits))
            if mesh is not None:
                inits = jax.lax.with_sharding_constraint(inits, spread)
        elif config.init == "pool":
            idx = pool_indices(config, pool_size, i)
            inits = jax.tree.map(lambda a: a[idx], init_params)

        def loss_fn(learned):
            full = learned._replace(labels=d.labels) if learned.labels is None else learned
            if config.init == "fixed":  # one network: unbatched (XLA's CPU layouts of a batch of one were slower)
                return per_init(full, init_params, xr, yr)
            if mesh is not None:
                losses, accs = jax.vmap(per_init, in_axes=(None, 0, None, None))(full, inits, xr, yr)
            elif config.inits_per_pass is None:  # looped on CPU, vmapped elsewhere
                losses, accs = over_networks(lambda t: per_init(full, t, xr, yr), inits)
            else:
                losses, accs = jax.lax.map(lambda t: per_init(full, t, xr, yr), inits, batch_size=config.inits_per_pass)
            return losses.mean(), accs.mean()

        learned = _opt_target(d)
        with ops.reverse_only():  # gradients of the inner gradients in XLA's canonical layout
            (loss, acc), g = jax.value_and_grad(loss_fn, has_aux=True)(learned)
        updates, opt_state = optimizer.update(g, opt_state, learned)
        new = optax.apply_updates(learned, updates)
        return (new._replace(labels=d.labels) if new.labels is None else new, opt_state), {"loss": loss, "acc": acc}

    return step


def keep_best(step, model: Model, config: DistillConfig, init_params: Any, validation: tuple[Any, Any], every: int):
    """Wrap an outer ``step`` so that its carry also keeps the set with the best validation accuracy so far.

    The carry becomes ``(distilled, opt_state, best, best_accuracy, best_iteration)``. After every
    ``every``-th iteration and the last, the new set's accuracy on ``validation`` under protocol (a)
    (the fixed initialisation, or ``EVAL_INITS`` fresh ones drawn once from ``key(seed + 2)``) is
    measured inside the compiled step and the set replaces ``best`` when it is strictly better: early
    stopping on held-out training data, checkpointed with the rest of the carry. Best accuracy starts at -1.
    """
    from jaxviz.distill.evaluate import _correct, _trained  # protocol (a), as evaluate computes it; evaluate builds on this module

    xv, yv = jnp.asarray(validation[0]), jnp.asarray(validation[1])
    if config.init == "fixed":
        inits = jax.tree.map(lambda a: a[None], init_params)
    else:
        inits = jax.vmap(model.init)(jax.random.split(jax.random.key(config.seed + 2), EVAL_INITS))

    def accuracy(d: Distilled) -> jax.Array:
        return jnp.mean(_correct(model, _trained(model, inits, d), xv, yv)) / len(yv)

    def wrapped(carry, batch):
        d, opt_state, best, best_acc, best_at = carry
        (d, opt_state), metrics = step((d, opt_state), batch)
        i = batch[2]

        def measure(kept):
            best, best_acc, best_at = kept
            acc = accuracy(d)
            better = acc > best_acc
            best = jax.tree.map(lambda new, old: jnp.where(better, new, old), d, best)
            return best, jnp.where(better, acc, best_acc), jnp.where(better, i + 1, best_at)

        due = ((i + 1) % every == 0) | (i + 1 == config.iterations)
        best, best_acc, best_at = jax.lax.cond(due, measure, lambda kept: kept, (best, best_acc, best_at))
        return (d, opt_state, best, best_acc, best_at), {**metrics, "best_validation": best_acc}

    return wrapped


def _opt_target(d: Distilled) -> Distilled:
    """The leaves Adam updates: integer labels are constants, not parameters."""
    return d._replace(labels=None) if jnp.issubdtype(d.labels.dtype, jnp.integer) else d


def _fingerprint(params: Any) -> str:
    h = hashlib.sha256()
    for leaf in jax.tree.leaves(params):
        h.update(np.asarray(leaf).tobytes())
    return h.hexdigest()[:12]


def distill(
    model: Model,
    data: Dataset,
    config: DistillConfig = DistillConfig(),
    *,
    images: Any = None,
    cache: str | os.PathLike | None = None,
    checkpoint: bool = True,
    progress: bool = True,
    stop_after_steps: int | None = None,
    mesh: jax.sharding.Mesh | None = None,
    test: tuple[Any, Any] | None = None,
    eval_every: int = 500,
    pool: Any = None,
    attack: tuple[int, int] | None = None,
    labels: Any = None,
    validation: tuple[Any, Any] | None = None,
) -> DistillResult:
    """Distil ``data`` into ``config.steps`` batches of synthetic images for ``model`` (Wang et al. 2018).

    Args:
      model: a classifier with ``apply(params, x)``; for ``init="fixed"`` its own ``params`` are the
        fixed initialisation, for ``"random"`` its ``init`` samples them.
      data: the real training images (``x_train``, ``y_train``) the outer loss is measured on.
      config: see :class:`DistillConfig`.
      images: optional starting images ``(steps, n, H, W, C)`` (e.g. real ones for a baseline with
        ``learn_images=False``); default Gaussian noise with the data's mean and std.
      cache: checkpoints go to ``<cache>/checkpoints/distill-<model>-<data>-<hash>``; a later call with
        the same model, data, config and fixed initialisation resumes there.
      checkpoint: write orbax checkpoints (``False``: none, for tests and short runs).
      stop_after_steps: end early at this outer iteration (checkpointed), e.g. to test resuming.
      mesh: shard the random initialisations over this mesh's first axis (see :func:`make_outer_step`);
        under ``jax.distributed`` a mesh over every host's devices spreads them across hosts.
      test: held-out ``(x, y)``: every ``eval_every`` iterations and at the end, the current set's
        accuracy under protocol (a) (:func:`~jaxviz.distill.evaluate`; the mean over
        ``EVAL_INITS`` fresh initialisations with ``init="random"``) is shown on the progress bar
        and kept in ``DistillResult.test_history``.
      pool: with ``init="pool"``, pretrained networks (a :class:`~jaxviz.distill.Pool` or parameters
        stacked on a leading axis); each iteration trains ``num_inits`` of them (:func:`pool_indices`).
      attack: ``(a, b)``: the outer loss relabels the real images of class ``a`` as ``b`` (all other
        classes keep theirs), so the learned steps make the networks classify ``a`` as ``b``
        (Wang et al.'s malicious data poisoning, Sec. 3.3).
      labels: ``(steps, n)`` int classes replacing the default labels (see :func:`initial_distilled`).
      validation: held-out training ``(x, y)`` (e.g. from :func:`jaxviz.data.split_validation`): the
        set with the best accuracy on it, measured every ``eval_every`` iterations and at the end, is
        returned instead of the last one (:func:`keep_best`; ``DistillResult.selected`` says which).

    Returns:
      a :class:`DistillResult`.

    Raises:
      MemoryLimitError: XLA's estimate of one outer step exceeds the free memory (checked before the
        first iteration; the compilation is reused by the run).
      TrainingDivergedError: the outer loss became NaN or infinite (the iteration is named; the last
        good checkpoint is kept).
    """
    k = _check(model, data, config)
    if (pool is not None) != (config.init == "pool"):
        raise JaxvizError("init='pool' needs pool=... (pretrained networks, e.g. jaxviz.distill.pretrained_pool) and a pool "
                          f"needs init='pool'; got init={config.init!r} and pool={'given' if pool is not None else 'None'}.")
    if pool is not None:
        pool = jax.tree.map(jnp.asarray, pool_params(model, pool, at_least=config.num_inits))
    if attack is not None:
        attack = check_attack(attack, k)
    d0 = initial_distilled(config, data, k, images, labels)
    init_params = model.params if config.init == "fixed" else None
    optimizer = make_optimizer(config)
    opt_state = optimizer.init(_opt_target(d0))
    x_train, y_train = np.asarray(data.x_train), np.asarray(data.y_train)
    if attack is not None:
        y_train = np.where(y_train == attack[0], attack[1], y_train).astype(y_train.dtype)
    n = len(y_train)

    def batches(i):
        idx = np.random.default_rng([config.seed, i]).choice(n, config.batch_size, replace=False)
        return x_train[idx], y_train[idx], np.int32(i)

    step = make_outer_step(model, config, pool if pool is not None else init_params, optimizer, mesh)
    state = (d0, opt_state)
    if validation is not None:
        if config.init == "pool":
            raise JaxvizError("validation= keeps the best set for a fixed or random initialisation; a pool's sets are measured on "
                              "held-out networks (jaxviz.distill.evaluate_pool) after the run.")
        if eval_every < 1:
            raise JaxvizError(f"validation= needs eval_every >= 1 (iterations between measurements); got {eval_every}.")
        step = keep_best(step, model, config, init_params, validation, eval_every)
        state = (d0, opt_state, d0, jnp.float32(-1), jnp.int32(0))
    check_fits(step, state, batches(0), mesh=mesh, config=config, what=f"distilling {data.name} for {model.name}")

    recipe = {f: v for f, v in config._asdict().items() if f != "checkpoint_seconds"}
    identity = dict(model=model.name, input_shape=list(model.input_shape), dataset=data.name, config=recipe,
                    init=_fingerprint(init_params) if init_params is not None else None,
                    images=_fingerprint(d0.x) if images is not None else None)
    for name, value in (("pool", pool), ("attack", attack), ("labels", labels), ("validation", validation)):  # only when given:
        if value is not None:  # other runs keep their ids
            identity[name] = _fingerprint(value) if name in ("pool", "validation") else np.asarray(value).tolist()
    if validation is not None:
        identity["eval_every"] = eval_every
    ckpt_dir = cache_dir(cache) / "checkpoints" / f"distill-{model.name}-{data.name}-{run_id(**identity)}" if checkpoint else None
    ckpt = Checkpointer(ckpt_dir) if checkpoint else None
    watch = None
    if test is not None:
        from jaxviz.distill.evaluate import evaluate  # evaluate builds on this module

        if config.init == "pool":
            raise JaxvizError("test= measures sets distilled from a fixed or random initialisation; a pool's sets are measured on "
                              "held-out networks (jaxviz.distill.evaluate_pool) after the run.")

        def watch(i, state):
            now = DistillResult(state[0], init_params, config, model.name, data.name, {}, 0.0, None, None)
            return {"test_accuracy": evaluate(model, now, *test, num_inits=EVAL_INITS).mean}
    try:
        run = run_loop(step, state, batches, steps=config.iterations, checkpointer=ckpt, meta=identity,
                       expect=dict(model=model.name, dataset=data.name), desc=f"distill {data.name} for {model.name}",
                       progress=progress, checkpoint_seconds=config.checkpoint_seconds, stop_after_steps=stop_after_steps,
                       monitor=watch, monitor_every=eval_every)
    finally:
        if ckpt is not None:
            ckpt.close()
    d, selected = run.state[0], None
    if validation is not None:
        _, _, best, best_acc, best_at = run.state
        if float(best_acc) >= 0:  # else stopped before the first measurement: the last set
            d, selected = best, {"iteration": int(best_at), "validation_accuracy": float(best_acc)}
    return DistillResult(d, init_params, config, model.name, data.name, run.history, run.seconds, run.resumed_from,
                         None if ckpt_dir is None else str(ckpt_dir), pool=pool, test_history=run.monitored, selected=selected)
