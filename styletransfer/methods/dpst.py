"""Luan, Paris, Shechtman and Bala (2017), "Deep Photo Style Transfer"."""

from __future__ import annotations

from styletransfer.engine import MethodInput, MethodOutput
from styletransfer.methods import register_method

# Hyper-parameters from deep-photo-styletransfer (Luan et al.): content weight 5, style
# weight 100 (each style layer weight 1), lambda = 1e4, matting epsilon 1e-7, 3x3 windows.
# The original adds lambda * L x (with x in [0, 1]) to the gradient with respect to the
# 0-255 image; with the image in [0, 1] here that equals a loss of 128 * lambda * x^T L x,
# hence photoreal_weight 1.28e6. Its tv weight (1e-3 on 0-255 pixels) is left at 0: the
# Laplacian term already smooths. two_stage runs the first half of the steps without the
# photorealism term (their neuralstyle_seg stage), then the rest with it from that result.
DPST_DEFAULTS = {
    "content_weight": 5.0,
    "style_weight": 100.0,
    "style_layer_weight": 1.0,  # each style layer
    "tv_weight": 0.0,
    "photoreal_weight": 1.28e6,
    "two_stage": False,
}


def dpst(inp: MethodInput) -> list[MethodOutput]:
    """Gatys' objective plus the matting-Laplacian photorealism term, optionally segmented."""
    from styletransfer.methods.neural import run_neural

    return run_neural(inp, photoreal=True, two_stage=bool(inp.config.two_stage))


register_method("dpst", dpst, DPST_DEFAULTS)
