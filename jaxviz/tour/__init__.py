"""``jaxviz tour``: the report of what jaxviz shows on the embedded data and weights."""

from jaxviz.tour.attribution import attribution
from jaxviz.tour.classifier import classifier
from jaxviz.tour.core import TourContext, run_tour
from jaxviz.tour.imagenet import imagenet
from jaxviz.tour.inspect import inspect

SECTIONS = (classifier, imagenet, attribution, inspect)

__all__ = ["SECTIONS", "TourContext", "attribution", "classifier", "imagenet", "inspect", "run_tour"]
