"""Attribution: which pixels make the network say "cat"? Every method is a pure, batched, jit-able
function ``method(model_or_fn, x, target, *, ...) -> jax.Array``.

``model_or_fn`` is a :class:`jaxviz.models.contract.Model` or a plain ``f(x) -> (B, classes)`` (layer
methods -- CAMs, unit projections, occlusion activation maps -- need a Model). ``x`` is ``(B, H, W, C)``
pixels, ``target`` an int or ``(B,)`` class indices. Input-space maps are ``(B, H, W, C)``; CAMs,
FullGrad and occlusion maps are ``(B, H, W)``. To ``jax.jit``, pass a Model as an argument (it is a
pytree) and mark options static, e.g. ``jax.jit(grad_cam, static_argnames="layer")``; close over plain
functions with ``functools.partial``. Called outside a trace, a method validates its inputs and runs
as one compiled program cached per shapes and settings.

Multi-sample methods evaluate ``chunk_size`` perturbed copies of the batch as one batch, example-major,
so memory is bounded by the chunk and a batch sharded on its leading axis stays sharded. The default
``chunk_size="auto"`` folds about 16 images into each step on CPU, where larger folded batches run
slower per image, and several copies per step on GPU/TPU.
"""

from jaxviz.attribution import metrics
from jaxviz.attribution._common import reduce_channels
from jaxviz.attribution.cam import grad_cam, grad_cam_plus_plus, guided_grad_cam, layer_gradient, score_cam
from jaxviz.attribution.fullgrad import FullGradTerms, fullgrad, fullgrad_terms
from jaxviz.attribution.gradients import (
    blur_integrated_gradients,
    gaussian_blur,
    gradient,
    gradient_x_input,
    integrated_gradients,
    make_baseline,
    path_nodes,
    smoothgrad,
)
from jaxviz.attribution.modified_backprop import (
    deconvnet,
    deconvnet_rule,
    guided_backprop,
    guided_rule,
    redirected_rule,
    replace_relu_grad,
    unit_projection,
)
from jaxviz.attribution.occlusion import OcclusionMaps, occlusion

__all__ = [
    "FullGradTerms",
    "OcclusionMaps",
    "blur_integrated_gradients",
    "deconvnet",
    "deconvnet_rule",
    "fullgrad",
    "fullgrad_terms",
    "gaussian_blur",
    "grad_cam",
    "grad_cam_plus_plus",
    "gradient",
    "gradient_x_input",
    "guided_backprop",
    "guided_grad_cam",
    "guided_rule",
    "redirected_rule",
    "integrated_gradients",
    "layer_gradient",
    "make_baseline",
    "metrics",
    "occlusion",
    "path_nodes",
    "reduce_channels",
    "replace_relu_grad",
    "score_cam",
    "smoothgrad",
    "unit_projection",
]
