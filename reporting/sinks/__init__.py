"""The displays: each module here registers one sink in ``reporting.sink.SINKS`` on import.

They are found by listing this folder, so a new display is one new file here.
"""
from __future__ import annotations

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
