"""Inside the network: weights and activations as pictures, which inputs excite a unit most, and
what the feature space looks like. Pure functions of a :class:`~jaxviz.models.Model`; the data-set
scale ones (:func:`top_k`, :func:`features`, :func:`nearest_neighbours`) run compiled batches with
memory bounded by the batch, not by the data set.

* filters: :func:`conv_kernels`, :func:`first_kernel`, :func:`filter_images`, :func:`filter_structure`,
  :func:`random_weights`;
* activations: :func:`activation_maps`, :func:`zero_fraction`, :func:`activation_histograms`;
* top examples: :func:`top_k` (streamed, with argmax positions), :func:`receptive_field` / :func:`receptive_fields` (traced from
  the network), :func:`top_examples` (images and crops), :func:`top_projections` (deconvnet projections of each top unit);
* feature space: :func:`features`, :func:`layer_features`, :func:`pixels`, :func:`nearest_neighbours`, :func:`knn_accuracy`,
  :func:`embed` (t-SNE / PCA), :func:`image_map`;
* the grand tour: :func:`tour_view`, :func:`tour_frames`, :func:`grand_tour_html`, :func:`grand_tour_gif`;
* figures: :mod:`jaxviz.inspect.figures`.
"""

from jaxviz.inspect import figures
from jaxviz.inspect.activations import Histogram, activation_histograms, activation_maps, zero_fraction
from jaxviz.inspect.embed import embed, image_map
from jaxviz.inspect.filters import conv_kernels, filter_images, filter_structure, first_kernel, kernel_of
from jaxviz.inspect.grand_tour import TourView, grand_tour_gif, grand_tour_html, tour_frames, tour_view
from jaxviz.inspect.neighbours import Neighbours, features, knn_accuracy, layer_features, nearest_neighbours, pixels
from jaxviz.inspect.receptive import ReceptiveField, receptive_field, receptive_fields
from jaxviz.inspect.topk import TopK, TopKExamples, crop, top_examples, top_k, top_projections, topk_step
from jaxviz.models.weights import random_weights

__all__ = [
    "Histogram", "Neighbours", "ReceptiveField", "TopK", "TopKExamples", "TourView", "activation_histograms",
    "activation_maps", "conv_kernels", "crop", "embed", "features", "figures", "filter_images", "filter_structure",
    "first_kernel", "grand_tour_gif", "grand_tour_html", "image_map", "kernel_of", "knn_accuracy", "layer_features",
    "nearest_neighbours", "pixels", "random_weights", "receptive_field", "receptive_fields", "top_examples", "top_k", "top_projections", "topk_step",
    "tour_frames", "tour_view", "zero_fraction",
]
