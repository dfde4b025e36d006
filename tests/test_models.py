"""Model registry and the tabular MLP: shapes, layer options, errors."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import pytest
import torch
from torch import nn

from dlpipe import models
from dlpipe.errors import ConfigError
from dlpipe.models import (
    BUILTIN,
    Outline,
    available_models,
    build_model,
    hyperparameter_names,
    model_class,
    outline,
    register_model,
)
from dlpipe.models.mlp import MLP


def _layers(model: nn.Module, kind: type[nn.Module]) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, kind)]


def test_registry_lists_every_family() -> None:
    assert available_models() == ["cnn", "danq", "gnn", "mlp", "resnet", "resnet1d", "smallcnn"]
    assert hyperparameter_names("mlp") == ["hidden_layers", "dropout", "batch_norm", "activation"]


#: Outline of every built-in family as the registry reads it in a process that never imports torch.
_SOURCE_OUTLINES = """
import json, sys
from dlpipe.models import BUILTIN, outline
found = {name: outline(name) for name in BUILTIN}
print(json.dumps({
    "torch_imported": "torch" in sys.modules,
    "outlines": {n: [list(o.hyperparameters), o.any_keyword, o.inputs] for n, o in found.items()},
}))
"""


def test_source_read_outline_equals_the_class_signatures() -> None:
    run = subprocess.run([sys.executable, "-c", _SOURCE_OUTLINES], capture_output=True,
                         text=True, check=False)  # fmt: skip
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["torch_imported"] is False  # read from the class source, not by importing it
    assert set(report["outlines"]) == set(BUILTIN) == set(available_models())
    for name, (hyperparameters, any_keyword, inputs) in report["outlines"].items():
        cls = model_class(name)
        params = list(inspect.signature(cls).parameters.values())
        assert [p.name for p in params[:2]] == ["n_inputs", "n_outputs"]
        expected = [p.name for p in params[2:] if p.kind is not p.VAR_KEYWORD]
        assert hyperparameters == expected, name
        assert any_keyword == any(p.kind is p.VAR_KEYWORD for p in params), name
        assert inputs == cls.inputs, name
        assert inputs in ("features", "sequence", "image", "graph")
        # In-process, the registry gives the same outline.
        assert outline(name) == Outline(tuple(expected), any_keyword, inputs)
        assert hyperparameter_names(name) == expected


def test_classification_mlp_outputs_one_logit_per_class() -> None:
    torch.manual_seed(0)
    model = build_model("mlp", 6, 3, hidden_layers=[16, 8])
    assert isinstance(model, MLP)
    model.eval()
    out = model(torch.randn(10, 6))
    assert out.shape == (10, 3)
    assert out.dtype == torch.float32
    assert [m.out_features for m in _layers(model, nn.Linear)] == [16, 8, 3]


def test_multi_target_regression_mlp_outputs_one_value_per_target() -> None:
    torch.manual_seed(0)
    model = build_model("mlp", 5, 4, hidden_layers=[12])
    model.eval()
    assert model(torch.randn(7, 5)).shape == (7, 4)
    assert model(torch.randn(1, 5)).shape == (1, 4)  # eval-mode batch norm takes one sample


def test_default_mlp_layout() -> None:
    model = build_model("mlp", 20, 2)
    assert [m.out_features for m in _layers(model, nn.Linear)] == [128, 64, 2]
    assert len(_layers(model, nn.BatchNorm1d)) == 2
    dropouts = _layers(model, nn.Dropout)
    assert [d.p for d in dropouts] == [0.3, 0.3]
    assert len(_layers(model, nn.ReLU)) == 2


def test_mlp_without_batch_norm_or_dropout() -> None:
    model = build_model("mlp", 6, 3, hidden_layers=[16, 8], batch_norm=False, dropout=0.0)
    assert _layers(model, nn.BatchNorm1d) == []
    assert _layers(model, nn.Dropout) == []
    # 6*16+16 + 16*8+8 + 8*3+3 weights and biases.
    assert sum(p.numel() for p in model.parameters()) == 275
    with_bn = build_model("mlp", 6, 3, hidden_layers=[16, 8], dropout=0.0)
    assert sum(p.numel() for p in with_bn.parameters()) == 275 + 2 * (16 + 8)
    # Without dropout, training and eval mode give the same outputs.
    x = torch.randn(4, 6)
    model.train()
    first = model(x)
    model.eval()
    torch.testing.assert_close(model(x), first)


def test_dropout_is_active_in_training_mode_only() -> None:
    torch.manual_seed(0)
    model = build_model("mlp", 6, 2, hidden_layers=[64], batch_norm=False, dropout=0.5)
    x = torch.randn(8, 6)
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))


@pytest.mark.parametrize(
    ("name", "kind"), [("relu", nn.ReLU), ("gelu", nn.GELU), ("silu", nn.SiLU)]
)
def test_activation_choice(name: str, kind: type[nn.Module]) -> None:
    model = build_model("mlp", 3, 2, hidden_layers=[4, 4], activation=name)
    assert len(_layers(model, kind)) == 2


def test_unknown_model_name_is_a_config_error() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^config key model.name: 'foo' is not a registered model; choose one of "
        r"cnn, danq, gnn, mlp, resnet, resnet1d, smallcnn, or name a class of your own in "
        r"model.class$",
    ):
        build_model("foo", 6, 2)


def test_unknown_hyperparameter_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as err:
        build_model("mlp", 6, 2, hiden_layers=[8], dropout=0.1)
    assert str(err.value) == (
        "config key model: ['hiden_layers'] are not hyperparameters of 'mlp'; it takes "
        "hidden_layers, dropout, batch_norm, activation"
    )


def test_invalid_mlp_arguments() -> None:
    with pytest.raises(ValueError, match="at least one input and one output"):
        MLP(0, 2)
    with pytest.raises(ValueError, match="activation must be one of"):
        MLP(3, 2, activation="tanh")


def test_sequence_family_maps_codes_to_outputs() -> None:
    torch.manual_seed(0)
    model = build_model("cnn", 4, 2, filters=[8], kernel_sizes=[5])
    model.eval()
    codes = torch.randint(0, 5, (3, 50), dtype=torch.uint8)
    assert model(codes).shape == (3, 2)


def test_registering_a_name_twice_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "_REGISTERED", dict(models._REGISTERED))

    @register_model("tiny")
    class Tiny(nn.Linear):
        pass

    assert "tiny" in available_models()
    assert isinstance(build_model("tiny", 3, 1), Tiny)
    with pytest.raises(ValueError, match="'tiny' is registered twice"):
        register_model("tiny")(Tiny)
    with pytest.raises(ValueError, match="'mlp' is registered twice"):
        register_model("mlp")(Tiny)
