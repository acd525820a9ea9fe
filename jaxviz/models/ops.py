"""Convolution and pooling with a lowering chosen by shape and backend, for speed on CPU.

XLA's CPU convolution and its max-pool backward (``select_and_scatter``) are much slower than
PyTorch's oneDNN kernels for the small networks of the visualisation literature (see
``benchmarks/RESULTS.md``). The same arithmetic written differently runs faster there:

* :func:`conv_general_dilated` -- a drop-in for :func:`jax.lax.conv_general_dilated` (``nnx.Conv``
  takes it as ``conv_general_dilated=``). On CPU a 1x1 convolution becomes one ``dot_general``, a
  larger kernel over a small image with many input channels becomes im2col + one ``dot_general``
  (the "unfold + GEMM" lowering of Chellapilla et al., "High Performance Convolutional Neural
  Networks for Document Processing", 2006), a 3x3 unit-stride kernel over a small image with a few
  dozen input channels Winograd's F(2x2, 3x3) (Lavin & Gray 2016; forward pass only, im2col for
  its input gradient), a one-channel image a sum over kernel taps of its shifted copy times the
  tap, everything else stays XLA's convolution. The gradients may use another lowering than the
  forward pass (a ``custom_jvp`` whose tangent is linear in each
  argument, so reverse mode runs its transpose), and XLA's gradient convolutions are laid out so
  that they run as fast inside ``lax.scan``/``lax.map`` loops as outside (XLA's CPU compiler
  leaves the layout JAX derives as it is inside loops, where it ran up to 68x slower); those of
  few-channel layers over a large batch run on chunks of the batch. Under :func:`reverse_only`
  (gradients of gradients) the derivatives are a ``custom_vjp`` instead, canonical at every order.
  On GPU and TPU it is always XLA's convolution. :func:`choose_lowerings` states the rules.
* :func:`conv_blocks` -- a unit-stride convolution computed in 2x2 output blocks (space-to-depth, one
  product), so that 2x2 max pooling after it is a max within each block; the zoo's LeNet computes its
  one-channel first layer and pooling this way on CPU (:func:`conv_blocks_apply`).
* :func:`max_pool` -- max pooling whose derivative finds the first maximum of each window with one
  comparison per window offset and gathers the tangent there from the stride's phase planes, so
  the cotangent goes back through unit-stride ``pad``s instead of ``select_and_scatter`` (a
  ``custom_jvp``, so forward mode works too); non-overlapping windows
  that tile the image are a reshape and a ``max``. On CPU only: elsewhere XLA's own pooling.
* :func:`avg_pool` -- non-overlapping average pooling as a reshape and a ``mean``.
* :func:`with_fast_ops` -- a function transform applying these lowerings to every convolution
  and max pooling of any JAX function (a jaxpr interpreter, as for guided backprop).

All lowerings compute the same values as XLA's operations up to float32 rounding (summation
order), forward and backward (``tests/models/test_ops.py``). The backend is the default one at
trace time (:func:`jax.default_backend`).
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_derivatives import SymbolicZero

from jaxviz import jaxpr as J
from jaxviz.errors import JaxvizError

LOWERINGS = ("auto", "xla", "dot", "im2col", "taps", "winograd")
# im2col + dot beats XLA's CPU convolution when the output image is small and the kernel reads many
# input channels (whole networks, interleaved, 2-core Xeon; `benchmarks/models.py --probes`):
# ConvNet's 128->128 3x3 at 16 and 8 px make its Adam step 0.71-0.81x as long; SqueezeNet's 3x3
# with 32-64 input channels at 28 and 14 px made its input gradient 1.03-1.13x as long, so they
# stay XLA's.
IM2COL_MAX_PIXELS = 32 * 32
IM2COL_MIN_CHANNELS = 128
# Winograd's F(2x2, 3x3) for the forward pass of 3x3 unit-stride layers with 32-127 input channels at
# up to 28x28 output pixels (SqueezeNet's fire4-9 expand layers). Alone, batch 16 (2-core AMD EPYC,
# interleaved): 32->128 at 28 px 9.9 ms vs XLA's 17.2 (im2col 14.0); 48->192 at 14 px 5.4 vs 12.0;
# 64->256 at 14 px 9.9 vs 14.2. Its transforms cost memory traffic, so it lost with 16 channels at
# 56 px (53 vs 19 ms) and at VGG's and ConvNet's larger images (1.3-2.8x XLA), and as a gradient
# (the transpose of the transforms: 1.5-2.5x XLA's). The input gradient of those layers is im2col's
# transpose (a dot and col2im), the kernel gradient XLA's: SqueezeNet's input gradient, batch 16 (same
# machine, interleaved) 0.95x the time with XLA's input gradient there; batch 8 in pieces of 4 images
# (as `jaxviz.attribution` runs it) 0.91x, where Winograd on the cotangent with the flipped kernel
# gave 0.96x.
WINOGRAD_MIN_CHANNELS = 32
WINOGRAD_MAX_PIXELS = 28 * 28
# XLA's CPU convolution is slow with very few channels in a training step. LeNet-5's Adam step,
# batch 256 (`benchmarks/models.py --probes`): its 1 -> 6 channel 5x5 convolution at 28 px as a sum
# of the shifted image times each tap made the step 0.74x as long, but a forward pass alone 1.8x.
# The same sum was slower for ConvNet's 1 -> 128 at 28 px (1.02x) and, as the input gradient of
# LeNet's 6 -> 16 convolution, 1.05x; col2im (the transpose of im2col) was slower in the network
# than XLA's transposed convolution, although faster for the layer alone.
TAPS_MAX = 7 * 7
TAPS_MAX_OUT_CHANNELS = 16
# The gradient convolutions of few-channel layers over a large batch ran faster on CPU in chunks of
# the batch, one convolution per chunk: LeNet-5's Adam step, batch 256 (`benchmarks/models.py
# --probes`), 17.7 ms with chunks of 32 images, 17.5 with 16, 18.4 with 64, 20.1 unchunked (an
# earlier run: 18.3 with 32, 19.2 with 64, 21.1 with 128, 20.9 unchunked); interleaved in one
# process, 16 against 32 in two more runs: 17.24 vs 17.55 and 17.29 vs 17.80 ms (8: 17.42).
# SqueezeNet's input gradient (16 images of 16-64 channels at 56 px) in chunks was 1.2x as long
# (one-off probe), so only layers with at most GRAD_CHUNK_MAX_CHANNELS in and out are chunked.
GRAD_CHUNK = 16
GRAD_CHUNK_MAX_CHANNELS = 16
_STATE = threading.local()  # .xla / .reverse_only: plain_xla() / reverse_only() is active in this thread
_NHWC = (0, 3, 1, 2)  # lax.ConvDimensionNumbers specs of NHWC input / output
_HWIO = (3, 2, 0, 1)  # ... and of an HWIO kernel


@contextlib.contextmanager
def plain_xla() -> Iterator[None]:
    """Functions traced inside this context use XLA's own convolution and pooling everywhere.

    For comparisons (``benchmarks/models.py`` times the zoo both ways); the choice is made when a
    function is traced, so trace (``jit``/``lower``) a fresh function inside the context.
    """
    with _flag_set("xla"):
        yield


@contextlib.contextmanager
def _flag_set(name: str) -> Iterator[None]:
    previous = _flag(name)
    setattr(_STATE, name, True)
    try:
        yield
    finally:
        setattr(_STATE, name, previous)


def _flag(name: str) -> bool:
    return getattr(_STATE, name, False)


@contextlib.contextmanager
def reverse_only() -> Iterator[None]:
    """Convolutions traced inside this context get their derivatives from a ``custom_vjp``.

    For gradients of gradients, as dataset distillation takes through unrolled training steps:
    every gradient convolution is again a convolution of this module, so the gradients at the next
    order are in XLA's canonical layout too. The ``custom_jvp`` used elsewhere makes the first
    gradients canonical, but JAX derives the second-order ones from those as they are, and inside
    ``lax.scan``/``lax.map`` bodies XLA's CPU compiler runs them in that layout, several times
    slower (``benchmarks/distill.py``). Forward-mode differentiation (``jax.jvp``) of a function
    traced in this context fails. The choice is made when a function is traced.
    """
    with _flag_set("reverse_only"):
        yield


def _pads(padding, in_spatial, window, strides) -> tuple[tuple[int, int], ...]:
    if isinstance(padding, str):
        return tuple(tuple(p) for p in lax.padtype_to_pads(in_spatial, window, strides, padding))
    return tuple((int(lo), int(hi)) for lo, hi in padding)


class Lowerings(NamedTuple):
    """How :func:`conv_general_dilated` computes a convolution (``forward``), its gradient with respect
    to the input (``input_grad``) and to the kernel (``kernel_grad``): each one of ``LOWERINGS``."""

    forward: str
    input_grad: str
    kernel_grad: str
    grad_chunk: int = 0  # images per convolution in both gradients; 0: the whole batch at once


def choose_lowerings(lhs_shape: Sequence[int], rhs_shape: Sequence[int], window_strides: Sequence[int],
                     padding: Any = "VALID", *, dimension_numbers: Any = None, lhs_dilation: Sequence[int] | None = None,
                     rhs_dilation: Sequence[int] | None = None, feature_group_count: int = 1,
                     batch_group_count: int = 1, backend: str | None = None) -> Lowerings:
    """The lowerings :func:`conv_general_dilated` uses for the forward pass and both gradients.

    Off CPU (``backend``, default :func:`jax.default_backend`), and for anything but a plain 2-D
    NHWC x HWIO convolution (dilation, groups), XLA's convolution throughout. On CPU the forward
    pass is: a ``"dot"`` for a 1x1 kernel with unit strides and no padding; ``"taps"`` (the sum
    over kernel taps of the shifted image times the tap) for a one-channel image, at most
    ``TAPS_MAX`` taps and ``TAPS_MAX_OUT_CHANNELS`` output channels; ``"im2col"`` when the output
    has at most ``IM2COL_MAX_PIXELS`` pixels and the input at least ``IM2COL_MIN_CHANNELS``
    channels; ``"winograd"`` for a 3x3 unit-stride kernel with an output of at most
    ``WINOGRAD_MAX_PIXELS`` pixels and at least ``WINOGRAD_MIN_CHANNELS`` input channels; otherwise
    ``"xla"``. Both gradients are the forward's own transpose, except XLA's after ``"taps"``, and
    im2col's input gradient and XLA's kernel gradient after ``"winograd"``; XLA's gradients of a
    layer with at most ``GRAD_CHUNK_MAX_CHANNELS`` input and output channels run on chunks of
    ``GRAD_CHUNK`` images of a larger batch (``grad_chunk``).
    """
    backend = jax.default_backend() if backend is None else backend
    xla = Lowerings("xla", "xla", "xla")
    if backend != "cpu" or not _plain(lhs_shape, rhs_shape, dimension_numbers, lhs_dilation, rhs_dilation,
                                     feature_group_count, batch_group_count):
        return xla
    kh, kw, cin, cout = rhs_shape
    pads = _pads(padding, lhs_shape[1:3], (kh, kw), window_strides)
    if (kh, kw) == (1, 1) and tuple(window_strides) == (1, 1) and pads == ((0, 0), (0, 0)):
        return Lowerings("dot", "dot", "dot")
    ho, wo = (_out_size(n, k, s, p) for n, k, s, p in zip(lhs_shape[1:3], (kh, kw), window_strides, pads))
    if ho * wo <= IM2COL_MAX_PIXELS and cin >= IM2COL_MIN_CHANNELS:
        return Lowerings("im2col", "im2col", "im2col")
    chunk = GRAD_CHUNK if 0 < GRAD_CHUNK < lhs_shape[0] and max(cin, cout) <= GRAD_CHUNK_MAX_CHANNELS else 0
    if (_winograd_applies((kh, kw), window_strides, pads) and ho * wo <= WINOGRAD_MAX_PIXELS
            and WINOGRAD_MIN_CHANNELS <= cin):
        return Lowerings("winograd", "im2col", "xla", chunk)
    if cin == 1 and kh * kw <= TAPS_MAX and cout <= TAPS_MAX_OUT_CHANNELS:
        return Lowerings("taps", "xla", "xla", chunk)
    return xla._replace(grad_chunk=chunk)


def choose_lowering(lhs_shape: Sequence[int], rhs_shape: Sequence[int], window_strides: Sequence[int],
                    padding: Any = "VALID", **kwargs: Any) -> str:
    """The forward lowering of :func:`choose_lowerings`: ``"dot"``, ``"taps"``, ``"im2col"`` or ``"xla"``."""
    return choose_lowerings(lhs_shape, rhs_shape, window_strides, padding, **kwargs).forward


def _out_size(n: int, k: int, s: int, pad: tuple[int, int]) -> int:
    return (n + pad[0] + pad[1] - k) // s + 1


def _plain(lhs_shape, rhs_shape, dimension_numbers, lhs_dilation, rhs_dilation, groups, batch_groups) -> bool:
    if len(lhs_shape) != 4 or len(rhs_shape) != 4 or groups != 1 or batch_groups != 1:
        return False
    if any(d != 1 for d in (lhs_dilation or ())) or any(d != 1 for d in (rhs_dilation or ())):
        return False
    dn = lax.conv_dimension_numbers(tuple(lhs_shape), tuple(rhs_shape), dimension_numbers)
    return tuple(dn.lhs_spec) == _NHWC and tuple(dn.rhs_spec) == _HWIO and tuple(dn.out_spec) == _NHWC


def _dot(patches, kernel, precision, preferred_element_type):
    k = kernel.reshape(-1, kernel.shape[-1])
    return lax.dot_general(patches, k, (((3,), (0,)), ((), ())), precision=precision,
                           preferred_element_type=preferred_element_type)


def _window(x, i, j, ho, wo, strides):
    """The ``(B, ho, wo, C)`` pixels that kernel offset ``(i, j)`` reads of a padded batch."""
    b, _, _, c = x.shape
    return lax.slice(x, (0, i, j, 0), (b, i + (ho - 1) * strides[0] + 1, j + (wo - 1) * strides[1] + 1, c), (1, *strides, 1))


def _kernel_windows(x, kh, kw, strides, pads):
    """Of the zero-padded batch, the ``(B, Ho, Wo, C)`` window each kernel offset reads, offsets row-major."""
    x = jnp.pad(x, ((0, 0), *pads, (0, 0)))
    _, h, w, _ = x.shape
    ho, wo = (h - kh) // strides[0] + 1, (w - kw) // strides[1] + 1
    return [_window(x, i, j, ho, wo, strides) for i in range(kh) for j in range(kw)]


def _im2col(x, kh, kw, strides, pads):
    """``(B, Ho, Wo, kh * kw * C)`` patches, offsets major and channels minor (the HWIO kernel order)."""
    return jnp.concatenate(_kernel_windows(x, kh, kw, strides, pads), axis=-1)


def _taps(x, kernel, strides, pads, preferred_element_type):
    """The convolution as the sum over kernel taps of the shifted image times the tap (a product for one channel)."""
    kh, kw, cin, cout = kernel.shape

    def tap(window, k):  # k: (cin, cout)
        return window * k.reshape(1, 1, 1, cout) if cin == 1 else jnp.einsum("bhwc,cd->bhwd", window, k)

    out = sum(map(tap, _kernel_windows(x, kh, kw, strides, pads), kernel.reshape(kh * kw, cin, cout)))
    return out if preferred_element_type is None else out.astype(preferred_element_type)


# Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray, "Fast Algorithms for Convolutional Neural
# Networks", CVPR 2016): a 2x2 output tile from a 4x4 input tile with 16 multiplications per channel
# pair instead of 36; Y = A^T [(G g G^T) * (B^T d B)] A. (F(4x4, 3x3) was slower at 14 px, where its
# tiles overhang the image, and ten times less accurate in float32.)
_WINOGRAD_BT = ((1, 0, -1, 0), (0, 1, 1, 0), (0, -1, 1, 0), (0, 1, 0, -1))
_WINOGRAD_G = ((1, 0, 0), (1 / 2, 1 / 2, 1 / 2), (1 / 2, -1 / 2, 1 / 2), (0, 0, 1))
_WINOGRAD_AT = ((1, 1, 1, 0), (0, 1, -1, -1))


def _combine(matrix, arrays):
    """``[sum_k matrix[i][k] * arrays[k] for each row i]``, zero terms skipped and unit ones added."""
    def term(c, a):
        return a if c == 1 else -a if c == -1 else a * c
    return [functools.reduce(lambda acc, t: t if acc is None else acc + t,
                             (term(c, a) for c, a in zip(row, arrays) if c != 0), None) for row in matrix]


def _winograd_applies(kernel_hw, strides, pads) -> bool:
    return tuple(kernel_hw) == (3, 3) and tuple(strides) == (1, 1) and all(p >= 0 for pad in pads for p in pad)


def _winograd(x, kernel, pads, precision, preferred_element_type):
    """A 3x3 unit-stride convolution of ``x`` (NHWC) as Winograd's F(2x2, 3x3).

    The padded image is read as row (then column) phase planes of the tile stride, so every tile row
    is a unit-stride slice; the 16 transformed tile positions are one batched ``dot_general`` over
    channels."""
    m, a = len(_WINOGRAD_AT), len(_WINOGRAD_BT)
    b, h, w, c = jnp.shape(x)
    cout = jnp.shape(kernel)[-1]
    ho, wo = h + sum(pads[0]) - 2, w + sum(pads[1]) - 2
    nh, nw = -(-ho // m), -(-wo // m)
    extra = -(-(a - 1) // m)
    x = jnp.pad(x, ((0, 0), (pads[0][0], m * (nh + extra) - h - pads[0][0]), (pads[1][0], m * (nw + extra) - w - pads[1][0]), (0, 0)))
    rows = x.reshape(b, nh + extra, m, m * (nw + extra), c)
    tiles = []
    for row in _combine(_WINOGRAD_BT, [rows[:, k // m:k // m + nh, k % m] for k in range(a)]):
        cols = row.reshape(b, nh, nw + extra, m, c)
        tiles += _combine(_WINOGRAD_BT, [cols[:, :, k // m:k // m + nw, k % m] for k in range(a)])
    g = jnp.asarray(_WINOGRAD_G, kernel.dtype)
    u = jnp.einsum("ik,jl,klcd->ijcd", g, g, kernel, precision=precision).reshape(a * a, c, cout)
    prods = lax.dot_general(jnp.stack(tiles).reshape(a * a, b * nh * nw, c), u, (((2,), (1,)), ((0,), (0,))),
                            precision=precision, preferred_element_type=preferred_element_type)
    prods = prods.reshape(a, a, b, nh, nw, cout)
    out = [_combine(_WINOGRAD_AT, [r[j] for j in range(a)]) for r in _combine(_WINOGRAD_AT, [prods[i] for i in range(a)])]
    out = jnp.stack([jnp.stack(r, axis=3) for r in out], axis=2)  # (b, nh, m, nw, m, cout)
    return out.reshape(b, m * nh, m * nw, cout)[:, :ho, :wo]


def _lowered(lowering, lhs, rhs, strides, pads, precision, preferred_element_type, linear_in=None):
    """A plain NHWC x HWIO convolution computed by ``lowering``.

    ``linear_in="lhs"``/``"rhs"``: as a tangent linear in that argument, XLA's convolution is written
    so that its transpose (that argument's gradient) is a convolution in XLA's canonical layout
    (batch, spatial, feature x spatial, in, out). The transposes JAX derives from the plain form
    (batch and feature swapped for the kernel gradient, in and out swapped for the input gradient)
    are made canonical by XLA's CPU compiler only outside loops: inside ``lax.scan``/``lax.map``
    bodies they ran 3-68x (kernel gradient) and up to 5x (input gradient) slower than unrolled
    (ConvNet's 128 -> 128 kernel gradient, batch 64: 21.1 s vs 0.31 s; LeNet's conv2: 195 vs 9.7 ms;
    ``python benchmarks/models.py --loops``), while the canonical form takes the same time in and
    out of loops.
    """
    if lowering == "xla" and linear_in == "lhs":
        dn = lax.ConvDimensionNumbers(lhs_spec=(0, 3, 1, 2), rhs_spec=(2, 3, 0, 1), out_spec=(0, 3, 1, 2))
        return lax.conv_general_dilated(lhs, jnp.transpose(rhs, (0, 1, 3, 2)), strides, pads, dimension_numbers=dn,
                                        precision=precision, preferred_element_type=preferred_element_type)
    if lowering == "xla" and linear_in == "rhs":
        dn = lax.ConvDimensionNumbers(lhs_spec=(3, 0, 1, 2), rhs_spec=(3, 0, 1, 2), out_spec=(2, 3, 0, 1))
        out = lax.conv_general_dilated(jnp.transpose(lhs, (3, 1, 2, 0)), jnp.transpose(rhs, (2, 0, 1, 3)), strides, pads,
                                       dimension_numbers=dn, precision=precision, preferred_element_type=preferred_element_type)
        return jnp.transpose(out, (2, 0, 1, 3))
    if lowering == "xla":
        return lax.conv_general_dilated(lhs, rhs, strides, pads, dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                        precision=precision, preferred_element_type=preferred_element_type)
    if lowering == "taps":
        return _taps(lhs, rhs, strides, pads, preferred_element_type)
    if lowering == "winograd":
        return _winograd(lhs, rhs, pads, precision, preferred_element_type)
    patches = lhs if lowering == "dot" else _im2col(lhs, *jnp.shape(rhs)[:2], strides, pads)
    return _dot(patches, rhs, precision, preferred_element_type)


def _chunks(x, chunk):
    """``x`` split along the batch into pieces of ``chunk`` (the last one shorter), or ``[x]`` when
    ``chunk`` is 0, the batch no larger, explicitly sharded or traced under a mesh of several devices
    (it stays whole: each device already holds a part of it, and chunks would cut across the parts);
    ``lax.split``, whose transpose is one concatenation (slices would transpose into a padded copy
    each)."""
    n = jnp.shape(x)[0]
    if not chunk or n <= chunk or batch_is_split(x):
        return [x]
    return jnp.split(x, list(range(chunk, n, chunk)))


def batch_is_split(x) -> bool:
    """Whether the batch (leading axis) of ``x`` is explicitly sharded, or traced under a mesh of several
    devices: then each device holds a part of it, and pieces of the batch would cut across the parts."""
    return _spec(x)[:1] not in ((), (None,)) or jax.sharding.get_abstract_mesh().size > 1


@functools.partial(jax.custom_jvp, nondiff_argnums=(2, 3, 4, 5, 6))
def _split_conv(lhs, rhs, strides, pads, lowerings, precision, preferred_element_type):
    return _lowered(lowerings.forward, lhs, rhs, strides, pads, precision, preferred_element_type)


def _split_conv_jvp(strides, pads, lowerings, precision, preferred_element_type, primals, tangents):
    # The tangent is linear in each argument's tangent, so reverse mode transposes each term: the
    # input gradient is the transpose of `lowerings.input_grad`, the kernel gradient of `kernel_grad`.
    # Chunking the batch of a term chunks both gradients: the input gradient comes back per chunk and
    # the kernel gradient is the sum of the chunks' kernel gradients.
    (lhs, rhs), (dlhs, drhs) = primals, tangents
    out = _split_conv(lhs, rhs, strides, pads, lowerings, precision, preferred_element_type)

    def term(lowering, images, kernel, linear_in):
        def conv(part):
            return _lowered(lowering, part, kernel, strides, pads, precision, preferred_element_type, linear_in)
        parts = _chunks(images, lowerings.grad_chunk)
        return conv(images) if len(parts) == 1 else jnp.concatenate([conv(part) for part in parts])

    terms = []
    if not isinstance(dlhs, SymbolicZero):
        terms.append(term(lowerings.input_grad, dlhs, rhs, "lhs"))
    if not isinstance(drhs, SymbolicZero):
        terms.append(term(lowerings.kernel_grad, lhs, drhs, "rhs"))
    return out, sum(terms[1:], terms[0])


_split_conv.defjvp(_split_conv_jvp, symbolic_zeros=True)


class _Conv(NamedTuple):
    """The static arguments of a plain NHWC x HWIO convolution in :func:`reverse_only` mode."""

    strides: tuple[int, int]
    pads: tuple[tuple[int, int], ...]
    lowerings: Lowerings
    precision: Any
    preferred_element_type: Any

    def canonical_gradients(self, kernel_shape) -> bool:
        """Whether both gradients are XLA's unit-stride convolutions, written here in canonical layout."""
        return (self.strides == (1, 1) and self.lowerings.input_grad == self.lowerings.kernel_grad == "xla"
                and all(0 <= p <= k - 1 for pad, k in zip(self.pads, kernel_shape[:2]) for p in pad))

    def xla(self, lhs, rhs, pads):
        return lax.conv_general_dilated(lhs, rhs, self.strides, pads, dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                        precision=self.precision, preferred_element_type=self.preferred_element_type)


# In reverse_only() mode a convolution y = F(x, w) has the gradients x_bar = A(y_bar, w) (the input
# gradient) and w_bar = K(x, y_bar) (the kernel gradient), and each of F, A, K has its gradients
# among the other two: <F(x, w), g> = <x, A(g, w)> = <w, K(x, g)>. All three are custom_vjp functions
# computing a canonical convolution, so gradients of every order stay in XLA's canonical layout.
@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _conv_f(x, w, conv: _Conv):
    return _lowered(conv.lowerings.forward, x, w, conv.strides, conv.pads, conv.precision, conv.preferred_element_type)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _conv_a(g, w, conv: _Conv):
    flipped = jnp.transpose(w[::-1, ::-1], (0, 1, 3, 2))
    return conv.xla(g, flipped, tuple((k - 1 - lo, k - 1 - hi) for (lo, hi), k in zip(conv.pads, jnp.shape(w)[:2])))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _conv_k(x, g, conv: _Conv):
    return jnp.transpose(conv.xla(jnp.transpose(x, (3, 1, 2, 0)), jnp.transpose(g, (1, 2, 0, 3)), conv.pads), (1, 2, 0, 3))


def _conv_f_bwd(conv, residuals, g):
    x, w = residuals
    if not conv.canonical_gradients(jnp.shape(w)):  # the transposes of the other lowerings' dots, or XLA's own
        _, vjp = jax.vjp(lambda a, b: _split_conv(a, b, conv.strides, conv.pads, conv.lowerings, conv.precision,
                                                  conv.preferred_element_type), x, w)
        return vjp(g)
    xs, gs = _chunks(x, conv.lowerings.grad_chunk), _chunks(g, conv.lowerings.grad_chunk)
    if len(xs) == 1 or len(gs) != len(xs):  # whole when either batch stays whole
        return _conv_a(g, w, conv), _conv_k(x, g, conv)
    return jnp.concatenate([_conv_a(part, w, conv) for part in gs]), sum(map(lambda a, b: _conv_k(a, b, conv), xs, gs))


_conv_f.defvjp(lambda x, w, conv: (_conv_f(x, w, conv), (x, w)), _conv_f_bwd)
_conv_a.defvjp(lambda g, w, conv: (_conv_a(g, w, conv), (g, w)),
               lambda conv, residuals, c: (_conv_f(c, residuals[1], conv), _conv_k(c, residuals[0], conv)))
_conv_k.defvjp(lambda x, g, conv: (_conv_k(x, g, conv), (x, g)),
               lambda conv, residuals, c: (_conv_a(residuals[1], c, conv), _conv_f(residuals[0], c, conv)))


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                         dimension_numbers=None, feature_group_count=1, batch_group_count=1, precision=None,
                         preferred_element_type=None, out_sharding=None, *, lowering: str = "auto"):
    """:func:`jax.lax.conv_general_dilated` computed with the lowerings of :func:`choose_lowerings`.

    Same arguments and result (up to float32 rounding); ``lowering`` forces one of
    ``"xla"``/``"dot"``/``"im2col"``/``"taps"``/``"winograd"`` for the forward pass and both
    gradients, which are then plain autodiff of it (all but ``"xla"`` only for a plain NHWC x HWIO
    convolution; ``"dot"`` for 1x1 unit-stride unpadded kernels, ``"winograd"`` for 3x3 unit-stride
    ones). With ``"auto"`` on CPU, XLA's gradient convolutions are laid
    out to run as fast inside ``lax.scan``/``lax.map`` bodies as outside (see ``_lowered``).
    Use it in a flax module as ``nnx.Conv(..., conv_general_dilated=conv_general_dilated)``.
    """
    if lowering not in LOWERINGS:
        raise JaxvizError(f"unknown convolution lowering {lowering!r}; choose one of {', '.join(map(repr, LOWERINGS))}.")
    plain = _plain(jnp.shape(lhs), jnp.shape(rhs), dimension_numbers, lhs_dilation, rhs_dilation,
                   feature_group_count, batch_group_count) and out_sharding is None
    if lowering == "xla" or (lowering == "auto" and (not plain or _flag("xla") or jax.default_backend() != "cpu")):
        kw = {} if out_sharding is None else {"out_sharding": out_sharding}
        return lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
                                        feature_group_count, batch_group_count, precision, preferred_element_type, **kw)
    kh, kw_, _, _ = jnp.shape(rhs)
    strides = tuple(window_strides)
    pads = _pads(padding, jnp.shape(lhs)[1:3], (kh, kw_), strides)
    if lowering == "auto":
        lowerings = choose_lowerings(jnp.shape(lhs), jnp.shape(rhs), strides, pads, dimension_numbers=dimension_numbers)
        if _flag("reverse_only"):
            return _conv_f(lhs, rhs, _Conv(strides, pads, lowerings, precision, preferred_element_type))
        return _split_conv(lhs, rhs, strides, pads, lowerings, precision, preferred_element_type)
    if not plain or (lowering == "dot" and ((kh, kw_) != (1, 1) or strides != (1, 1) or pads != ((0, 0), (0, 0)))) \
            or (lowering == "winograd" and not _winograd_applies((kh, kw_), strides, pads)):
        raise JaxvizError(f"lowering {lowering!r} does not apply to a convolution of {jnp.shape(lhs)} with kernel {jnp.shape(rhs)} "
                          f"(strides {strides}, padding {pads}); use lowering='auto' or 'xla'.")
    return _lowered(lowering, lhs, rhs, strides, pads, precision, preferred_element_type)  # plain autodiff of it


