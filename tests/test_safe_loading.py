"""The allow-listed unpickler: hostile pickles are refused before anything runs; real ones load."""
from __future__ import annotations

import builtins
import os
import zipfile
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

import model_factories
from pipeline import safe_pickle
from pipeline.model_loading import ModelLoadError, load_model
from pipeline.safe_pickle import UnsafePickleError, safe_torch_load
from tests import roundfixtures as rf


class _RunsShell:
    """Unpickling this would run a shell command that creates ``self.sentinel``."""

    def __init__(self, sentinel: Path):
        self.sentinel = sentinel

    def __reduce__(self):
        return os.system, (f"touch {self.sentinel}",)


class _Evals:
    def __reduce__(self):
        return builtins.eval, ("__import__('os').getpid()",)


def test_os_system_pickle_is_refused_and_runs_nothing(tmp_path: Path) -> None:
    sentinel = tmp_path / "pwned"
    path = rf.save_pickle(_RunsShell(sentinel), tmp_path / "model.pt")
    with pytest.raises(ModelLoadError) as info:
        load_model(path)
    message = str(info.value)
    assert str(path) in message
    assert f"{os.system.__module__}.system" in message  # 'posix.system' on Linux
    assert isinstance(info.value.__cause__, UnsafePickleError)
    assert not sentinel.exists()


def test_the_sentinel_would_have_been_created_by_a_plain_load(tmp_path: Path) -> None:
    """Proves the previous test's pickle is live: an unguarded load does run the command."""
    sentinel = tmp_path / "pwned"
    path = rf.save_pickle(_RunsShell(sentinel), tmp_path / "model.pt")
    torch.load(path, weights_only=False)
    assert sentinel.exists()


def test_builtins_eval_is_refused(tmp_path: Path) -> None:
    path = rf.save_pickle(_Evals(), tmp_path / "evil.pt")
    with pytest.raises(UnsafePickleError) as info:
        safe_torch_load(str(path))
    assert "eval" in str(info.value) and str(path) in str(info.value)


@pytest.mark.parametrize("module,name", [("torchvision.datasets", "MNIST"), ("torchvision", "datasets"),
                                         ("numpy", "memmap"), ("transformers.trainer", "Trainer"), ("subprocess", "Popen"),
                                         ("torch.hub", "load"), ("torch", "load"), ("builtins", "exec"),
                                         ("torch", "os"), ("torch", "_utils")])
def test_dangerous_globals_are_refused(module: str, name: str) -> None:
    """Classes that download or write files, loader functions and module objects, even when re-exported."""
    with pytest.raises(UnsafePickleError) as info:
        safe_pickle.resolve_global(module, name)
    assert f"{module}.{name}" in str(info.value)


@pytest.mark.parametrize("owner,name", [("torch", "os"), ("torchvision", "datasets"), ("torch", "load"),
                                        ("transformers.BertModel", "from_pretrained")])
def test_pickled_getattr_is_held_to_the_same_rules(owner: str, name: str) -> None:
    """Pickles reach attributes through ``builtins.getattr``; that path must not open a back door."""
    import importlib

    module_name, _, attr = owner.partition(".")
    obj = importlib.import_module(module_name)
    obj = getattr(obj, attr) if attr else obj
    with pytest.raises(UnsafePickleError):
        safe_pickle._safe_getattr(obj, name)


def test_kernel_mode_enum_of_new_transformers_is_admitted_and_nothing_else_from_kernels() -> None:
    """transformers >= 5 pickles a ``kernels`` Mode flag inside every model; the rest of ``kernels`` stays refused."""
    mode = pytest.importorskip("kernels._internals.layer.mode")
    assert safe_pickle.resolve_global(mode.__name__, "Mode") is mode.Mode
    for name in ("kernelize", "get_kernel"):
        with pytest.raises(UnsafePickleError):
            safe_pickle.resolve_global("kernels", name)


def test_getattr_still_reaches_harmless_attributes() -> None:
    assert safe_pickle._safe_getattr(torch, "float32") is torch.float32
    assert safe_pickle._safe_getattr(torch.nn, "Linear") is nn.Linear


