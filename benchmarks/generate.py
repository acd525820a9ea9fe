"""Feed-forward generation benchmark: Johnson et al.'s transformer network, jaxviz against the same
network in plain PyTorch with the same weights, in one process.

* feed-forward: one image at 256, 512 and 1024 px (quick: 128 and 256) through the transformer
  network (width 32, 5 residual blocks, instance norm, resize-convolution: the defaults of
  :class:`jaxviz.generate.fast_style.FastStyleConfig`); jaxviz's compiled ``stylise`` pass against
  ``torch.inference_mode``.
* train step: a batch of 4 crops of 256 px (quick: 2 of 128): transformer forward, SqueezeNet 1.1
  perceptual losses (normalised Gram style at conv1, fire2, fire3, fire5, fire7, content at fire5,
  total variation, as :class:`jaxviz.style.Objective`), backward and Adam; jaxviz's compiled step
  against the same losses written in torch on the peer SqueezeNet. Both sides' outputs and first
  losses are checked equal before timing.

Variants are timed in alternating rounds so machine load falls on both; compile apart from steady state.

Usage::

    python benchmarks/generate.py            # results/generate.json and section "## generate" of RESULTS.md
    python benchmarks/generate.py --quick    # small sizes, results/generate-quick.json only
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from flax import nnx  # noqa: E402

from benchmarks.common import jax_row, parser, settings, time_group, torch_row, write_results  # noqa: E402
from benchmarks.peers.torch_models import nhwc_to_nchw, squeezenet_from_jaxviz, transformer_from_jaxviz  # noqa: E402
from jaxviz.data import photo, resize, to_rgb  # noqa: E402
from jaxviz.generate.fast_style import (  # noqa: E402
    FastStyle,
    FastStyleConfig,
    _forward,
    _train_step,
    perceptual_losses,
    transformer,
)
from jaxviz.generate.images import content_images  # noqa: E402
from jaxviz.models import squeezenet  # noqa: E402
from jaxviz.models.squeezenet import POOL_AFTER  # noqa: E402

NAME = "generate"
CONFIG = FastStyleConfig()  # Johnson et al.'s network
STYLE = "immunohistochemistry"


def network() -> FastStyle:
    graphdef, params, state = nnx.split(transformer(CONFIG), nnx.Param, ...)
    return FastStyle(graphdef, params, state, CONFIG, STYLE)


def feedforward_rows(fast: FastStyle, peer, sizes, timer) -> list:
    rows = []
    for size in sizes:
        x = resize(photo("chelsea"), size)[None]
        xt = nhwc_to_nchw(x)
        with torch.inference_mode():
            np.testing.assert_allclose(peer(xt).numpy().transpose(0, 2, 3, 1), np.asarray(fast(x)), atol=2e-4)
        fn = lambda params, state, x: _forward(fast.graphdef, params, state, x)
        tm = time_group({"jaxviz": (fn, (fast.params, fast.state, jnp.asarray(x)))}, {"torch": (peer, (xt,))}, **timer)
        case = f"transformer network (width {CONFIG.width}, {CONFIG.residual_blocks} blocks) feed-forward, 1 image {size}px"
        rows += [jax_row("feedforward", case, tm["jaxviz"], tm["torch"], impl="jaxviz stylise", items=1),
                 torch_row("feedforward", case, tm["torch"], impl="torch (inference_mode)", items=1)]
    return rows


def torch_losses(net, style_image, config: FastStyleConfig):
    """The perceptual losses of :func:`jaxviz.generate.fast_style.loss_terms` on the torch SqueezeNet."""
    layers, content_layer = ("conv1", "fire2", "fire3", "fire5", "fire7"), "fire5"

    def features(x):
        out, h = {}, net.relu1(net.conv1(net.preprocess(x)))
        out["conv1"], h = h, net.pool(h)
        for name, fire in net.fires.items():
            h = out[name] = fire(h)
            if name == layers[-1]:
                return out
            if name in POOL_AFTER:
                h = net.pool(h)

    def gram(f):
        b, c, h, w = f.shape
        flat = f.reshape(b, c, h * w)
        return flat @ flat.transpose(1, 2) / (h * w)

    with torch.no_grad():
        targets = {n: gram(f) for n, f in features(style_image).items() if n in layers}

    def loss(y, x):
        fy = features(y)
        with torch.no_grad():
            p = features(x)[content_layer]
        style = sum(0.25 * (gram(fy[n]) - t).pow(2).mean(dim=(1, 2)) / (0.25 * t.pow(2).mean()) for n, t in targets.items()) / len(layers)
        content = 0.5 * (fy[content_layer] - p).pow(2).mean(dim=(1, 2, 3)) / (0.5 * p.pow(2).mean(dim=(1, 2, 3)))
        tv = (y[:, :, 1:] - y[:, :, :-1]).pow(2).mean(dim=(1, 2, 3)) + (y[:, :, :, 1:] - y[:, :, :, :-1]).pow(2).mean(dim=(1, 2, 3))
        return (config.style_weight * style + config.content_weight * content + config.tv_weight * tv).mean()

    return loss


def step_rows(fast: FastStyle, peer, size: int, batch: int, timer) -> list:
    config = CONFIG._replace(size=size, batch_size=batch)
    style_image = to_rgb(photo(STYLE))
    losses = perceptual_losses(style_image, size=size)
    step, optimizer = _train_step(fast.graphdef, config.learning_rate, False)
    x = content_images(size=size).batch(0, batch)
    weights = jnp.asarray([config.style_weight, config.content_weight, config.tv_weight, 0.0], jnp.float32)
    carry = (fast.params, fast.state, optimizer.init(fast.params))
    args = (carry, (jnp.asarray(x), jax.random.key(0), losses, weights, jnp.float32(0)))
    loss_t = torch_losses(squeezenet_from_jaxviz(squeezenet()), nhwc_to_nchw(resize(style_image, size)[None]), config)
    opt = torch.optim.Adam(peer.parameters(), lr=config.learning_rate)
    xt = nhwc_to_nchw(x)

    def torch_step(x):
        opt.zero_grad(set_to_none=True)
        loss = loss_t(peer(x), x)
        loss.backward()
        opt.step()
        return loss

    first_jax = float(jax.jit(step)(*args)[1]["loss"])
    with torch.no_grad():
        first_torch = float(loss_t(peer(xt), xt))
    assert abs(first_jax - first_torch) < 1e-3 * abs(first_torch), (first_jax, first_torch)
    tm = time_group({"jaxviz": (step, args)}, {"torch": (torch_step, (xt,))}, inference=False, **timer)
    case = f"fast-style train step (transformer + SqueezeNet losses + Adam), batch {batch}, {size}px"
    note = f"first loss jaxviz {first_jax:.5g}, torch {first_torch:.5g}"
    return [jax_row("train-step", case, tm["jaxviz"], tm["torch"], impl="jaxviz step", items=batch, notes=note),
            torch_row("train-step", case, tm["torch"], impl="torch (backward + Adam.step)", items=batch)]


def main() -> None:
    args = parser(__doc__.splitlines()[0], NAME).parse_args()
    timer, out, md = settings(args, NAME)
    torch.set_num_threads(2)
    fast = network()
    peer = transformer_from_jaxviz(fast)
    sizes = (128, 256) if args.quick else (256, 512, 1024)
    rows = feedforward_rows(fast, peer.eval(), sizes, timer)
    rows += step_rows(fast, peer.train(), 128 if args.quick else 256, 2 if args.quick else 4, timer)
    write_results(NAME, rows, out, md, command="python benchmarks/generate.py" + (" --quick" if args.quick else ""),
                  config={"network": CONFIG._asdict(), "style": STYLE})
    for r in rows:
        print(f"{r.benchmark:12s} {r.case[:70]:70s} {r.impl:28s} {r.steady_s:8.4f} s  ratio {r.ratio_vs_peer}")


if __name__ == "__main__":
    main()