def conv_with(lowering: str) -> Callable[..., jax.Array]:
    """A :func:`conv_general_dilated` drop-in that always uses ``lowering`` (for measuring and testing)."""
    if lowering not in LOWERINGS:
        raise JaxvizError(f"unknown convolution lowering {lowering!r}; choose one of {', '.join(map(repr, LOWERINGS))}.")
    return functools.partial(conv_general_dilated, lowering=lowering)


# -------------------------------------------------------------------------- convolution in 2x2 blocks


def conv_blocks_apply(x: jax.Array, kernel: jax.Array, padding: Any = "VALID") -> bool:
    """Whether a unit-stride convolution followed by 2x2 max pooling runs as :func:`conv_blocks`: where
    :func:`choose_lowering` picks the tap sum (on CPU, not under :func:`plain_xla`: a one-channel image,
    LeNet's first layer) and the output has even height and width."""
    if jnp.ndim(x) != 4 or jnp.ndim(kernel) != 4 or _flag("xla"):
        return False
    kh, kw = jnp.shape(kernel)[:2]
    pads = _pads(padding, jnp.shape(x)[1:3], (kh, kw), (1, 1))
    ho, wo = (_out_size(n, k, 1, p) for n, k, p in zip(jnp.shape(x)[1:3], (kh, kw), pads))
    taps = choose_lowering(jnp.shape(x), jnp.shape(kernel), (1, 1), pads, dimension_numbers=("NHWC", "HWIO", "NHWC")) == "taps"
    return taps and ho > 0 and wo > 0 and ho % 2 == 0 and wo % 2 == 0


