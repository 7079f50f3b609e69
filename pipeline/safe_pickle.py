"""An allow-listed unpickler for ``torch.load(..., weights_only=False)``.

TrojAI ``model.pt`` files are whole pickled modules, so ``weights_only=True`` cannot load them, and a
plain ``weights_only=False`` load executes whatever the file asks for. This module is passed as
``pickle_module`` to ``torch.load``: every global a pickle references goes through ``find_class``,
which admits classes from the model libraries, a short list of tensor-rebuild functions, and nothing
else. Old torchvision names moved since 2021 are mapped here too (TROJAI-FORMAT.md §6.3).
"""
from __future__ import annotations

import enum
import pickle
import types
from typing import Any

import torch
from torch import nn

# Roots whose *classes* may be instantiated by a pickle.
_CLASS_ROOTS = ("torch", "torchvision", "transformers", "tokenizers", "collections", "numpy", "regex",
                "model_factories")

# Sub-modules of those roots that can reach the file system, the network or a compiler.
_DENIED_MODULES = ("torch.hub", "torch.utils.cpp_extension", "torch.package", "torch.jit", "torch._dynamo",
                   "torch.distributed", "torch.multiprocessing", "torch.utils.data", "torch.serialization",
                   "torch.storage", "torch.ops", "torch._ops", "torch.testing", "torch.compiler",
                   "transformers.utils.hub", "transformers.commands", "transformers.trainer",
                   "numpy.testing", "numpy.f2py", "numpy.distutils", "numpy.lib.npyio",
                   # classes whose constructors download, write files or register code
                   "torchvision.datasets", "torchvision.io", "torch.utils.tensorboard", "torch.profiler",
                   "torch.library", "numpy.core.memmap", "numpy._core.memmap", "transformers.pipelines",
                   "transformers.trainer", "transformers.training_args", "transformers.integrations",
                   "transformers.data")

# Classes re-exported under an allowed name whose constructors write files: (real module, qualname).
_DENIED_CLASSES = {("numpy", "memmap")}

# Enum classes outside those roots that models made by the model libraries carry as plain data: transformers
# >= 5 (with its ``kernels`` dependency) pickles a kernel ``Mode`` flag inside every model it builds.
# Admitted only while they are enums, whose reconstruction is a lookup of a member by value.
_ENUM_CLASSES = {("kernels._internals.layer.mode", "Mode")}

# Plain functions a model pickle legitimately references.
_FUNCTION_MODULES = ("torch._utils", "torch._tensor", "torch.nn.parameter", "torch.nn.functional",
                     "torch._C._nn", "transformers.activations", "numpy.core.multiarray",
                     "numpy._core.multiarray", "numpy.core.numeric", "numpy._core.numeric")
_FUNCTIONS = {("_codecs", "encode"), ("copyreg", "_reconstructor"), ("torch", "tanh"), ("torch", "relu"),
              ("torch", "sigmoid"), ("math", "sqrt"),
              # compiled patterns inside slow tokenizers (GPT-2 of rounds 5/6 pickles a ``regex`` pattern)
              ("regex._regex", "compile"), ("re", "_compile")}
_BUILTINS = {"set", "frozenset", "slice", "range", "complex", "bytearray", "object", "dict", "list", "tuple",
             "int", "float", "bool", "str", "bytes", "getattr"}


class ConvBNReLU(nn.Sequential):
    """torchvision <= 0.8 MobileNetV2 block; removed from torchvision, kept so round 2-4 pickles load."""


