"""YAML as the user's files are read: PyYAML's safe loader, except that a key given twice in one
mapping is an error (PyYAML keeps the last value silently, so `budget: 500` written above a
forgotten `budget: 20` would run 20 episodes with no word said), and that `1e9` and `1.0e-3` are
numbers, as in YAML 1.2 and in ROS 2's own parameter parser (PyYAML's YAML 1.1 reads them as text)."""
from __future__ import annotations

import re

import yaml


class DuplicateKeyError(yaml.YAMLError):
    """A key given twice in one mapping (the YAML spec requires unique keys)."""


class UniqueKeyLoader(yaml.SafeLoader):
    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise DuplicateKeyError(f"{key!r} is given twice (lines {seen[key] + 1} and "
                                        f"{key_node.start_mark.line + 1}); keep one of them")
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


# Only what PyYAML's own float rule misses (an exponent without a sign, or without a decimal point).
UniqueKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."))


def load(text: str):
    """The YAML document in ``text``; a repeated key raises DuplicateKeyError, naming both lines."""
    return yaml.load(text, Loader=UniqueKeyLoader)