def conv_blocks(x: jax.Array, kernel: jax.Array, padding: Any = "VALID") -> jax.Array:
    """A unit-stride NHWC x HWIO convolution with its output in 2x2 blocks: ``(B, Ho/2, Wo/2, 4, Cout)``,
    axis 3 the block's four pixels row-major (``Ho`` and ``Wo`` even; :func:`unblock` puts them back).

    Space-to-depth: the padded input as 2x2 blocks of ``4 * Cin`` channels, the kernel rearranged over
    ``nb x nb`` blocks (``nb = (k + 2) // 2``) into one giving ``4 * Cout`` channels, then im2col and one
    product. 2x2 max pooling of the convolution is a max over axis 3 of the product's output, which
    XLA's CPU compiler keeps in memory, where it fused the tap sum into each of its readers (the
    pooling, its derivative, the ReLU's mask) and computed it once per reader: LeNet-5's forward pass
    at batch 256 took 25 ms against 9 in blocks, a distillation outer step (fixed init) 0.97-1.0x
    PyTorch's against 0.7-0.9x (2-core AMD EPYC, interleaved). The same for LeNet's 6 -> 16
    convolution was slower in the outer step than XLA's convolution, so it applies to tap sums only.
    """
    kh, kw, cin, cout = jnp.shape(kernel)
    pads = _pads(padding, jnp.shape(x)[1:3], (kh, kw), (1, 1))
    b, h, w, _ = jnp.shape(x)
    hb, wb = (_out_size(n, k, 1, p) // 2 for n, k, p in zip((h, w), (kh, kw), pads))
    nh, nw = (kh + 2) // 2, (kw + 2) // 2
    # zero rows and columns on the far side up to whole blocks (they meet the rearranged kernel's zeros)
    far = (2 * (hb + nh - 1) - (h + pads[0][0]), 2 * (wb + nw - 1) - (w + pads[1][0]))
    xp = lax.pad(x, jnp.zeros((), x.dtype), ((0, 0, 0), (pads[0][0], far[0], 0), (pads[1][0], far[1], 0), (0, 0, 0)))
    blocks = _reshape_along_batch(_split_windows(xp, (2, 2)).transpose(0, 1, 3, 2, 4, 5), (b, hb + nh - 1, wb + nw - 1, 4 * cin))
    placed = jnp.stack([jnp.pad(kernel, ((dy, 2 * nh - kh - dy), (dx, 2 * nw - kw - dx), (0, 0), (0, 0)))
                        for dy in range(2) for dx in range(2)], axis=-2)  # (2nh, 2nw, cin, 4, cout): one per output pixel
    block_kernel = placed.reshape(nh, 2, nw, 2, cin, 4 * cout).transpose(0, 2, 1, 3, 4, 5).reshape(nh, nw, 4 * cin, 4 * cout)
    out = _dot(_im2col(blocks, nh, nw, (1, 1), ((0, 0), (0, 0))), block_kernel, None, None)
    return _reshape_along_batch(out, (b, hb, wb, 4, cout))


def unblock(z: jax.Array) -> jax.Array:
    """:func:`conv_blocks`'s ``(B, H/2, W/2, 4, C)`` blocks as the ``(B, H, W, C)`` image."""
    b, hb, wb, _, c = jnp.shape(z)
    return _reshape_along_batch(_reshape_along_batch(z, (b, hb, wb, 2, 2, c)).transpose(0, 1, 3, 2, 4, 5), (b, 2 * hb, 2 * wb, c))


def _reshape_along_batch(x, shape):
    """``x.reshape(shape)`` for a reshape within each example, keeping an explicit sharding of the batch axis."""
    spec = _spec(x)
    if not spec or spec[0] is None:
        return x.reshape(shape)
    return lax.reshape(x, shape, out_sharding=jax.sharding.PartitionSpec(spec[0], *(None,) * (len(shape) - 1)))


# ---------------------------------------------------------------------------------------------- pooling


def _pool_pads(padding, spatial, window, strides) -> tuple[tuple[int, int], tuple[int, int]]:
    if isinstance(padding, str):
        if padding.upper() == "CEIL":  # Caffe's ceil mode: the last window may overhang the far edge
            return tuple((0, max(-(-(n - k) // s) * s + k - n, 0)) for n, k, s in zip(spatial, window, strides))
        return _pads(padding.upper(), spatial, window, strides)
    return _pads(padding, spatial, window, strides)


def _check_pool(x, window, strides):
    if jnp.ndim(x) != 4:
        raise JaxvizError(f"pooling expects an NHWC batch (B, H, W, C); got shape {jnp.shape(x)}.")
    window = (window, window) if isinstance(window, int) else tuple(window)
    strides = window if strides is None else ((strides, strides) if isinstance(strides, int) else tuple(strides))
    return window, strides


def max_pool(x: jax.Array, window: int | Sequence[int] = 2, strides: int | Sequence[int] | None = None,
             padding: str | Sequence[tuple[int, int]] = "VALID") -> jax.Array:
    """Max pooling of an NHWC batch; the same values and gradient as ``lax.reduce_window`` (first maximum).

    ``padding``: ``"VALID"``, ``"SAME"``, ``"CEIL"`` (Caffe's ceil mode) or ``((lo, hi), (lo, hi))``;
    padded positions never win. On CPU, non-overlapping windows that tile the image exactly are a
    reshape and a ``max`` (ties split the gradient equally, as ``jnp.max`` does); otherwise the
    derivative gathers the tangent at each window's stored first maximum from the stride's phase
    planes (its transpose: unit-stride pads and one concatenation) instead of ``select_and_scatter``.
    Off CPU it is XLA's ``reduce_window`` and ``select_and_scatter``: on an H200 an earlier
    gather-based derivative was 1.1-1.4x slower and LeNet's Adam step 1.6x (``## models-gpu`` of
    benchmarks/RESULTS.md).
    """
    window, strides = _check_pool(x, window, strides)
    pads = _pool_pads(padding, jnp.shape(x)[1:3], window, strides)
    h, w = jnp.shape(x)[1:3]
    if _flag("xla") or jax.default_backend() != "cpu":
        return _reduce_window_max(x, window, strides, pads)
    if window == strides and pads == ((0, 0), (0, 0)) and h % window[0] == 0 and w % window[1] == 0:
        return _split_windows(x, window).max(axis=(2, 4))
    return _max_pool(x, window, strides, pads)


def avg_pool(x: jax.Array, window: int | Sequence[int] = 2) -> jax.Array:
    """Non-overlapping ``window`` average pooling without padding (``VALID``; trailing rows/columns dropped)."""
    window, _ = _check_pool(x, window, None)
    if _flag("xla"):
        return lax.reduce_window(x, 0.0, lax.add, (1, *window, 1), (1, *window, 1), "VALID") / (window[0] * window[1])
    h, w = jnp.shape(x)[1:3]
    ho, wo = h // window[0], w // window[1]
    return _split_windows(x[:, : ho * window[0], : wo * window[1]], window).mean(axis=(2, 4))


def _split_windows(x, window):
    """``(B, H, W, C)`` -> ``(B, H/h, h, W/w, w, C)``, keeping an explicit sharding of the batch axes."""
    b, h, w, c = jnp.shape(x)
    shape = (b, h // window[0], window[0], w // window[1], window[1], c)
    spec = _spec(x)
    if not any(s is not None for s in spec):
        return x.reshape(shape)
    spec = spec + (None,) * (4 - len(spec))
    return lax.reshape(x, shape, out_sharding=jax.sharding.PartitionSpec(spec[0], spec[1], None, spec[2], None, spec[3]))


def _spec(x) -> tuple:
    """The partition spec of an explicitly sharded array; ``()`` otherwise."""
    return tuple(getattr(getattr(jax.typeof(x), "sharding", None), "spec", ()) or ())


def _reduce_window_max(x, window, strides, pads):
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, *window, 1), (1, *strides, 1), ((0, 0), *pads, (0, 0)))


@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 2, 3))
def _max_pool(x, window, strides, pads):
    return _reduce_window_max(x, window, strides, pads)


@_max_pool.defjvp
def _max_pool_jvp(window, strides, pads, primals, tangents):
    # Linear in the tangent: gather it at each window's first maximum, found once (an index per
    # window). The gather reads the padded tangent as strides[0] x strides[1] phase planes (the pixels
    # at each row and column phase of the stride), so every kernel offset is a unit-stride slice of
    # one plane: its transpose (reverse mode) is a pad of the output-sized cotangent into a plane,
    # and the planes go back together in one concatenation and transpose. Reading the windows as
    # strided slices of the whole image instead transposes into one image-sized pad per offset
    # (9 for a 3x3 window), which dominated SqueezeNet's max-pool gradients on CPU.
    (x,), (t,) = primals, tangents
    y, first = _max_and_first(x, window, strides, pads)
    _, ho, wo, _ = y.shape
    offsets = [(i, j) for i in range(window[0]) for j in range(window[1])]
    planes = _phase_planes(t, window, strides, pads, (ho, wo))
    out = jnp.zeros(y.shape, t.dtype)
    for k, (i, j) in enumerate(offsets):
        plane = planes[(i % strides[0]) * strides[1] + j % strides[1]]
        tap = lax.slice_in_dim(lax.slice_in_dim(plane, i // strides[0], i // strides[0] + ho, axis=1),
                               j // strides[1], j // strides[1] + wo, axis=2)
        out = out + jnp.where(first == k, tap, jnp.zeros((), t.dtype))
    return y, out


def _max_and_first(x, window, strides, pads):
    """Max pooling and the row-major kernel offset of each window's first maximum, stored.

    XLA's CPU compiler would otherwise fuse the offsets' comparisons into every consumer in the
    derivative, which reads them at up to four shifted positions per pixel (in a profile of
    SqueezeNet's input gradient, conv1's pool derivative took 64 ms instead of 9). A reduction is never duplicated into its consumers, so the offsets of
    neighbouring channels are packed into one integer by a sum over the pair and unpacked again."""
    y = _reduce_window_max(x, window, strides, pads)
    _, ho, wo, _ = y.shape
    offsets = [(i, j) for i in range(window[0]) for j in range(window[1])]
    xp = jnp.pad(x, ((0, 0), *pads, (0, 0)), constant_values=-jnp.inf)
    base = len(offsets) + 1
    first = jnp.full(y.shape, len(offsets), jnp.int32)  # no maximum found (NaN): no offset takes the tangent
    for k in reversed(range(len(offsets))):
        first = jnp.where(_window(xp, *offsets[k], ho, wo, strides) == y, k, first)
    c = y.shape[-1]
    pairs = jnp.pad(first, ((0, 0), (0, 0), (0, 0), (0, c % 2))).reshape(*y.shape[:3], -1, 2)
    packed = (pairs * jnp.array([1, base], jnp.int32).reshape(1, 1, 1, 1, 2)).sum(-1)
    return y, jnp.stack([packed % base, packed // base], -1).reshape(*y.shape[:3], -1)[..., :c]


def _phase_planes(t, window, strides, pads, out_hw):
    """The zero-padded ``(B, H, W, C)`` batch as ``strides[0] * strides[1]`` planes ``(B, Hq, Wq, C)``,
    plane ``a * strides[1] + b`` holding the pixels ``(a + strides[0] * q, b + strides[1] * r)``; large
    enough for every window of an ``out_hw`` output."""
    b, h, w, c = jnp.shape(t)
    (sh, sw), (kh, kw) = strides, window
    hq = max(-(-(h + sum(pads[0])) // sh), out_hw[0] + (kh - 1) // sh)
    wq = max(-(-(w + sum(pads[1])) // sw), out_hw[1] + (kw - 1) // sw)
    t = jnp.pad(t, ((0, 0), (pads[0][0], sh * hq - h - pads[0][0]), (pads[1][0], sw * wq - w - pads[1][0]), (0, 0)))
    phases = _split_windows(t, (sh, sw)).transpose(0, 2, 4, 1, 3, 5).reshape(b, sh * sw, hq, wq, c)
    return [p[:, 0] for p in jnp.split(phases, sh * sw, axis=1)]


# ------------------------------------------------------------------------------------ function transform


class _FastOps(J.Interpreter):
    """Re-emits convolutions and NHWC max pooling through this module's lowerings."""

    def wants(self, jaxpr) -> bool:
        return J.any_eqn(jaxpr, lambda e: e.primitive.name in ("conv_general_dilated", "reduce_window_max"))

    def rule(self, eqn, vals, tags):
        p = eqn.params
        if eqn.primitive is lax.conv_general_dilated_p:
            return [conv_general_dilated(*vals, p["window_strides"], p["padding"], p["lhs_dilation"], p["rhs_dilation"],
                                         p["dimension_numbers"], p["feature_group_count"], p["batch_group_count"],
                                         p["precision"], p["preferred_element_type"])]
        if eqn.primitive is lax.reduce_window_max_p:
            dims, st = p["window_dimensions"], p["window_strides"]
            if (len(dims) == 4 and dims[0] == dims[3] == 1 and st[0] == st[3] == 1 and jnp.ndim(vals[0]) == 4
                    and all(d == 1 for d in (*p["base_dilation"], *p["window_dilation"]))
                    and tuple(p["padding"][0]) == tuple(p["padding"][3]) == (0, 0)
                    and jnp.issubdtype(jnp.result_type(vals[0]), jnp.floating)):
                return [max_pool(vals[0], dims[1:3], st[1:3], tuple(tuple(q) for q in p["padding"][1:3]))]
        return None


def with_fast_ops(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` with every convolution and NHWC max pooling computed as :func:`conv_general_dilated` /
    :func:`max_pool` do (also inside ``jit`` bodies); same values, composes with ``jit``/``grad``/``vmap``.

    Example: ``fast = jax.jit(jax.grad(with_fast_ops(loss)))`` for a loss written with plain
    ``lax.conv`` / ``nnx.Conv`` / ``nnx.max_pool``.
    """

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        closed, out_shape = jax.make_jaxpr(fn, return_shape=True)(*args, **kwargs)
        flat = jax.tree.leaves((args, kwargs))
        outs, _ = _FastOps().run(closed.jaxpr, closed.consts, flat, [None] * len(flat))
        return jax.tree.unflatten(jax.tree.structure(out_shape), outs)

    return wrapped


__all__ = ["LOWERINGS", "Lowerings", "avg_pool", "choose_lowering", "choose_lowerings", "conv_blocks", "conv_blocks_apply",
           "conv_general_dilated", "conv_with", "max_pool", "plain_xla", "reverse_only", "unblock", "with_fast_ops"]
