"""Feed-forward generation: networks that make an image in one pass.

* fast style transfer (Johnson, Alahi & Fei-Fei 2016; Ulyanov et al. 2016): a transformer network
  trained with perceptual losses;
* arbitrary style transfer (Huang & Belongie 2017): a frozen zoo encoder, adaptive instance
  normalisation and a trained decoder, with style interpolation, the content-style trade-off and
  colour preservation;
* checkerboard artifacts of transposed convolutions and their remedy, resize-convolution (Odena,
  Dumoulin & Olah 2016), as a switch of every network here and a score.
"""

from jaxviz.generate.adain import (
    ENCODERS,
    STYLE_PHOTOS,
    Adain,
    AdainConfig,
    Decoder,
    adain,
    adain_target,
    adain_tour,
    content_features,
    load_adain,
    style_losses,
    style_statistics,
    stylise,
    train_adain,
)
from jaxviz.generate.checkerboard import checkerboard_score
from jaxviz.generate.images import CONTENT_PHOTOS, ImageSource, content_images
from jaxviz.generate.layers import NORMS, UPSAMPLINGS, ConvLayer, Upsample, norm_layer

__all__ = [
    "CONTENT_PHOTOS",
    "ENCODERS",
    "STYLE_PHOTOS",
    "Adain",
    "AdainConfig",
    "Decoder",
    "adain",
    "adain_target",
    "adain_tour",
    "content_features",
    "load_adain",
    "style_losses",
    "style_statistics",
    "stylise",
    "train_adain",
    "NORMS",
    "UPSAMPLINGS",
    "ConvLayer",
    "ImageSource",
    "Upsample",
    "checkerboard_score",
    "content_images",
    "norm_layer",
]
