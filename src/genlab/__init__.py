"""genlab: generative AI made real, small enough to understand.

Public API::

    import genlab
    data = genlab.datasets.load("ring8")
    model = genlab.fit(data, family="gaussian", n_components=8)
    x = model.sample(2500, generator=torch.Generator().manual_seed(0))
    model.save_pretrained("runs/ring8"); model = genlab.load("runs/ring8")
    report = genlab.evaluate(model, data)
    marked = model.sample(100, watermark=genlab.Watermark(key="secret"))   # text and tables
    genlab.detect(marked, key="secret", model=model).combined.watermarked
    genlab.attribute(model, x, data=data, k=3).flag_rate
"""

from genlab import datasets
from genlab.api import fit, load
from genlab.errors import GenlabError
from genlab.evaluation import Report, evaluate
from genlab.provenance import Watermark
from genlab.provenance.attribution import attribute
from genlab.provenance.detect import detect
from genlab.sampling.latent import interpolate
from genlab.version import __version__

__all__ = ["GenlabError", "Report", "Watermark", "__version__", "attribute", "datasets", "detect", "evaluate", "fit",
           "interpolate", "load"]
