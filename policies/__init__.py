"""Pure policy code: the elastic pool model, back-testing and recommendation policies.

Nothing in this package does I/O or reads the clock; `now` and all data are arguments.
"""
import importlib.util
import sys
import warnings
from pathlib import Path


def _load_model_source_if_binary_is_stale() -> None:
    """`pip install -e .` compiles model.py in place (setup.py). Once model.py is edited that binary
    is stale and Python would still load it, silently running the old model: load the source instead."""
    here = Path(__file__).parent
    if not (here.parent / "setup.py").exists():
        return      # an installed copy (pip install .): its files' times say nothing about edits
    source, binaries = here / "model.py", list(here.glob("model.*.so"))
    if binaries and source.stat().st_mtime > min(binary.stat().st_mtime for binary in binaries):
        spec = importlib.util.spec_from_file_location(f"{__name__}.model", source)
        assert spec is not None and spec.loader is not None
        sys.modules[spec.name] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        warnings.warn("policies/model.py changed since it was compiled, so it runs interpreted (about 4x "
                      "slower); run `pip install -e .` again to recompile it", stacklevel=2)


_load_model_source_if_binary_is_stale()
