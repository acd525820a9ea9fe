"""Cross-check of jaxviz.attribution against Captum on a small CNN with the same weights.

The network: conv3x3(3->4, pad 1) -> ReLU -> maxpool 2 -> conv3x3(4->6, pad 1) -> ReLU -> flatten
(NCHW order) -> linear(216 -> 5), on 12x12x3 inputs. PyTorch runs it in float64 (the reference);
jaxviz computes in float32 (it casts pixels to float32) on the same float32-representable weights.
Every comparison is ``assert_allclose(rtol=1e-4, atol=1e-4 * max|ref|)``.

Conventions that differ between the two libraries (and how they are matched here):

* Captum's ``riemann_trapezoid`` uses alphas ``linspace(0, 1, n)`` with step sizes ``1/n`` (ends
  halved), which sum to ``(n - 1)/n``, not 1; jaxviz's ``trapezoid`` uses the proper step ``1/(n-1)``.
  So Captum's trapezoid IG equals jaxviz's times ``(n - 1)/n`` (checked; the other rules agree exactly).
* Captum's ``Occlusion`` returns, per pixel, the mean over the windows covering it of
  ``f(x)_t - f(x occluded)_t`` on whatever the forward function outputs. jaxviz's
  :class:`OcclusionMaps` holds ``prob`` = the mean over the same windows of the occluded score and
  ``reference`` = the unoccluded score, so Captum's map is ``reference[:, None, None] - prob`` (per
  pixel, broadcast over channels), with ``output="logit"`` against Captum on the logits and
  ``output="prob"`` against Captum on ``softmax(logits)``. Window placement is the same on both sides:
  ``ceil((H - w)/s) + 1`` windows per axis, the last one cropped at the far border when ``s`` does not
  divide ``H - w``, so every pixel is compared.
* Captum's ``LayerGradCam`` defaults to ``relu_attributions=False``; jaxviz's ``grad_cam`` to
  ``relu=True``: both settings are compared. Upsampling: ``LayerAttribution.interpolate(...,
  "bilinear")`` (``F.interpolate``, half-pixel centres) vs jaxviz ``resize=True``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")
captum_attr = pytest.importorskip("captum.attr")

from torch import nn

import jaxviz.attribution as A
from jaxviz.models.contract import Model, Taps

SIZE, CIN, C1, C2, CLASSES, BATCH = 12, 3, 4, 6, 5, 3
TARGETS = np.array([0, 3, 4])


def _close(ours, ref, rtol=1e-4):
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    np.testing.assert_allclose(ours, ref, rtol=rtol, atol=rtol * np.abs(ref).max())


def _nchw(x):
    """float64 NCHW, requiring grad (else Captum warns, and the suite turns warnings into errors)."""
    return torch.from_numpy(
        np.ascontiguousarray(np.asarray(x, np.float64).transpose(0, 3, 1, 2))
    ).requires_grad_(True)


def _nhwc(t):
    return t.detach().numpy().transpose(0, 2, 3, 1)


# -- the two implementations of one network ------------------------------------------------------------
@pytest.fixture(scope="module")
def weights():
    rng = np.random.default_rng(0)

    def w(*shape, scale):
        return (scale * rng.normal(size=shape)).astype(np.float32)

    return {
        "w1": w(3, 3, CIN, C1, scale=0.5), "b1": w(C1, scale=0.1),  # HWIO
        "w2": w(3, 3, C1, C2, scale=0.5), "b2": w(C2, scale=0.1),
        "wf": w(CLASSES, C2 * (SIZE // 2) ** 2, scale=0.2), "bf": w(CLASSES, scale=0.1),  # torch (out, in)
    }  # fmt: skip


class TorchCNN(nn.Module):
    def __init__(self, p):
        super().__init__()
        self.conv1 = nn.Conv2d(CIN, C1, 3, padding=1)
        self.relu1 = (
            nn.ReLU()
        )  # modules (not F.relu), so Captum's guided/deconv hooks find them
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(C1, C2, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.fc = nn.Linear(C2 * (SIZE // 2) ** 2, CLASSES)
        with torch.no_grad():
            for conv, k, b in ((self.conv1, "w1", "b1"), (self.conv2, "w2", "b2")):
                conv.weight.copy_(
                    torch.from_numpy(p[k].transpose(3, 2, 0, 1).copy())
                )  # HWIO -> OIHW
                conv.bias.copy_(torch.from_numpy(p[b]))
            self.fc.weight.copy_(torch.from_numpy(p["wf"]))
            self.fc.bias.copy_(torch.from_numpy(p["bf"]))

    def forward(self, x):
        h = self.pool(self.relu1(self.conv1(x)))
        h = self.relu2(self.conv2(h))
        return self.fc(h.flatten(1))


@pytest.fixture(scope="module")
def net(weights):
    return TorchCNN(weights).double().eval().requires_grad_(False)


def _conv(x, w, b):
    y = jax.lax.conv_general_dilated(
        x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    return y + b.reshape(1, 1, 1, -1)


def _forward(p, x, deltas):
    taps = Taps(deltas)
    h = jax.nn.relu(_conv(x, p["w1"], p["b1"]))
    h = jax.lax.reduce_window(
        h, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID"
    )
    h = taps(
        "conv2", _conv(h, p["w2"], p["b2"])
    )  # Captum layer=net.conv2 (pre-activation)
    h = taps("relu2", jax.nn.relu(h))  # Captum layer=net.relu2
    flat = h.transpose(0, 3, 1, 2).reshape(h.shape[0], -1)  # torch's NCHW flatten order
    return flat @ p["wf"].T + p["bf"][None], taps.acts


@pytest.fixture(scope="module")
def model(weights):
    params = {k: jnp.asarray(v) for k, v in weights.items()}
    return Model(
        params=params,
        forward=_forward,
        layers=("conv2", "relu2"),
        input_shape=(SIZE, SIZE, CIN),
        name="captum_cnn",
    )


@pytest.fixture(scope="module")
def x():
    return (
        np.random.default_rng(1)
        .uniform(size=(BATCH, SIZE, SIZE, CIN))
        .astype(np.float32)
    )


@pytest.fixture(scope="module")
def targets():
    return torch.from_numpy(TARGETS)


def test_same_network(model, net, x):
    """The premise: both implementations compute the same logits."""
    with torch.no_grad():
        ref = net(_nchw(x)).numpy()
    _close(model(x), ref, rtol=1e-5)


# -- gradients -------------------------------------------------------------------------------------------
def test_saliency_signed(model, net, x, targets):
    ref = captum_attr.Saliency(net).attribute(_nchw(x), target=targets, abs=False)
    _close(A.gradient(model, x, TARGETS), _nhwc(ref))


@pytest.mark.parametrize("reduce", ["abs", "max_abs", "sum_abs"])
def test_saliency_abs_reductions(model, net, x, targets, reduce):
    ref = _nhwc(
        captum_attr.Saliency(net).attribute(_nchw(x), target=targets, abs=True)
    )  # |grad| per channel
    ref = {"abs": ref, "max_abs": ref.max(axis=-1), "sum_abs": ref.sum(axis=-1)}[reduce]
    _close(A.gradient(model, x, TARGETS, reduce=reduce), ref)


def test_plain_function_equals_model(model, net, x, targets):
    """A plain f(x) -> logits is accepted as well as a Model."""
    ref = captum_attr.Saliency(net).attribute(_nchw(x), target=targets, abs=False)
    f = lambda xx: _forward(model.params, xx, {})[0]
    _close(A.gradient(f, x, TARGETS), _nhwc(ref))


def test_input_x_gradient(model, net, x, targets):
    ref = captum_attr.InputXGradient(net).attribute(_nchw(x), target=targets)
    _close(A.gradient_x_input(model, x, TARGETS), _nhwc(ref))


IG_METHODS = [  # (captum, jaxviz, factor: captum = factor * jaxviz)
    ("riemann_left", "riemann_left", 1.0),
    ("riemann_right", "riemann_right", 1.0),
    ("riemann_middle", "riemann_middle", 1.0),
    ("gausslegendre", "gauss_legendre", 1.0),
    ("riemann_trapezoid", "trapezoid", None),  # (n - 1) / n, see the module docstring
]


@pytest.mark.parametrize(
    "captum_method,method,factor", IG_METHODS, ids=[m[1] for m in IG_METHODS]
)
def test_integrated_gradients(model, net, x, targets, captum_method, method, factor):
    steps = 20
    factor = (steps - 1) / steps if factor is None else factor
    ref, delta = captum_attr.IntegratedGradients(net).attribute(
        _nchw(x),
        baselines=0.0,
        target=targets,
        n_steps=steps,
        method=captum_method,
        internal_batch_size=7,
        return_convergence_delta=True,
    )
    # One rule goes through the chunked lax.scan path (uneven last chunk); the others take a single
    # vmap (chunk_size=None), which runs eagerly without a fresh scan compile and keeps the test fast.
    chunk = 7 if method == "gauss_legendre" else None
    ours, err = A.integrated_gradients(
        model,
        x,
        TARGETS,
        baseline="black",
        steps=steps,
        method=method,
        chunk_size=chunk,
        return_error=True,
    )
    _close(factor * np.asarray(ours), _nhwc(ref))
    if factor == 1.0:  # same completeness error sum(attr) - (f(x) - f(baseline))
        np.testing.assert_allclose(
            np.asarray(err),
            delta.detach().numpy(),
            rtol=1e-3,
            atol=1e-4 * np.abs(ref.detach().numpy()).sum(axis=(1, 2, 3)).max(),
        )


def test_integrated_gradients_array_baseline(model, net, x, targets):
    base = np.full_like(x, 0.25)
    ref = captum_attr.IntegratedGradients(net).attribute(
        _nchw(x),
        baselines=_nchw(base),
        target=targets,
        n_steps=16,
        method="gausslegendre",
    )
    _close(
        A.integrated_gradients(
            model, x, TARGETS, baseline=base, steps=16, chunk_size=None
        ),
        _nhwc(ref),
    )


# -- modified backprop -----------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:Setting backward hooks on ReLU")
@pytest.mark.parametrize("name", ["guided_backprop", "deconvnet"])
@pytest.mark.parametrize("plain", [False, True], ids=["model", "plain_fn"])
def test_modified_backprop(model, net, x, targets, name, plain):
    peer = {
        "guided_backprop": captum_attr.GuidedBackprop,
        "deconvnet": captum_attr.Deconvolution,
    }[name]
    ref = peer(net).attribute(_nchw(x), target=targets)
    fn = (lambda xx: _forward(model.params, xx, {})[0]) if plain else model
    _close(getattr(A, name)(fn, x, TARGETS), _nhwc(ref))


# -- occlusion -------------------------------------------------------------------------------------------
class _Softmax(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return torch.softmax(self.inner(x), dim=1)


@pytest.mark.parametrize("window,stride", [(4, 2), (3, 1), (5, 3)])
@pytest.mark.parametrize("output", ["logit", "prob"])
def test_occlusion(model, net, x, targets, window, stride, output):
    peer_net = net if output == "logit" else _Softmax(net)
    ref = captum_attr.Occlusion(peer_net).attribute(
        _nchw(x),
        sliding_window_shapes=(CIN, window, window),
        strides=(CIN, stride, stride),
        baselines=0.5,
        target=targets,
        perturbations_per_eval=8,
    )
    ref = _nhwc(ref)  # (B, H, W, C), equal across channels (the window spans them all)
    np.testing.assert_array_equal(ref, np.broadcast_to(ref[..., :1], ref.shape))
    ref = ref[..., 0]
    chunk = (
        8 if (window, output) == (4, "logit") else None
    )  # one case through the chunked lax.map path
    maps = A.occlusion(
        model,
        x,
        TARGETS,
        window=window,
        stride=stride,
        fill=0.5,
        output=output,
        chunk_size=chunk,
    )
    ours = np.asarray(maps.reference)[:, None, None] - np.asarray(
        maps.prob
    )  # Captum's quantity, see docstring
    n = -(-(SIZE - window) // stride) + 1  # window positions per axis, the last one cropped if needed
    assert maps.prob_grid.shape == (BATCH, n, n)
    _close(ours, ref)


# -- Grad-CAM --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("layer", ["conv2", "relu2"])
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("resize", [False, True])
def test_grad_cam(model, net, x, targets, layer, relu, resize):
    cam = captum_attr.LayerGradCam(net, getattr(net, layer))
    ref = cam.attribute(
        _nchw(x), target=targets, relu_attributions=relu
    )  # (B, 1, h, w)
    if resize:
        ref = captum_attr.LayerAttribution.interpolate(
            ref, (SIZE, SIZE), interpolate_mode="bilinear"
        )
    ours = A.grad_cam(model, x, TARGETS, layer=layer, relu=relu, resize=resize)
    _close(ours, ref[:, 0].detach().numpy())


@pytest.mark.filterwarnings("ignore:Setting backward hooks on ReLU")
def test_guided_grad_cam(model, net, x, targets):
    ref = captum_attr.GuidedGradCam(net, net.relu2).attribute(
        _nchw(x), target=targets, interpolate_mode="bilinear"
    )
    _close(A.guided_grad_cam(model, x, TARGETS, layer="relu2"), _nhwc(ref))
