"""Which build runs: the hot modules compiled by Cython, or pure Python.

setup.py compiles every `sakerd/<name>.py` that has a `sakerd/<name>.pxd`
beside it; the `.py` files are installed too. Python's import system prefers
an extension module to a `.py` of the same name in one directory, so a
compiled install runs compiled.

`SAKERD_PURE_PYTHON=1` (any value but "" and "0") turns that around at run
time: sakerd/__init__.py puts PurePythonFinder first on `sys.meta_path`, and
every `sakerd.*` module is imported from its `.py` even where a compiled one
sits beside it (an in-place or an installed compiled build). It must be set
before sakerd is first imported.

INFO's `compiled:` (info.py) reports running_compiled(): yes when every
module that has a `.pxd` is loaded (or, not imported yet, would be loaded)
from an extension module, no otherwise -- also when there is no `.pxd` at
all, and when only some of them are compiled.
"""

import glob
import importlib.machinery
import importlib.util
import os
import sys

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))

PURE_PYTHON = os.environ.get("SAKERD_PURE_PYTHON", "") not in ("", "0")


class PurePythonFinder:
    """A meta path finder that finds sakerd's modules as their .py source only."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        package, _, module = name.rpartition(".")
        if package != "sakerd":
            return None
        for directory in path or ():
            source = os.path.join(directory, module + ".py")
            if os.path.isfile(source):
                return importlib.util.spec_from_file_location(name, source)
        return None


def install_pure_python_finder():
    if PurePythonFinder not in sys.meta_path:
        sys.meta_path.insert(0, PurePythonFinder)


def compilable_modules():
    """Names of the modules a build compiles: the .py files with a .pxd beside them."""
    return sorted("sakerd." + os.path.basename(p)[:-len(".pxd")]
                  for p in glob.glob(os.path.join(PACKAGE_DIR, "*.pxd"))
                  if os.path.isfile(p[:-len(".pxd")] + ".py"))


def is_extension(name):
    """True if the module `name` is (or would be) loaded from a compiled extension."""
    module = sys.modules.get(name)
    spec = module.__spec__ if module is not None else importlib.util.find_spec(name)
    return spec is not None and isinstance(spec.loader, importlib.machinery.ExtensionFileLoader)


def running_compiled():
    names = compilable_modules()
    return bool(names) and all(is_extension(n) for n in names)
