"""What the harness reads from the classes it is given, declared once with its defaults.

Datamodules, networks and task LightningModules are plain classes that know nothing of the
harness; they say what they are with class attributes (`input_kind: ClassVar[str] = "image"`).
An attribute a class does not set has the default below. `traits(cls_or_object, Traits)` is the
only place these attributes are read.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, TypeVar

# Kinds of input ("image", "tokens") and of target ("class": a class per example; "tokens": the
# tokens of a text corpus).


@dataclass(frozen=True)
class DataTraits:
    input_kind: str | None = None  # what each example is
    target_kind: str = "class"  # what it holds to predict
    has_test_split: bool = True  # Tiny Shakespeare has none


@dataclass(frozen=True)
class ModelTraits:
    input_kind: str | None = None  # what the network takes
    outputs: tuple[str, ...] = ("class",)  # the target kinds it can predict
    bidirectional: bool = False  # each output position sees the positions after it


@dataclass(frozen=True)
class TaskTraits:
    input_kind: str | None = None  # None: any input (rotation needs images)
    target_kind: str = "class"  # what it predicts
    causal: bool = False  # predicts each token from the ones before it


T = TypeVar("T", DataTraits, ModelTraits, TaskTraits)


def traits(obj: Any, kind: type[T]) -> T:
    """The traits a class (or an instance) declares, with the defaults for those it does not."""
    values = {}
    for f in fields(kind):
        value = getattr(obj, f.name, None)
        if value is not None:
            values[f.name] = value
    return kind(**values)


# What a datamodule knows once set up ("fit"), read from the object (these can cost work: dims
# counts blocks of a corpus). dims: the shapes constructors take (num_classes, in_channels,
# vocab_size, pad_index...); mean, std: the normalisation of images (per channel); vocab: the
# vocabulary of text data.


def data_dims(datamodule: Any) -> dict[str, Any]:
    return getattr(datamodule, "dims", None) or {}


def normalisation(datamodule: Any) -> tuple[Any, Any]:
    """(mean, std) per channel, or (None, None) when the data does not say."""
    return getattr(datamodule, "mean", None), getattr(datamodule, "std", None)


def vocabulary(datamodule: Any) -> Any:
    return getattr(datamodule, "vocab", None)