def _forward_shape(model: nn.Module, example: torch.Tensor) -> tuple[int, ...]:
    with torch.no_grad():
        out = model(example)
    return tuple((out[1] if isinstance(out, tuple) else out).shape)


@pytest.mark.parametrize("build,example,classes", [
    (lambda: torchvision.models.shufflenet_v2_x0_5(num_classes=3), torch.rand(2, 3, 32, 32), 3),
    (lambda: torchvision.models.squeezenet1_1(num_classes=4), torch.rand(2, 3, 64, 64), 4),
    (lambda: torchvision.models.googlenet(num_classes=5, aux_logits=False, init_weights=False),
     torch.rand(1, 3, 64, 64), 5),
    (lambda: rf.tiny_sentiment_model("LstmLinear"), torch.rand(2, 1, 16), 2),
    (lambda: rf.tiny_sentiment_model("GruLinear"), torch.rand(2, 1, 16), 2),
    (lambda: rf.tiny_sentiment_model("FCLinear"), torch.rand(2, 1, 16), 2),
    (lambda: rf.tiny_ner_model(7), torch.tensor([[2, 10, 11, 12, 13, 3]]), 7),
], ids=["shufflenet", "squeezenet", "googlenet", "lstm", "gru", "fc", "ner-bert"])
def test_real_model_pickles_load_and_give_the_same_outputs(tmp_path: Path, build, example, classes: int) -> None:
    torch.manual_seed(0)
    original = build().eval()
    path = rf.save_pickle(original, tmp_path / "model.pt")
    loaded = load_model(path)
    assert type(loaded) is type(original) and not loaded.training
    assert _forward_shape(loaded, example)[-1] == classes
    with torch.no_grad():
        a, b = original(example), loaded(example)
    a, b = (a[1], b[1]) if isinstance(a, tuple) else (a, b)
    torch.testing.assert_close(a, b)


def test_fixture_round_models_all_load(tmp_path: Path) -> None:
    """Every model.pt the layout builders write goes through load_model with the scanned class count."""
    from manifests import scan_round

    rf.make_r6_round(tmp_path / "r6")
    rf.make_r7_round(tmp_path / "r7")
    for root in (tmp_path / "r6", tmp_path / "r7"):
        for row in scan_round(root):
            model = load_model(row["model_file"])
            out_features = model.classifier.out_features if row["task"] == "ner" else model.linear.out_features
            assert out_features == row["num_classes"]


@pytest.mark.parametrize("make", [lambda d: rf.bert_tokenizer(d),
                                  lambda d: rf.bert_tokenizer(d) and __import__("transformers").BertTokenizerFast(
                                      str(d / "vocab.txt"))],
                         ids=["slow", "fast"])
def test_tokenizer_pickles_load(tmp_path: Path, make) -> None:
    tokenizer = make(tmp_path)
    path = rf.save_pickle(tokenizer, tmp_path / "BERT-bert-base-uncased.pt")
    loaded = safe_torch_load(str(path))
    assert type(loaded) is type(tokenizer)
    text = "the movie was good"
    assert loaded(text)["input_ids"] == tokenizer(text)["input_ids"]
    assert loaded.tokenize("john lives in paris") == ["john", "lives", "in", "paris"]


def test_regex_pattern_pickles_load(tmp_path: Path) -> None:
    """Slow GPT-2 tokenizers (rounds 5/6) pickle a compiled ``regex`` pattern."""
    import regex

    pattern = regex.compile(r"""'s|'t| ?\p{L}+| ?\p{N}+""")
    path = rf.save_pickle({"pat": pattern}, tmp_path / "tok.pt")
    loaded = safe_torch_load(str(path))["pat"]
    assert loaded.findall("it's 42 cats") == pattern.findall("it's 42 cats")


def test_embedding_pickle_loads(tmp_path: Path) -> None:
    torch.manual_seed(0)
    bert = rf.tiny_bert()
    path = rf.save_pickle(bert, tmp_path / "DistilBERT-distilbert-base-uncased.pt")
    loaded = load_model(path)
    ids = torch.tensor([[2, 5, 6, 7, 8, 3]])
    torch.testing.assert_close(loaded(ids)[0], bert(ids)[0])


# --- MobileNetV2 pickled by torchvision <= 0.8 (TROJAI-FORMAT.md §6.3 hazard 2) ---------------------


