"""Feature visualisation: what a neuron, a channel, a layer or a class "wants to see".

Lucid's method in JAX (Olah, Mordvintsev & Schubert, "Feature Visualization", Distill 2017):
Fourier and colour-decorrelated image parameterisations (:mod:`.param`), transformation robustness
(:mod:`.transforms`), switchable regularisers (:mod:`.regularisers`), composable objectives
(:mod:`.objectives`) and one compiled optax render step (:func:`render`); class images (Simonyan et
al. 2014), DeepDream with octaves (:func:`deepdream`), channel atlases and semantic dictionaries.

Example::

    import jax
    from jaxviz.models import squeezenet
    from jaxviz import featureviz as fv

    model = squeezenet()
    result = fv.render(model, fv.channel("fire6", [0, 1, 2, 3]), fv.image_param(96, batch=4),
                       key=jax.random.key(0), steps=256)
    result.images            # (4, 96, 96, 3) in [0, 1]
"""

from jaxviz.featureviz import transforms
from jaxviz.featureviz.atlas import (
    SemanticDictionary,
    channel_atlas,
    dictionary_figure,
    semantic_dictionary,
)
from jaxviz.featureviz.classes import (
    ClassImages,
    class_images,
    probability,
    quantise,
    robust_probability,
)
from jaxviz.featureviz.dream import DreamResult, deepdream
from jaxviz.featureviz.objectives import (
    Features,
    Objective,
    channel,
    class_logit,
    class_prob,
    direction,
    diversity,
    interpolate,
    layer,
    neuron,
    weighted,
)
from jaxviz.featureviz.param import (
    COLOUR_CORRELATION_SQRT,
    Param,
    fft_frequencies,
    image_param,
    pixel_param,
)
from jaxviz.featureviz.regularisers import (
    PatchPrior,
    Regularisers,
    fit_patch_prior,
    l1,
    l2,
    patch_prior,
    prior_energy,
    total_variation,
)
from jaxviz.featureviz.render import RenderResult, adam, features, render, score

__all__ = [
    "COLOUR_CORRELATION_SQRT",
    "ClassImages",
    "DreamResult",
    "Features",
    "Objective",
    "Param",
    "PatchPrior",
    "Regularisers",
    "RenderResult",
    "SemanticDictionary",
    "adam",
    "channel",
    "channel_atlas",
    "class_images",
    "class_logit",
    "class_prob",
    "deepdream",
    "dictionary_figure",
    "direction",
    "diversity",
    "features",
    "fft_frequencies",
    "fit_patch_prior",
    "image_param",
    "interpolate",
    "l1",
    "l2",
    "layer",
    "neuron",
    "patch_prior",
    "pixel_param",
    "prior_energy",
    "probability",
    "quantise",
    "render",
    "robust_probability",
    "score",
    "semantic_dictionary",
    "total_variation",
    "transforms",
    "weighted",
]