def _compat_classes() -> dict[tuple[str, str], Any]:
    from torchvision.models import mobilenetv2

    return {
        ("torchvision.models.mobilenet", "ConvBNReLU"): ConvBNReLU,
        ("torchvision.models.mobilenetv2", "ConvBNReLU"): ConvBNReLU,
        ("torchvision.models.mobilenet", "InvertedResidual"): mobilenetv2.InvertedResidual,
        ("torchvision.models.mobilenet", "MobileNetV2"): mobilenetv2.MobileNetV2,
        ("torchvision.models.mobilenet", "_make_divisible"): mobilenetv2._make_divisible,
    }


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle referenced a global outside the allow-list; nothing from it was executed."""

    def __init__(self, module: str, name: str, path: str | None = None):
        self.module, self.name, self.path = module, name, path
        where = f" in {path}" if path else ""
        super().__init__(f"refused to load{where}: it asks for global '{module}.{name}', which is not on "
                         f"the allow-list (only model classes from torch/torchvision/transformers/"
                         f"model_factories may be unpickled)")


def _under(module: str, roots: tuple[str, ...]) -> bool:
    return any(module == r or module.startswith(r + ".") for r in roots)


def _safe_getattr(obj: Any, name: str) -> Any:
    """``getattr`` as pickles use it for enum members / methods.

    Held to the same rules as globals: no module objects (they lead to ``os``/``subprocess``), classes
    only from the model libraries, functions only from the tensor-rebuild modules.
    """
    value = getattr(obj, name)
    if _allowed_value(value):
        return value
    raise UnsafePickleError(getattr(obj, "__module__", None) or type(obj).__module__,
                            f"{getattr(obj, '__name__', type(obj).__name__)}.{name}")


def _allowed_class(cls: type) -> bool:
    """A class is admitted by where it is defined, so re-exports cannot smuggle in denied ones."""
    if cls in _compat_classes().values() or _is_allowed_enum(cls):
        return True
    module = getattr(cls, "__module__", "") or ""
    if module in ("builtins",):
        return cls.__name__ in _BUILTINS
    return (_under(module, _CLASS_ROOTS) and not _under(module, _DENIED_MODULES)
            and (module, cls.__qualname__) not in _DENIED_CLASSES)


def _is_allowed_enum(cls: type) -> bool:
    return ((getattr(cls, "__module__", ""), getattr(cls, "__qualname__", "")) in _ENUM_CLASSES
            and issubclass(cls, enum.Enum))


def _allowed_value(value: Any) -> bool:
    if isinstance(value, types.ModuleType):
        return False
    if isinstance(value, type):
        return _allowed_class(value)
    return not callable(value) or _is_allowed_callable(value)


def _is_allowed_callable(value: Any) -> bool:
    module = getattr(value, "__module__", "") or ""
    return _under(module, _FUNCTION_MODULES) and not _under(module, _DENIED_MODULES)


def resolve_global(module: str, name: str) -> Any:
    """The allow-list decision for one global; raises UnsafePickleError when refused."""
    compat = _compat_classes().get((module, name))
    if compat is not None:
        return compat
    if module in ("builtins", "__builtin__") and name in _BUILTINS:
        return _safe_getattr if name == "getattr" else getattr(__import__("builtins"), name)
    if (module, name) in _FUNCTIONS:
        return pickle.Unpickler.find_class(_PLAIN, module, name)
    if (module, name) in _ENUM_CLASSES:
        value = pickle.Unpickler.find_class(_PLAIN, module, name)
        if isinstance(value, type) and _is_allowed_enum(value):
            return value
        raise UnsafePickleError(module, name)
    if not _under(module, _CLASS_ROOTS) or _under(module, _DENIED_MODULES):
        raise UnsafePickleError(module, name)
    value = pickle.Unpickler.find_class(_PLAIN, module, name)
    if isinstance(value, types.ModuleType):
        raise UnsafePickleError(module, name)
    if isinstance(value, type):
        if _allowed_class(value):  # by where it is defined: re-exports cannot bypass the denied modules
            return value
        raise UnsafePickleError(module, name)
    if not callable(value) or module in _FUNCTION_MODULES or _is_allowed_callable(value):
        return value  # dtypes, enum members, constants, tensor-rebuild functions
    raise UnsafePickleError(module, name)


class Unpickler(pickle.Unpickler):
    """Drop-in ``pickle.Unpickler`` whose ``find_class`` enforces the allow-list."""

    path: str | None = None

    def find_class(self, module: str, name: str) -> Any:
        try:
            return resolve_global(module, name)
        except UnsafePickleError as exc:
            raise UnsafePickleError(exc.module, exc.name, self.path) from None


class _Plain(pickle.Unpickler):
    def __init__(self) -> None:  # only used for its find_class
        pass


_PLAIN = _Plain()


def pickle_module_for(path: str) -> types.ModuleType:
    """A module object usable as ``torch.load(pickle_module=...)`` whose errors name ``path``."""

    class _PathUnpickler(Unpickler):
        pass

    _PathUnpickler.path = path
    mod = types.ModuleType("seam_safe_pickle")
    mod.Unpickler = _PathUnpickler  # type: ignore[attr-defined]
    mod.load = lambda f, **kw: _PathUnpickler(f, **kw).load()  # type: ignore[attr-defined]
    mod.__dict__["UnpicklingError"] = pickle.UnpicklingError
    return mod


def safe_torch_load(path: str, map_location: Any = "cpu") -> Any:
    """``torch.load`` of an untrusted whole-model pickle through the allow-list."""
    return torch.load(path, map_location=map_location, weights_only=False, pickle_module=pickle_module_for(str(path)))
