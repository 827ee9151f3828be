"""genlab: generative AI made real, small enough to understand.

Public API::

    import genlab
    data = genlab.datasets.load("ring8")
    model = genlab.fit(data, family="gaussian", n_components=8)
    x = model.sample(2500, generator=torch.Generator().manual_seed(0))
    model.save_pretrained("runs/ring8"); model = genlab.load("runs/ring8")
    report = genlab.evaluate(model, data)
    marked = model.sample(100, processors=[genlab.Watermark(key="secret")])   # text, tables, images
    genlab.detect(marked, key="secret", model=model).combined.watermarked
    genlab.attribute(model, x, data=data, k=3).flag_rate

The names are imported on first use, so that ``import genlab`` (and with it every ``genlab`` command,
``genlab --help`` included) starts without torch, scikit-learn and pandas.
"""

from __future__ import annotations

from importlib import import_module
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any

from genlab.errors import GenlabError
from genlab.version import __version__

#: Each lazily imported public name and the module that defines it (``datasets`` is that module itself).
_EXPORTS = {"datasets": "genlab.datasets", "fit": "genlab.api", "load": "genlab.api",
            "Report": "genlab.evaluation", "evaluate": "genlab.evaluation", "Watermark": "genlab.provenance",
            "attribute": "genlab.provenance.attribution", "detect": "genlab.provenance.detect",
            "interpolate": "genlab.sampling.latent"}

__all__ = ["GenlabError", "Report", "Watermark", "__version__", "attribute", "datasets", "detect", "evaluate", "fit",
           "interpolate", "load"]

if TYPE_CHECKING:   # what the names are, for type checkers and editors
    from genlab import datasets
    from genlab.api import fit, load
    from genlab.evaluation import Report, evaluate
    from genlab.provenance import Watermark
    from genlab.provenance.attribution import attribute
    from genlab.provenance.detect import detect
    from genlab.sampling.latent import interpolate


def __getattr__(name: str) -> Any:
    """Import a public name (or, as the eager imports once did, a subpackage such as ``genlab.data``) on
    first use and keep it, so the next lookup is an ordinary attribute."""
    if name in _EXPORTS:
        module = import_module(_EXPORTS[name])
        value = module if name == "datasets" else getattr(module, name)
    elif not name.startswith("_") and find_spec(f"{__name__}.{name}") is not None:
        value = import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