def _old_mobilenet_pickle(path: Path, monkeypatch: pytest.MonkeyPatch) -> nn.Module:
    """Write a MobileNetV2 whose blocks pickle as ``torchvision.models.mobilenet.{ConvBNReLU,InvertedResidual}``.

    The old names are registered on the module only while saving, exactly what a 2020 torchvision had.
    """
    import torchvision.models.mobilenet as old_module
    from torchvision.models import mobilenetv2
    from torchvision.ops.misc import Conv2dNormActivation

    old_conv = type("ConvBNReLU", (nn.Sequential,), {"__module__": old_module.__name__})
    old_block = type("InvertedResidual", (mobilenetv2.InvertedResidual,), {"__module__": old_module.__name__})
    monkeypatch.setattr(old_module, "ConvBNReLU", old_conv, raising=False)
    monkeypatch.setattr(old_module, "InvertedResidual", old_block, raising=False)
    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v2(num_classes=3).eval()
    for module in model.modules():
        if type(module) is Conv2dNormActivation:
            module.__class__ = old_conv
        elif type(module) is mobilenetv2.InvertedResidual:
            module.__class__ = old_block
    rf.save_pickle(model, path)
    monkeypatch.delattr(old_module, "ConvBNReLU")
    monkeypatch.delattr(old_module, "InvertedResidual")
    return model


def test_mobilenet_convbnrelu_compat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "model.pt"
    original = _old_mobilenet_pickle(path, monkeypatch)
    with zipfile.ZipFile(path) as zf:
        data = zf.read(next(n for n in zf.namelist() if n.endswith("data.pkl")))
    assert b"torchvision.models.mobilenet" in data and b"ConvBNReLU" in data
    with pytest.raises(AttributeError, match="ConvBNReLU"):  # what current torchvision does with it
        torch.load(path, weights_only=False)

    loaded = load_model(path)
    kinds = {type(m) for m in loaded.modules()}
    assert safe_pickle.ConvBNReLU in kinds
    assert torchvision.models.mobilenetv2.InvertedResidual in kinds
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), original(x))


# --- load_model's own errors -----------------------------------------------------------------------


def test_missing_empty_and_non_module_files(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="not found"):
        load_model(tmp_path / "absent.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(ModelLoadError, match="empty"):
        load_model(tmp_path / "empty.pt")
    path = rf.save_pickle({"weights": torch.zeros(2)}, tmp_path / "state.pt")
    with pytest.raises(ModelLoadError, match="nn.Module"):
        load_model(path)
    (tmp_path / "garbage.pt").write_bytes(b"not a pickle at all")
    with pytest.raises(ModelLoadError) as info:
        load_model(tmp_path / "garbage.pt")
    assert str(tmp_path / "garbage.pt") in str(info.value)


def test_old_inception_without_newer_attributes_runs(tmp_path: Path) -> None:
    """pytorch/vision#2923: an Inception3 pickled before ``maxpool1``/``dropout``/``AuxLogits`` existed."""
    torch.manual_seed(0)
    model = torchvision.models.inception_v3(num_classes=3, aux_logits=False, init_weights=False).eval()
    for name in ("maxpool1", "maxpool2", "avgpool", "dropout", "AuxLogits"):
        model._modules.pop(name, None)
    model.__dict__.pop("aux_logits", None)
    path = rf.save_pickle(model, tmp_path / "model.pt")
    loaded = load_model(path)
    with torch.no_grad():
        assert loaded(torch.rand(1, 3, 96, 96)).shape == (1, 3)


def test_model_factories_heads_match_nist_attribute_names() -> None:
    """Real round 5-7 pickles restore these attributes; forward() must use exactly them."""
    lstm = model_factories.LstmLinearModel(4, 3, 2)
    assert set(lstm._modules) == {"rnn", "linear", "dropout"}
    fc = model_factories.FCLinearModel(4, 3, 2, relu=False)
    assert set(fc._modules) == {"fc_layers", "linear", "dropout"}
    ner = rf.tiny_ner_model(5)
    assert set(ner._modules) == {"transformer", "dropout", "classifier"}
    assert (ner.num_labels, ner.ignore_index) == (5, -100)
