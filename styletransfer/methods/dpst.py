"""Luan, Paris, Shechtman and Bala (2017), "Deep Photo Style Transfer"."""

from __future__ import annotations

from styletransfer.engine import MethodInput, MethodOutput

# Its hyper-parameters: styletransfer.registry.DpstDefaults.


def dpst(inp: MethodInput) -> list[MethodOutput]:
    """Gatys' objective plus the matting-Laplacian photorealism term, optionally segmented."""
    from styletransfer.methods.neural import run_neural

    return run_neural(inp, photoreal=True, two_stage=bool(inp.config.two_stage))
