"""Gram-matrix texture synthesis, style transfer and neural doodles as pure functions of any model.

Gatys, Ecker & Bethge (2015, 2016) and Champandard (2016): statistics of feature maps (means, Gram
and covariance matrices, masked per segment), the losses built from them, and image optimisation with
L-BFGS or Adam on any :class:`~jaxviz.models.Model` with layers chosen by name.
"""

from jaxviz.style.doodle import DoodleResult, kmeans_segments, masks_from_colors, neural_doodle, one_hot
from jaxviz.style.features import (
    CONTENT_LAYER,
    DOODLE_LAYERS,
    POOLINGS,
    STYLE_LAYERS,
    TEXTURE_LAYERS,
    Extractor,
    average_pooling,
    check_image_size,
    content_layer,
    doodle_layers,
    extractor,
    features,
    random_weights,
    style_layers,
    texture_layers,
)
from jaxviz.style.optimize import METHODS, Objective, OptimizeResult, optimize_image
from jaxviz.style.stats import (
    STATISTICS,
    content_loss,
    covariance,
    feature_means,
    gram,
    gram_distance,
    layer_style_loss,
    masked_gram,
    masked_means,
    masked_statistic,
    style_loss,
    style_statistic,
    total_variation,
)
from jaxviz.style.texture import TextureResult, disjoint_crops, growing_subsets, statistics, synthesize_texture
from jaxviz.style.transfer import (
    CAT_CLASSES,
    COLOR_MODES,
    INITS,
    TransferResult,
    match_color,
    rgb_to_yiq,
    style_transfer,
    yiq_to_rgb,
)

__all__ = [
    "CAT_CLASSES", "COLOR_MODES", "DOODLE_LAYERS", "DoodleResult", "INITS", "TransferResult", "doodle_layers",
    "kmeans_segments", "masks_from_colors", "match_color", "neural_doodle", "one_hot", "rgb_to_yiq",
    "style_transfer", "yiq_to_rgb",
    "CONTENT_LAYER", "METHODS", "POOLINGS", "STATISTICS", "STYLE_LAYERS", "TEXTURE_LAYERS", "Extractor",
    "Objective", "OptimizeResult", "TextureResult", "average_pooling", "check_image_size", "content_layer",
    "content_loss", "covariance", "disjoint_crops", "extractor", "feature_means", "features", "gram",
    "gram_distance", "growing_subsets", "layer_style_loss", "masked_gram", "masked_means", "masked_statistic",
    "optimize_image", "random_weights", "statistics", "style_layers", "style_loss", "style_statistic",
    "synthesize_texture", "texture_layers", "total_variation",
]
