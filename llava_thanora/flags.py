"""Typed flag dataclasses with a docstring per field (as litgpt writes them), for `transformers.HfArgumentParser`.

`documented(cls)` makes `cls` a dataclass whose fields' attribute docstrings become their `--help` text, so each
flag is documented once, next to its type and default. `arguments_from(Config, prefix)` derives the flags of a
method from its own config dataclass (one flag per config field, `--<prefix><name>`, same type, default and
docstring; a field may name its flag with `metadata={"flag": ...}`) and `config_from(args, Config)` builds the
config back, so a method's defaults exist once and nothing is renamed by hand.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
import typing
from types import MappingProxyType
from typing import Any, ClassVar, TypeVar

T = TypeVar("T")
CONFIG_FIELDS = "__config_fields__"  # class attribute of a derived flags class: {flag: config field}


def attribute_docs(cls: type) -> dict[str, str]:
    """`{field: docstring}` from the string literal that follows each annotated attribute in the class bodies of
    `cls` and its bases (nearest class wins). Empty where the source is unavailable."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__[:-1]):
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, after in zip(body, body[1:]):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                    and isinstance(after.value.value, str)):
                docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def documented(cls: type[T]) -> type[T]:
    """Decorator: a dataclass whose fields without an explicit `help` get their attribute docstring as help."""
    if not dataclasses.is_dataclass(cls) or "__dataclass_fields__" not in cls.__dict__:
        cls = dataclasses.dataclass(cls)
    docs = attribute_docs(cls)
    for f in dataclasses.fields(cls):
        if "help" not in f.metadata and f.name in docs:
            f.metadata = MappingProxyType({**f.metadata, "help": docs[f.name]})
    return cls


def arguments_from(config_cls: type, prefix: str, name: str, *, exclude: tuple[str, ...] = (),
                   base: type = object, doc: str = "") -> type:
    """A flags dataclass mirroring `config_cls`: field `f` becomes `<prefix><flag or f>`, with f's type, default
    and docstring. Creating it validates the values by building the config (errors name the flag)."""
    hints = typing.get_type_hints(config_cls)
    docs = attribute_docs(config_cls)
    specs, mapping = [], {}
    for f in dataclasses.fields(config_cls):
        if f.name in exclude:
            continue
        metadata = {"help": docs.get(f.name, "")}  # HfArgumentParser hands every metadata key to argparse
        if f.default is not dataclasses.MISSING:
            spec = dataclasses.field(default=f.default, metadata=metadata)
        else:
            spec = dataclasses.field(default_factory=f.default_factory, metadata=metadata)
        flag = prefix + f.metadata.get("flag", f.name)
        specs.append((flag, hints[f.name], spec))
        mapping[flag] = f.name

    def __post_init__(self) -> None:
        if hasattr(base, "__post_init__"):
            base.__post_init__(self)
        try:
            config_from(self, config_cls)
        except ValueError as err:
            raise ValueError(f"{err} (flags {', '.join('--' + s[0] for s in specs)})") from None

    namespace = {"__post_init__": __post_init__, CONFIG_FIELDS: MappingProxyType(mapping)}
    cls = dataclasses.make_dataclass(name, specs, bases=(base,), namespace=namespace)
    cls.__doc__ = doc or f"Flags of {config_cls.__name__}: one per field, prefixed {prefix!r}."
    return documented(cls)


def config_from(args: Any, config_cls: type[T], **extra: Any) -> T:
    """The `config_cls` whose fields are the values of the flags `arguments_from` derived from it."""
    values = {field_name: getattr(args, flag) for flag, field_name in getattr(args, CONFIG_FIELDS).items()}
    return config_cls(**values, **extra)


class FlagOwner:
    """Base of everything `--method` can name (methods and recipes): a name and its own flags dataclass."""

    name: ClassVar[str] = "base"
    arguments: ClassVar[type | None] = None
    """The flags dataclass of this method or recipe, or None when it has none."""

    def __init__(self, args: Any = None) -> None:
        if self.arguments is not None:
            args = self.arguments() if args is None else args
            if not isinstance(args, self.arguments):
                raise TypeError(f"--method {self.name} takes {self.arguments.__name__}, got {type(args).__name__}")
        elif args is not None:
            raise TypeError(f"--method {self.name} has no flags of its own, got {type(args).__name__}")
        self.args = args
