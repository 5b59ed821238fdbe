"""Attributes of a package loaded on first use (PEP 562), to keep torch out of light imports."""

import importlib


def lazy_attributes(package, table):
    """``(__getattr__, __dir__)`` for ``package`` that import ``table[name]`` on first use.

    ``table`` maps an attribute name to the module (relative to ``package``) defining it.
    """
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name):
        if name in table:
            value = getattr(importlib.import_module(f".{table[name]}", package), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted({*namespace, *table})

    return __getattr__, __dir__
