"""Package attributes imported on first use, so a light command does not pay for scipy and Caffe."""
from __future__ import annotations

import importlib
from typing import Any, Callable, Dict, List, Tuple


def lazy_exports(package: str, exports: Dict[str, str]) -> Tuple[List[str], Callable[[str], Any], Callable[[], list]]:
    """``(__all__, __getattr__, __dir__)`` for ``package``, whose ``exports`` map names to relative modules."""

    def __getattr__(name: str) -> Any:
        if name in exports:
            return getattr(importlib.import_module(exports[name], package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    names = sorted(exports)

    def __dir__() -> list:
        return sorted(set(names) | set(importlib.import_module(package).__dict__))

    return names, __getattr__, __dir__
