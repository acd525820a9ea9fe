"""``jaxviz tour``: the report of what jaxviz shows on the embedded data and weights."""

from jaxviz.tour.attribution import attribution
from jaxviz.tour.classifier import classifier
from jaxviz.tour.core import TourContext, run_tour
from jaxviz.tour.featureviz import featureviz
from jaxviz.tour.imagenet import imagenet

SECTIONS = (classifier, imagenet, attribution, featureviz)

__all__ = ["SECTIONS", "TourContext", "attribution", "classifier", "featureviz", "imagenet", "run_tour"]
