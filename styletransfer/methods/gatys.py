"""Gatys, Ecker and Bethge (2016), "Image Style Transfer Using Convolutional Neural Networks"."""

from __future__ import annotations

from styletransfer.engine import MethodInput, MethodOutput
from styletransfer.methods import register_method

# Hyper-parameters: layers from Gatys et al. 2016 (content conv4_2 -> relu4_2 here; style
# relu1_1..relu5_1, each layer weight 1), content/style weights 5 and 100 from jcjohnson's
# neural-style, whose loss normalisation (Gram / C*H*W, mean squared error, Caffe 0-255
# features) these losses share. No total variation, as in the paper.
GATYS_DEFAULTS = {
    "content_weight": 5.0,
    "style_weight": 100.0,
    "style_layer_weight": 1.0,  # each style layer
    "tv_weight": 0.0,
    "photoreal_weight": 0.0,
}


def gatys(inp: MethodInput) -> list[MethodOutput]:
    """Optimise the image against content and (blended) style targets."""
    from styletransfer.methods.neural import run_neural

    return run_neural(inp, photoreal=False)


register_method("gatys", gatys, GATYS_DEFAULTS)
