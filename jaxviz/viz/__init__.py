"""Visualisation: image grids, heatmap colouring and overlays, PNG/figure helpers, HTML reports.

Images are numpy or JAX arrays, HWC (or NHWC for batches), RGB or grey, float in ``[0, 1]`` or
uint8; every function returns numpy arrays. Matplotlib is used only through its Agg canvas.
"""

from jaxviz.viz.heatmaps import colorize, normalize, overlay
from jaxviz.viz.images import as_hwc, figure_to_array, image_grid, save_figure, save_png, to_float, to_uint8
from jaxviz.viz.report import Report, Section

__all__ = [
    "Report",
    "Section",
    "as_hwc",
    "colorize",
    "figure_to_array",
    "image_grid",
    "normalize",
    "overlay",
    "save_figure",
    "save_png",
    "to_float",
    "to_uint8",
]
