"""Feed-forward generation: networks that make an image in one pass.

* fast style transfer (Johnson, Alahi & Fei-Fei 2016; Ulyanov et al. 2016): a transformer network
  trained with perceptual losses;
* checkerboard artifacts of transposed convolutions and their remedy, resize-convolution (Odena,
  Dumoulin & Olah 2016), as a switch of every network here and a score;
* images from features (Dosovitskiy, Springenberg & Brox 2015): an up-convolutional generator from
  an item's identity and transformation parameters to its image and mask.
"""

from jaxviz.generate.checkerboard import checkerboard_score
from jaxviz.generate.from_features import (
    GENERATOR_DATASETS,
    TRANSFORMS,
    Arithmetic,
    Evaluation,
    GeneratorConfig,
    GeneratorResult,
    Holdout,
    Items,
    Ranges,
    Rendered,
    UpConvGenerator,
    arithmetic,
    checkerboard_figure,
    checkerboard_study,
    decode_hidden,
    evaluate_generator,
    generate,
    generator_tour,
    hidden_features,
    morph_figure,
    render_items,
    sample_transforms,
    select_items,
    sweep_figure,
    train_generator,
)
from jaxviz.generate.images import CONTENT_PHOTOS, ImageSource, content_images
from jaxviz.generate.layers import NORMS, UPSAMPLINGS, ConvLayer, Upsample, norm_layer

__all__ = [
    "CONTENT_PHOTOS",
    "GENERATOR_DATASETS",
    "NORMS",
    "TRANSFORMS",
    "UPSAMPLINGS",
    "Arithmetic",
    "ConvLayer",
    "Evaluation",
    "GeneratorConfig",
    "GeneratorResult",
    "Holdout",
    "ImageSource",
    "Items",
    "Ranges",
    "Rendered",
    "UpConvGenerator",
    "Upsample",
    "arithmetic",
    "checkerboard_figure",
    "checkerboard_score",
    "checkerboard_study",
    "content_images",
    "decode_hidden",
    "evaluate_generator",
    "generate",
    "generator_tour",
    "hidden_features",
    "morph_figure",
    "norm_layer",
    "render_items",
    "sample_transforms",
    "select_items",
    "sweep_figure",
    "train_generator",
]
