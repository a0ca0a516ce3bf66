"""Command-line flags made from the config dataclasses' fields, so that each option is declared once.

A field declared with `pix2pix_tf.config.option` carries its flag's help, name and choices; the
flag's type and the default its help shows come from the field itself. Flags default to None
(unless a command replaces that, as serve does), so that only the options given explicitly
override a preset or a saved config.
"""

from __future__ import annotations

import dataclasses
import types
import typing


@dataclasses.dataclass(frozen=True)
class Flag:
    """One config field as a command-line flag.

    Attributes:
        section: the config section holding the field ("data", "model", "train").
        field: the dataclass field, declared with `pix2pix_tf.config.option`.
        kind: the field's type without None (int, float, str or bool).
    """

    section: str
    field: dataclasses.Field
    kind: type

    @property
    def dest(self) -> str:
        """The flag's name with underscores: its attribute on the parsed arguments."""
        return self.field.metadata["flag"] or self.field.name

    @property
    def help(self) -> str:
        """The field's help with the default it falls back to when the flag is not given."""
        text, default = self.field.metadata["help"], self.field.default
        if self.kind is bool:
            return text  # the flag is the switch away from the default
        if default is None:
            return f"{text} (default: {self.field.metadata['unset']})"
        return f"{text} (default {default:g})" if self.kind is float else f"{text} (default {default})"

    def add_to(self, container, **replace) -> None:
        """Adds the flag to an argparse parser, argument group or mutually exclusive group.

        Args:
            container: where to add it.
            **replace: `add_argument` arguments that replace the derived ones, as serve's own
                type that refuses values <= 0 while parsing.
        """
        name = f"--{self.dest.replace('_', '-')}"
        if self.kind is bool:
            kwargs = {"action": "store_true", "default": None}
        else:
            kwargs = {"type": self.kind, "choices": self.field.metadata["choices"] or None}
        container.add_argument(name, **{**kwargs, "help": self.help, **replace})

    def given(self, args):
        """The field's value the command line asks for, or None where the flag was not given."""
        value = getattr(args, self.dest)
        if value is None or self.kind is not bool:
            return value
        return not self.field.default


def _kind(hint) -> type:
    """The type a flag parses for a field's type hint: `int | None` -> int."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        (hint,) = (arg for arg in typing.get_args(hint) if arg is not type(None))
    return hint


def section_flags(section_cls, section: str = "", names: tuple[str, ...] | None = None) -> list[Flag]:
    """The flags of one config dataclass, in field order.

    Args:
        section_cls: a dataclass of fields declared with `pix2pix_tf.config.option`.
        section: its name in the enclosing config, for `overrides`.
        names: the fields to make flags of; None for all.

    Returns:
        One `Flag` per field.
    """
    hints = typing.get_type_hints(section_cls)
    return [
        Flag(section, field, _kind(hints[field.name]))
        for field in dataclasses.fields(section_cls)
        if names is None or field.name in names
    ]


def config_flags(config_cls, sections: dict[str, tuple[str, ...]] | None = None) -> list[Flag]:
    """The flags of a config class's sections, in field order.

    Args:
        config_cls: a dataclass whose fields are sections (as `Config`'s data, model, train),
            each a dataclass of fields declared with `pix2pix_tf.config.option`.
        sections: section name -> the field names to make flags of; None for every field of
            every section.

    Returns:
        One `Flag` per field.
    """
    return [
        flag
        for section, section_cls in typing.get_type_hints(config_cls).items()
        if sections is None or section in sections
        for flag in section_flags(section_cls, section, None if sections is None else sections[section])
    ]


def add_flags(parser, flags: list[Flag], titles: dict[str, str] | None = None) -> dict[str, object]:
    """Adds `flags` to `parser`, each under its group's heading, alternatives mutually exclusive.

    Args:
        parser: an argparse parser.
        flags: from `config_flags`.
        titles: section name -> its help heading (default: the section name); a field's own
            `group` takes precedence. None puts every flag straight on the parser.

    Returns:
        Help heading -> its argument group, for the caller to add flags that are no config field.
    """
    groups: dict[str, object] = {}
    exclusive: dict[str, object] = {}
    for flag in flags:
        container = parser
        if titles is not None:
            title = flag.field.metadata["group"] or titles.get(flag.section, flag.section)
            if title not in groups:
                groups[title] = parser.add_argument_group(title)
            container = groups[title]
        alternative = flag.field.metadata["instead_of"]
        if alternative is not None:
            container = exclusive[alternative]
        elif any(other.field.metadata["instead_of"] == flag.field.name for other in flags):
            container = exclusive[flag.field.name] = container.add_mutually_exclusive_group()
        flag.add_to(container)
    return groups


def overrides(args, flags: list[Flag]) -> dict[str, dict]:
    """The config fields given on the command line, per section, for `Config.replace` or `resolve_config`.

    A field given in place of its alternative (epochs for steps) clears the alternative, so that
    a length given one way replaces a length saved the other way.
    """
    result: dict[str, dict] = {flag.section: {} for flag in flags}
    for flag in flags:
        value = flag.given(args)
        if value is None:
            continue
        result[flag.section][flag.field.name] = value
        alternative = flag.field.metadata["instead_of"]
        if alternative is not None:
            result[flag.section][alternative] = None
        for other in flags:
            if other.field.metadata["instead_of"] == flag.field.name:
                result[other.section][other.field.name] = None
    return result
