"""Feed-forward generation: networks that make an image in one pass.

* fast style transfer (Johnson, Alahi & Fei-Fei 2016; Ulyanov et al. 2016): a transformer network
  trained with perceptual losses;
* checkerboard artifacts of transposed convolutions and their remedy, resize-convolution (Odena,
  Dumoulin & Olah 2016), as a switch of every network here and a score.
"""

from jaxviz.generate.checkerboard import checkerboard_score
from jaxviz.generate.images import CONTENT_PHOTOS, ImageSource, content_images
from jaxviz.generate.layers import NORMS, UPSAMPLINGS, ConvLayer, Upsample, norm_layer

__all__ = [
    "CONTENT_PHOTOS",
    "NORMS",
    "UPSAMPLINGS",
    "ConvLayer",
    "ImageSource",
    "Upsample",
    "checkerboard_score",
    "content_images",
    "norm_layer",
]
