"""Luan, Paris, Shechtman and Bala (2017), "Deep Photo Style Transfer"."""

from __future__ import annotations

import dataclasses

from styletransfer.engine import MethodInput, MethodOutput

# Its hyper-parameters: styletransfer.registry.DpstDefaults. Its options (``extra``):
# styletransfer.options.AutoMaskOptions.


def dpst(inp: MethodInput) -> list[MethodOutput]:
    """Gatys' objective plus the matting-Laplacian photorealism term, segmented.

    The segments are the masks when given; without them (``auto_masks`` 1, the default) they
    are found by matching the photos' VGG19 features (``styletransfer.correspond``), as the
    paper's authors found theirs with a scene segmenter, so that the style of the sky goes
    to the sky; with ``auto_masks`` 0 the style loss is one global term.
    """
    from styletransfer.methods.automask import auto_masks, match_options
    from styletransfer.methods.neural import run_neural
    from styletransfer.options import AutoMaskOptions

    opts = AutoMaskOptions.from_extra(inp.config.extra, "dpst")
    two_stage = bool(inp.config.two_stage)
    if inp.masks is not None or not opts.auto_masks or opts.segments <= 1 or not inp.styles:
        outputs = run_neural(inp, photoreal=True, two_stage=two_stage)
        source = "given" if inp.masks is not None else "none"
        return [dataclasses.replace(out, mask_source=source) for out in outputs]
    outputs = []
    for i in range(inp.contents.shape[0]):
        masks, key = auto_masks(inp, i, match_options(opts))
        one = dataclasses.replace(
            inp,
            contents=inp.contents[i : i + 1],
            content_keys=inp.content_keys[i : i + 1],
            masks=[masks],
            mask_keys=[key],
        )
        outputs += [
            dataclasses.replace(out, mask_source="auto")
            for out in run_neural(one, photoreal=True, two_stage=two_stage)
        ]
    return outputs
