"""Pretrained 2-D ResNet backbones: find the weights file, check it, load it, say what was loaded.

The backbone of :class:`dlpipe.models.resnet2d.ResNet2D` is MONAI's ``ResNet`` built in
torchvision's layout (7×7 stride-2 stem, max pool, 1×1 convolution + batch-norm shortcuts without
bias), so its parameter names are torchvision's: ``conv1.weight``, ``bn1.*``,
``layer1.0.conv1.weight`` … ``layer4.*``, ``fc.*``. Three kinds of file load:

- a torchvision or MONAI ResNet state dict (ImageNet weights as the torch hub caches them); its
  ``fc`` (the 1000 ImageNet classes) is dropped, the task gets a new head;
- a dlpipe checkpoint or state dict of the ``resnet`` family (``model.backbone.*`` or
  ``backbone.*``), e.g. a backbone pretrained by dlpipe on images of the same domain; its head
  is dropped likewise;
- either of them saved from ``DataParallel`` (``module.`` prefixes).

Files are data: they are read with ``torch.load(..., weights_only=True)``, which refuses any
pickled object but tensors and plain containers. Nothing is ever downloaded.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dlpipe.errors import ConfigError, InputError

#: The file names under which torchvision's ImageNet ResNet weights sit in the torch hub cache
#: (``$TORCH_HOME/hub/checkpoints/``), newest first; all share torchvision's key layout.
TORCHVISION_FILES: dict[int, tuple[str, ...]] = {
    18: ("resnet18-f37072fd.pth", "resnet18-5c106cde.pth"),
    34: ("resnet34-b627a593.pth", "resnet34-333f7ec4.pth"),
    50: ("resnet50-11ad3fa6.pth", "resnet50-0676ba61.pth", "resnet50-19c8e357.pth"),
}
#: Residual blocks per stage and block type of each depth (to name the depth of a file).
DEPTHS: dict[tuple[tuple[int, ...], bool], int] = {
    ((2, 2, 2, 2), False): 18,
    ((3, 4, 6, 3), False): 34,
    ((3, 4, 6, 3), True): 50,
    ((3, 4, 23, 3), True): 101,
    ((3, 8, 36, 3), True): 152,
}
#: Keys a state dict may lack: batch norm's step counters (older torchvision files have none).
_OPTIONAL = "num_batches_tracked"
#: Set while a model is rebuilt from a checkpoint whose state dict follows (see
#: :func:`checkpoint_weights_follow`).
_WEIGHTS_FOLLOW: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "dlpipe_weights_follow", default=False
)


@contextlib.contextmanager
def checkpoint_weights_follow() -> Iterator[None]:
    """Build models whose pretrained ``weights`` are an initialisation only, not read again.

    Inside this block a family skips loading its ``model.weights`` file: the fold model is
    being rebuilt from its checkpoint, whose state dict replaces every weight next. Everything
    else the hyperparameters decide (the architecture, frozen stages) is built as in training,
    so parameter counts and the state dict's keys match; the weights file may have moved or
    gone since training without breaking evaluation, prediction or the report.
    """
    token = _WEIGHTS_FOLLOW.set(True)
    try:
        yield
    finally:
        _WEIGHTS_FOLLOW.reset(token)


def weights_follow() -> bool:
    """Whether a checkpoint's state dict will replace the weights of the model being built."""
    return _WEIGHTS_FOLLOW.get()


@dataclass(frozen=True)
class WeightsRecord:
    """What a model took from a weights file, for the report.

    Attributes
    ----------
    source
        The file read.
    layout
        ``torchvision/MONAI`` or ``dlpipe``.
    loaded
        Top-level layers whose weights came from the file (``conv1``, ``bn1``, ``layer1`` …).
    tensors
        How many tensors were copied.
    adapted
        Tensors changed to fit, with how (``conv1.weight`` for another number of channels).
    dropped
        Tensors of the file left out (the source's classification head).
    initialised
        Layers that start from a fresh random initialisation (the task's head).
    """

    source: str
    layout: str
    loaded: tuple[str, ...]
    tensors: int
    adapted: Mapping[str, str]
    dropped: tuple[str, ...]
    initialised: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """Return the record as plain JSON-ready values."""
        out = asdict(self)
        out["adapted"] = dict(self.adapted)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


