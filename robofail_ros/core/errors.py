"""Errors a user can act on: each names the problem and the fix."""
import dataclasses
import difflib
import math
import operator
import pathlib
import re


class RoboFailError(Exception):
    """Base class: a problem with what the user asked for, reported before anything runs."""


class ConfigError(RoboFailError):
    """A malformed or inconsistent configuration file or value."""


def nearest(name: str, known) -> list[str]:
    """The (at most three) known names closest to a mistyped one."""
    return difflib.get_close_matches(str(name), list(known), n=3, cutoff=0.5)


def not_a_file(path, what: str = "file") -> str | None:
    """Why ``path`` is not a file to read ("is a folder, not a <what>" or "does not exist"), or None."""
    path = pathlib.Path(path)
    if path.is_file():
        return None
    return f"is a folder, not a {what}" if path.is_dir() else "does not exist"


class UnknownNameError(RoboFailError, KeyError):
    """A name (task, perturbation, searcher, policy...) that no registry holds."""

    def __init__(self, kind: str, name: str, known):
        known = sorted(known)
        close = nearest(name, known)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        listing = ", ".join(known) if len(known) <= 12 else ", ".join(known[:12]) + f", ... ({len(known)} in all)"
        head, of, rest = kind.partition(" of ")  # "camera of task Lift": "cameras of task Lift"
        kinds = (head[:-1] + "ies" if head.endswith("y") else head + "s") + of + rest
        super().__init__(f"unknown {kind} {name!r}.{hint} Known {kinds}: {listing}")
        self.kind, self.name = kind, name

    def __str__(self):  # KeyError would otherwise print the message with quotes
        return self.args[0]


class PerturbationError(RoboFailError):
    """A perturbation that cannot be applied to this scene (impossible magnitude, missing target)."""


class PolicyError(RoboFailError):
    """A policy under test that cannot be loaded or does not fit the scene."""


class WrongTaskError(PolicyError):
    """A policy trained on another task than the one asked for (``trained_on``)."""

    def __init__(self, message: str, trained_on: str):
        super().__init__(message)
        self.trained_on = trained_on


def lookup(registry: dict, kind: str, name: str):
    """registry[name], or an UnknownNameError that suggests the closest names."""
    try:
        return registry[name]
    except KeyError:
        raise UnknownNameError(kind, name, registry) from None


def unknown_keys(cls, data: dict, where: str) -> str | None:
    """What is wrong with a record read back (run.json) that holds keys the dataclass ``cls`` has
    not, or None: such a record comes from another version of robofail."""
    unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
    if not unknown:
        return None
    return (f"{where} holds keys this robofail does not write ({', '.join(unknown)}); it comes from another version, "
            "which is needed to open it")


def record_from_dict(cls, data, where: str, tuples: tuple[str, ...] = ()):
    """``cls(**data)`` for a dataclass that robofail wrote to a record (run.json) and reads back,
    with the keys in ``tuples`` read as tuples (JSON has lists); anything else is a clear error."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where} is not a record robofail writes (not a mapping: {data!r:.80})")
    problem = unknown_keys(cls, data, where)
    if problem:
        raise ConfigError(problem)
    try:
        return cls(**{**data, **{key: tuple(data[key]) for key in tuples if key in data}})
    except TypeError as exc:
        raise ConfigError(f"{where} is not a record robofail writes ({exc})") from None


def strict_fields(cls, values: dict, where: str):
    """``cls(**values)`` for a dataclass of plain settings, refusing unknown keys (with the closest
    known name) and values of the wrong type (lists are taken for tuples)."""
    if not isinstance(values, dict):
        raise ConfigError(f"{where} must be a mapping, got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key, value in values.items():
        if key not in fields:
            close = difflib.get_close_matches(key, sorted(fields), n=1)
            raise ConfigError(f"{where}: unknown key {key!r}." + (f" Did you mean {close[0]!r}?" if close else "")
                              + f" Known: {', '.join(sorted(fields))}")
        default = fields[key].default
        kind = tuple if isinstance(default, tuple) else float if isinstance(default, float) else type(default)
        if not _fits(value, kind):
            hint = f" (YAML reads {value} as text: write it with a dot, e.g. 1.0e-3)" if kind is float and _numeric(value) else ""
            raise ConfigError(f"{where}: {key} must be {_KIND_NAMES.get(kind, kind.__name__)} like its default "
                              f"{default!r}, got {value!r}{hint}")
        if kind is float and not math.isfinite(value):
            raise ConfigError(f"{where}: {key} must be a finite number like its default {default!r}, got {value!r}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


_KIND_NAMES = {int: "int (a whole number)", float: "float (a number)", str: "str (text)", bool: "bool (true or false)",
               tuple: "a list"}


def _fits(value, kind) -> bool:
    """Whether a parsed YAML value can stand for a field of this type: lists for tuples, ints for
    floats, and true/false only for bools (bool is an int subclass in Python)."""
    if kind is tuple:
        return isinstance(value, (list, tuple))
    if isinstance(value, bool):
        return kind is bool
    return isinstance(value, (int, float)) if kind is float else isinstance(value, kind)


def _numeric(text) -> bool:
    """A string that would be a number (YAML 1.1 reads 1e-3, without a dot, as text)."""
    if not isinstance(text, str):
        return False
    try:
        float(text)
    except ValueError:
        return False
    return True


_COMPARISONS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}
_RULE = re.compile(r"(>=|>|<=|<) *(-?[\d.]+)|in ([\[(])(-?[\d.]+), *(-?[\d.]+)([\])])")


def require(where: str, settings, **rules: str) -> None:
    """Refuse the first field of ``settings`` that breaks its rule, naming the field, the rule and
    the value given. A rule is ``">= 1"``, ``"> 0"`` (or ``<=``, ``<``) or an interval such as
    ``"in (0, 1]"``; words after it are a reason, carried into the message. The rule is read from
    its own text, so the check and what the user is told cannot disagree."""
    for name, rule in rules.items():
        value = getattr(settings, name)
        match = _RULE.match(rule)
        if match is None:
            raise ValueError(f"require: cannot read the rule {rule!r} of {name}")
        op, bound, opening, low, high, closing = match.groups()
        if op:
            ok = _COMPARISONS[op](value, float(bound))
        else:
            ok = ((value >= float(low)) if opening == "[" else (value > float(low))) and \
                 ((value <= float(high)) if closing == "]" else (value < float(high)))
        if not ok:
            raise ConfigError(f"{where}: {name} must be {rule}, got {value!r}")


def check_writable(out) -> None:
    """Refuses an output file that cannot be written, before the work that would fill it: its
    folder is made if missing, and a file beside the output is created and removed once."""
    out = pathlib.Path(out)
    probe = out.with_name(f".{out.name}.probe")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"cannot write {out}: {exc.strerror or exc}; choose a writable --out") from None


def check_new_output(out) -> None:
    """Refuses an output file that exists (never overwritten) or cannot be written."""
    if pathlib.Path(out).exists():
        raise ConfigError(f"{out} exists; choose another --out")
    check_writable(out)
