"""What the command does at start-up so that a short run stays short: a light CEL import.

The CEL binding's package (``cel``) imports its own interactive shell when
imported: typer, prompt_toolkit, rich and pygments, about 0.3 s of a
one-project screening spent on modules that are never used. The command
loads the binding's compiled module under the package's name instead, and
runs the package's ``__init__`` never; ``cel.cli`` and ``cel.stdlib`` can
still be imported by name. If the package's layout is not the one expected,
nothing is changed and ``cel`` is imported as usual, on first use.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys


def light_cel() -> bool:
    """Register the ``cel`` package with only its compiled module loaded; True if it was done.

    Called before anything imports ``cel``; a no-op when it is already imported.
    """
    if "cel" in sys.modules:
        return False
    try:
        spec = importlib.util.find_spec("cel")
        if spec is None or not spec.submodule_search_locations:
            return False
        package = importlib.util.module_from_spec(spec)  # the package object, its __init__ not run
        sys.modules["cel"] = package
        binding = importlib.import_module("cel.cel")
        package.__dict__.update({k: v for k, v in vars(binding).items() if not k.startswith("_")})
        package.cel = binding
        if not all(hasattr(package, name) for name in ("Context", "compile", "evaluate")):
            raise ImportError("cel.cel does not hold the binding")
    except ImportError:
        for name in ("cel", "cel.cel"):
            sys.modules.pop(name, None)
        return False
    return True