def hub_checkpoints() -> Path:
    """Return the torch hub cache folder of weights files (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def resolve_weights(weights: str | os.PathLike[str], depth: int) -> Path:
    """Return the weights file a ``weights`` setting names.

    Parameters
    ----------
    weights
        A path to a state dict or checkpoint; or ``imagenet`` or ``resnet{depth}``: torchvision's
        ImageNet weights of that depth in the torch hub cache (see :data:`TORCHVISION_FILES`).
    depth
        The depth of the ResNet the weights are for.

    Raises
    ------
    ConfigError
        If a known name is of another depth.
    InputError
        If the file is not there (nothing is downloaded).
    """
    name = str(weights)
    match = re.fullmatch(r"resnet(\d+)", name)
    if name == "imagenet" or match:
        if match and int(match.group(1)) != depth:
            raise ConfigError(
                f"config key model.weights: {name!r} are the weights of a ResNet-"
                f"{match.group(1)}, but model.depth is {depth}; set depth: {match.group(1)} or "
                f"weights: resnet{depth}"
            )
        if depth not in TORCHVISION_FILES:
            raise ConfigError(f"config key model.weights: no known ImageNet file for depth {depth}")
        folder = hub_checkpoints()
        for file in TORCHVISION_FILES[depth]:
            if (folder / file).is_file():
                return folder / file
        first = TORCHVISION_FILES[depth][0]
        raise InputError(
            f"config key model.weights: {name!r} is not in the torch hub cache ({folder / first} "
            "is missing; TORCH_HOME sets the folder); dlpipe never downloads: fetch "
            f"https://download.pytorch.org/models/{first} where there is internet and copy it "
            "there, or give the path of a weights file"
        )
    path = Path(weights).expanduser()
    if not path.is_file():
        raise InputError(
            f"config key model.weights: {path} is not a file; give the path of a ResNet state "
            f"dict or dlpipe checkpoint, or imagenet (resnet{depth} in the torch hub cache)"
        )
    return path


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read the tensors of a state dict or checkpoint, as data only (``weights_only=True``).

    A checkpoint (a dict with a ``state_dict`` entry: dlpipe, Lightning) gives its state dict.

    Raises
    ------
    InputError
        If the file is missing, damaged, holds pickled objects other than tensors and plain
        containers (refused, never run), or holds no tensors by name.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputError(f"{path}: missing; give the path of a weights file") from None
    except Exception as err:  # noqa: BLE001 - zip, pickle and storage errors of any file
        # torch's message advises loading with weights_only=False, which would run the file's
        # code: the advice is not passed on.
        refused = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        raise InputError(
            f"{path}: refused, it holds pickled objects other than tensors ({refused.group(1)}); "
            "dlpipe reads weights as data only. Save the weights with "
            "torch.save(model.state_dict(), path)"
            if refused
            else f"{path}: damaged or not a PyTorch weights file ({type(err).__name__})"
        ) from None
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not state:
        raise InputError(f"{path}: holds no state dict (named tensors)")
    others = [str(k) for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if others:
        raise InputError(f"{path}: not a state dict; {others[:3]} are not tensors")
    return {str(k): v for k, v in state.items()}


def _strip(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """Drop ``prefix`` from the keys when every key has it."""
    if all(k.startswith(prefix) for k in state):
        return {k.removeprefix(prefix): v for k, v in state.items()}
    return state


def backbone_tensors(
    state: dict[str, torch.Tensor],
) -> tuple[str, dict[str, torch.Tensor], list[str]]:
    """Return the layout of a state dict, its backbone tensors by backbone name, and the rest.

    Lightning's ``model.`` and DataParallel's ``module.`` prefixes are removed; a dlpipe
    ``resnet`` model gives its ``backbone.*``; a torchvision or MONAI ResNet everything but its
    ``fc`` head.
    """
    state = _strip(state, "module.")
    for prefix in ("model.backbone.", "backbone."):
        if any(k.startswith(prefix) for k in state):
            kept = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
            return "dlpipe", kept, sorted(k for k in state if not k.startswith(prefix))
    state = _strip(state, "model.")
    dropped = sorted(k for k in state if k.startswith("fc."))
    return "torchvision/MONAI", {k: v for k, v in state.items() if not k.startswith("fc.")}, dropped


def depth_of(keys: list[str]) -> str:
    """Name the ResNet depth a state dict's keys describe (``ResNet-34``), or their stage sizes."""
    blocks: dict[int, set[int]] = {}
    for key in keys:
        found = re.match(r"layer(\d)\.(\d+)\.", key)
        if found:
            blocks.setdefault(int(found.group(1)), set()).add(int(found.group(2)))
    counts = tuple(len(blocks.get(stage, ())) for stage in (1, 2, 3, 4))
    bottleneck = any(".conv3." in k for k in keys)
    depth = DEPTHS.get((counts, bottleneck))
    if depth:
        return f"ResNet-{depth}"
    if any(counts):
        return f"a network of {'-'.join(map(str, counts))} blocks per stage"
    return "no ResNet"


