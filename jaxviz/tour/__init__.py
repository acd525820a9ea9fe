"""``jaxviz tour``: the report of what jaxviz shows on the embedded data and weights."""

from jaxviz.tour.core import Classifier, ImageNet, TourContext
from jaxviz.tour.run import SECTIONS, run_tour

__all__ = ["SECTIONS", "Classifier", "ImageNet", "TourContext", "run_tour"]
