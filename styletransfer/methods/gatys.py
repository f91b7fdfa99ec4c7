"""Gatys, Ecker and Bethge (2016), "Image Style Transfer Using Convolutional Neural Networks"."""

from __future__ import annotations

from styletransfer.engine import MethodInput, MethodOutput

# Its hyper-parameters: styletransfer.registry.GatysDefaults.


def gatys(inp: MethodInput) -> list[MethodOutput]:
    """Optimise the image against content and (blended) style targets."""
    from styletransfer.methods.neural import run_neural

    return run_neural(inp, photoreal=False)
