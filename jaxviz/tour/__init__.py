"""``jaxviz tour``: the report of what jaxviz shows on the embedded data and weights."""

from jaxviz.tour.classifier import classifier
from jaxviz.tour.core import TourContext, run_tour
from jaxviz.tour.imagenet import imagenet

SECTIONS = (classifier, imagenet)

__all__ = ["SECTIONS", "TourContext", "classifier", "imagenet", "run_tour"]