def adapt_input_conv(weight: torch.Tensor, channels: int) -> torch.Tensor:
    """Fit a stem convolution trained on RGB to ``channels`` input channels.

    One channel gets the sum of the RGB filters; ``channels`` ≠ 3 get the RGB filters repeated
    (R, G, B, R, …) and scaled by ``3 / channels``. Both keep the response to a grey image (the
    same value in every channel) what it was, so the pretrained batch-norm statistics still fit.
    """
    if weight.shape[1] != 3:
        raise ValueError("only a stem trained on 3 (RGB) channels can be adapted")
    if channels == 1:
        return weight.sum(dim=1, keepdim=True)
    index = torch.arange(channels) % 3
    return weight[:, index] * (3.0 / channels)


def _first(items: list[str], sep: str) -> str:
    """Join the first three items, with an ellipsis for more."""
    return sep.join(items[:3]) + (" …" if len(items) > 3 else "")


def load_backbone(backbone: nn.Module, path: str | os.PathLike[str], name: str) -> WeightsRecord:
    """Load a weights file into a ResNet backbone, strictly.

    Parameters
    ----------
    backbone
        MONAI's ``ResNet`` in torchvision's layout, without its ``fc``.
    path
        The weights file (see the module's docstring for what loads).
    name
        What the backbone is, for messages (``ResNet-18``).

    Returns
    -------
    WeightsRecord
        What was loaded, adapted and dropped.

    Raises
    ------
    InputError
        If the file is not data only, or its backbone differs from this one in any key or shape
        (another depth, another network); the message names the file and the differences.
    """
    layout, state, dropped = backbone_tensors(read_state_dict(path))
    target = backbone.state_dict()
    missing = [k for k in target if k not in state and not k.endswith(_OPTIONAL)]
    unexpected = [k for k in state if k not in target]
    adapted: dict[str, str] = {}
    mismatched = []
    for key in [k for k in state if k in target]:
        have, want = tuple(state[key].shape), tuple(target[key].shape)
        if have == want:
            continue
        # Only the channel count of an RGB stem may differ: its filters are adapted.
        same_filters = have[:1] + have[2:] == want[:1] + want[2:]
        if key == "conv1.weight" and same_filters and have[1] == 3:
            state[key] = adapt_input_conv(state[key], want[1])
            how = "summed" if want[1] == 1 else f"repeated and scaled by 3/{want[1]}"
            adapted[key] = f"RGB filters {how} for {want[1]} input channel(s)"
        else:
            mismatched.append(f"{key} is {list(have)} in the file, {list(want)} here")
    if missing or unexpected or mismatched:
        parts = [
            f"{len(keys)} {what} key(s) ({_first(keys, ', ')})"
            for what, keys in (("missing", missing), ("unexpected", unexpected))
            if keys
        ]
        if mismatched:
            parts.append(f"shapes differ: {_first(mismatched, '; ')}")
        raise InputError(
            f"{path}: does not fit the {name} backbone; the file holds {depth_of(list(state))} "
            f"({layout} layout): {', '.join(parts)}. Give weights of a {name} (torchvision or "
            "MONAI state dict, or a dlpipe resnet checkpoint), or set model.depth to the file's"
        )
    backbone.load_state_dict(state, strict=False)  # strict above; step counters may be absent
    loaded = tuple(dict.fromkeys(k.split(".")[0] for k in state))
    return WeightsRecord(str(path), layout, loaded, len(state), adapted, tuple(dropped))


__all__ = [
    "TORCHVISION_FILES",
    "WeightsRecord",
    "adapt_input_conv",
    "backbone_tensors",
    "checkpoint_weights_follow",
    "depth_of",
    "hub_checkpoints",
    "load_backbone",
    "read_state_dict",
    "resolve_weights",
    "weights_follow",
]
