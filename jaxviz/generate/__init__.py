"""Feed-forward generation: networks that make an image in one pass.

* fast style transfer (Johnson, Alahi & Fei-Fei 2016; Ulyanov et al. 2016): a transformer network
  trained with perceptual losses;
* checkerboard artifacts of transposed convolutions and their remedy, resize-convolution (Odena,
  Dumoulin & Olah 2016), as a switch of every network here and a score.
"""

from jaxviz.generate.checkerboard import checkerboard_score
from jaxviz.generate.fast_style import (
    FastStyle,
    FastStyleConfig,
    FastStyleResult,
    TransformerNet,
    compare_with_optimisation,
    load_fast_style,
    noise_sensitivity,
    perceptual_losses,
    stylise,
    train_fast_style,
    transformer,
)
from jaxviz.generate.images import CONTENT_PHOTOS, ImageSource, content_images
from jaxviz.generate.layers import NORMS, UPSAMPLINGS, ConvLayer, Upsample, norm_layer

__all__ = [
    "CONTENT_PHOTOS",
    "NORMS",
    "UPSAMPLINGS",
    "ConvLayer",
    "FastStyle",
    "FastStyleConfig",
    "FastStyleResult",
    "ImageSource",
    "TransformerNet",
    "Upsample",
    "checkerboard_score",
    "compare_with_optimisation",
    "content_images",
    "load_fast_style",
    "noise_sensitivity",
    "norm_layer",
    "perceptual_losses",
    "stylise",
    "train_fast_style",
    "transformer",
]
