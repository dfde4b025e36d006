"""Image model families: shapes, pretrained weights loaded for real, stem adaptation, freezing."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from dlpipe.errors import ConfigError, InputError
from dlpipe.models import build_model, check_model, outline
from dlpipe.models.pretrained import (
    TORCHVISION_FILES,
    adapt_input_conv,
    depth_of,
    read_state_dict,
)
from dlpipe.models.resnet2d import ResNet2D, imagenet_statistics
from dlpipe.models.smallcnn import SmallCNN

torch.set_num_threads(1)
STAGES = ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4")


def _torchvision_file(path: Path, depth: int = 18, seed: int = 0, channels: int = 3) -> dict:
    """Write a ResNet state dict in torchvision's layout (with a 1000-class ``fc``); return it."""
    torch.manual_seed(seed)
    source = ResNet2D(channels, 2, depth=depth).backbone
    for module in source.modules():  # statistics other than a fresh layer's, to see them copied
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
    state = {k: v.clone() for k, v in source.state_dict().items()}
    width = 2048 if depth == 50 else 512
    state |= {"fc.weight": torch.randn(1000, width), "fc.bias": torch.randn(1000)}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return state


@pytest.mark.parametrize(("depth", "channels"), [(18, 1), (18, 3), (34, 3), (18, 5)])
def test_resnet_gives_one_output_per_class(depth: int, channels: int) -> None:
    model = build_model("resnet", channels, 4, depth=depth).eval()
    with torch.no_grad():
        out = model(torch.rand(2, channels, 32, 32))
    assert out.shape == (2, 4)
    assert model.weights_record is None
    assert all(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("channels", [1, 3])
def test_smallcnn_takes_any_image_size(channels: int) -> None:
    model = build_model("smallcnn", channels, 3, channels=[8, 16], residual_units=1).eval()
    assert isinstance(model, SmallCNN)
    with torch.no_grad():
        assert model(torch.rand(2, channels, 32, 40)).shape == (2, 3)
        assert model(torch.rand(1, channels, 17, 17)).shape == (1, 3)
    plain = build_model("smallcnn", channels, 2, channels=[8], residual_units=0).eval()
    assert plain(torch.rand(2, channels, 16, 16)).shape == (2, 2)


def test_image_families_are_registered_as_image_readers() -> None:
    assert outline("resnet").inputs == "image"
    assert outline("smallcnn").inputs == "image"
    assert "trainable_stages" in outline("resnet").hyperparameters
    check_model("experiments.x.model", {"name": "resnet", "depth": 34}, "image")
    with pytest.raises(ConfigError, match=r"reads image, but this experiment's data are features"):
        check_model("experiments.x.model", {"name": "resnet"}, "features")
    with pytest.raises(ConfigError, match=r"reads features.*use one of resnet, smallcnn"):
        check_model("experiments.x.model", {"name": "mlp"}, "image")


def test_torchvision_weights_load_into_the_backbone_and_the_head_is_new(tmp_path: Path) -> None:
    path = tmp_path / "imagenet.pth"
    state = _torchvision_file(path)
    model = build_model("resnet", 3, 2, depth=18, weights=str(path))
    loaded = model.backbone.state_dict()
    assert set(loaded) == set(state) - {"fc.weight", "fc.bias"}
    for key, value in loaded.items():
        assert torch.equal(value, state[key]), key
    # The head is the task's: two classes, fresh batch norm.
    assert model.head[-1].weight.shape == (2, 512)
    assert torch.equal(model.head[0].running_mean, torch.zeros(512))
    record = model.weights_record.as_dict()
    assert record == {
        "source": str(path),
        "layout": "torchvision/MONAI",
        "loaded": list(STAGES),
        "tensors": len(state) - 2,
        "adapted": {},
        "dropped": ["fc.bias", "fc.weight"],
        "initialised": ["head"],
    }


def test_files_without_step_counters_load(tmp_path: Path) -> None:
    # torchvision's older ImageNet files predate batch norm's num_batches_tracked.
    state = _torchvision_file(tmp_path / "a.pth")
    old = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    torch.save(old, tmp_path / "old.pth")
    model = build_model("resnet", 3, 2, weights=str(tmp_path / "old.pth"))
    assert torch.equal(model.backbone.conv1.weight, state["conv1.weight"])
    assert model.weights_record.tensors == len(old) - 2


def test_rgb_stem_is_adapted_to_other_channel_counts(tmp_path: Path) -> None:
    path = tmp_path / "rgb.pth"
    rgb = _torchvision_file(path)["conv1.weight"]
    grey = build_model("resnet", 1, 2, weights=str(path), input_norm="none").eval()
    assert torch.allclose(grey.backbone.conv1.weight, rgb.sum(dim=1, keepdim=True))
    assert grey.weights_record.adapted == {
        "conv1.weight": "RGB filters summed for 1 input channel(s)"
    }
    five = build_model("resnet", 5, 2, weights=str(path)).backbone.conv1.weight
    assert torch.allclose(five, rgb[:, [0, 1, 2, 0, 1]] * 3 / 5)
    assert torch.allclose(adapt_input_conv(rgb, 3), rgb)
    # A grey image gives the same features through the adapted stem as through the RGB one.
    colour = build_model("resnet", 3, 2, weights=str(path), input_norm="none").eval()
    image = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        expected = colour.backbone(image.expand(-1, 3, -1, -1))
        assert torch.allclose(grey.backbone(image), expected, atol=1e-4)


def test_imagenet_statistics_follow_the_channels() -> None:
    mean, std = imagenet_statistics(3)
    assert torch.allclose(mean, torch.tensor([0.485, 0.456, 0.406]))
    assert torch.allclose(imagenet_statistics(1)[0], mean.mean())
    assert torch.allclose(imagenet_statistics(4)[1], std[[0, 1, 2, 0]])
    model = build_model("resnet", 1, 2).eval()
    raw = build_model("resnet", 1, 2, input_norm="none").eval()
    raw.load_state_dict(model.state_dict())  # the statistics are not weights: same keys
    image = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        standardised = (image - mean.mean()) / std.mean()
        assert torch.allclose(model(image), raw(standardised), atol=1e-5)


def test_known_names_resolve_in_the_torch_hub_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cached = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    with pytest.raises(InputError, match=r"resnet18-f37072fd\.pth is missing.*never downloads"):
        build_model("resnet", 3, 2, weights="imagenet")
    state = _torchvision_file(cached)
    for name in ("imagenet", "resnet18"):
        model = build_model("resnet", 3, 2, weights=name)
        assert model.weights_record.source == str(cached)
        assert torch.equal(model.backbone.layer4[1].conv2.weight, state["layer4.1.conv2.weight"])
    with pytest.raises(ConfigError, match=r"ResNet-34, but model.depth is 18"):
        build_model("resnet", 3, 2, weights="resnet34")
    assert TORCHVISION_FILES[18][0] == cached.name


def test_weights_of_another_depth_are_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "resnet34.pth"
    _torchvision_file(path, depth=34)
    with pytest.raises(InputError) as err:
        build_model("resnet", 3, 2, depth=18, weights=str(path))
    message = str(err.value)
    assert message.startswith(f"{path}: does not fit the ResNet-18 backbone")
    assert "the file holds ResNet-34" in message
    assert "unexpected key(s) (layer1.2.conv1.weight" in message
    state = torch.load(path, weights_only=True)
    del state["conv1.weight"]
    torch.save(state, tmp_path / "no_stem.pth")
    with pytest.raises(InputError, match=r"1 missing key\(s\) \(conv1.weight\)"):
        build_model("resnet", 3, 2, depth=34, weights=str(tmp_path / "no_stem.pth"))


def test_a_stem_of_other_channels_than_rgb_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "two.pth"
    _torchvision_file(path, channels=2)
    with pytest.raises(InputError, match=r"shapes differ: conv1.weight is \[64, 2, 7, 7\]"):
        build_model("resnet", 3, 2, weights=str(path))
    model = build_model("resnet", 2, 2, weights=str(path))  # same channels: loads as is
    assert model.weights_record.adapted == {}


class _RunsCode:
    """An object whose unpickling would create a file (what a malicious weights file does)."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.target,))


def test_a_pickle_that_is_not_weights_only_is_refused(tmp_path: Path) -> None:
    path, ran = tmp_path / "trojan.pth", tmp_path / "ran"
    state = _torchvision_file(tmp_path / "good.pth")
    torch.save({**state, "extra": _RunsCode(ran)}, path)
    with pytest.raises(InputError, match=r"trojan.pth: refused, .* other than tensors \(getattr\)"):
        build_model("resnet", 3, 2, weights=str(path))
    assert not ran.exists()
    (tmp_path / "junk.pth").write_bytes(b"not a weights file")
    with pytest.raises(InputError, match=r"junk.pth: damaged or not a PyTorch weights file"):
        read_state_dict(tmp_path / "junk.pth")
    with pytest.raises(InputError, match=r"missing.pth is not a file"):
        build_model("resnet", 3, 2, weights=str(tmp_path / "missing.pth"))


def test_dlpipe_checkpoints_give_their_backbone(tmp_path: Path) -> None:
    torch.manual_seed(3)
    pretrained = build_model("resnet", 1, 5)
    weights = {f"model.{k}": v for k, v in pretrained.state_dict().items()}
    path = tmp_path / "model.ckpt"
    torch.save({"state_dict": weights, "hyper_parameters": {"n_inputs": 1}}, path)
    model = build_model("resnet", 1, 2, weights=str(path))
    record = model.weights_record
    assert record.layout == "dlpipe"
    assert record.dropped == tuple(sorted(k for k in weights if ".head." in k))
    for key, value in pretrained.backbone.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[key], value), key
    # A plain state dict of the family (a backbone saved after pretraining) loads alike.
    torch.save(pretrained.state_dict(), tmp_path / "plain.pt")
    plain = build_model("resnet", 1, 2, weights=str(tmp_path / "plain.pt"))
    assert plain.weights_record.layout == "dlpipe"
    assert torch.equal(plain.backbone.conv1.weight, pretrained.backbone.conv1.weight)


def _trainable(model: nn.Module) -> set[str]:
    return {name.split(".")[0] if name.startswith("head") else ".".join(name.split(".")[:2])
            for name, p in model.named_parameters() if p.requires_grad}  # fmt: skip


def test_freezing_trains_the_last_stages_and_the_head_only(tmp_path: Path) -> None:
    path = tmp_path / "imagenet.pth"
    _torchvision_file(path)
    assert _trainable(build_model("resnet", 3, 2, weights=str(path))) == {
        *(f"backbone.{s}" for s in STAGES),
        "head",
    }
    assert _trainable(build_model("resnet", 3, 2, weights=str(path), trainable_stages=0)) == {
        "head"
    }
    model = build_model("resnet", 3, 2, weights=str(path), trainable_stages=1)
    assert _trainable(model) == {"backbone.layer4", "head"}
    assert model.frozen == ("conv1", "bn1", "layer1", "layer2", "layer3")
    # Frozen batch norm keeps the weights' statistics while the rest trains.
    model.train()
    assert not model.backbone.layer3.training
    assert model.backbone.layer4.training
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    model(torch.rand(4, 3, 32, 32)).sum().backward()
    after = model.backbone.state_dict()
    assert torch.equal(after["layer3.1.bn2.running_mean"], before["layer3.1.bn2.running_mean"])
    assert torch.equal(after["bn1.running_var"], before["bn1.running_var"])
    assert not torch.equal(after["layer4.1.bn2.running_mean"], before["layer4.1.bn2.running_mean"])
    assert model.backbone.layer3[0].conv1.weight.grad is None
    assert model.backbone.layer4[0].conv1.weight.grad is not None


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"trainable_stages: freezing layers of a randomly"):
        build_model("resnet", 3, 2, trainable_stages=2)
    with pytest.raises(ConfigError, match=r"model.depth: 101 is not one of 18, 34, 50"):
        build_model("resnet", 3, 2, depth=101)
    with pytest.raises(ConfigError, match=r"trainable_stages: 5 is not null or 0-4"):
        build_model("resnet", 3, 2, trainable_stages=5, weights="x")
    with pytest.raises(ConfigError, match=r"input_norm: 'zscore'"):
        build_model("resnet", 3, 2, input_norm="zscore")


def _keys(blocks: tuple[int, ...], convs: int) -> list[str]:
    stages = enumerate(blocks, start=1)
    return [f"layer{s}.{b}.conv{c}.weight"
            for s, n in stages for b in range(n) for c in range(1, convs + 1)]  # fmt: skip


def test_the_depth_of_a_file_is_named_from_its_keys() -> None:
    assert depth_of(_keys((2, 2, 2, 2), 2)) == "ResNet-18"
    assert depth_of(_keys((3, 4, 6, 3), 2)) == "ResNet-34"
    assert depth_of(_keys((3, 4, 6, 3), 3)) == "ResNet-50"
    assert depth_of(_keys((1, 1, 1, 1), 2)) == "a network of 1-1-1-1 blocks per stage"
    assert depth_of(["encoder.0.weight"]) == "no ResNet"


def test_a_fold_model_is_rebuilt_from_its_checkpoint_without_its_weights_file(
    tmp_path: Path,
) -> None:
    from dlpipe.models.checkpoint import load_model, parameter_count

    path = tmp_path / "imagenet.pth"
    _torchvision_file(path, channels=1)
    config = {"name": "resnet", "weights": str(path), "trainable_stages": 1}
    trained = build_model(config, 1, 2)
    state = {f"model.{k}": v for k, v in trained.state_dict().items()}
    ckpt = tmp_path / "model.ckpt"
    hparams = {"model_config": config, "n_inputs": 1, "n_outputs": 2}
    torch.save({"state_dict": state, "hyper_parameters": hparams}, ckpt)
    path.unlink()  # the weights were an initialisation: the checkpoint holds every weight
    model = load_model(ckpt, config)
    assert model.weights_record is None
    assert model.frozen == trained.frozen
    for key, value in trained.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    assert parameter_count(ckpt) == sum(p.numel() for p in trained.parameters() if p.requires_grad)
    with pytest.raises(InputError, match=r"not found|imagenet\.pth"):
        build_model(config, 1, 2)  # outside a checkpoint the file is still read
