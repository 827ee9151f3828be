"""genlab: generative AI made real, small enough to understand.

Public API::

    import genlab
    data = genlab.datasets.load("ring8")
    model = genlab.fit(data, family="gaussian", n_components=8)
    x = model.sample(2500, generator=torch.Generator().manual_seed(0))
    model.save_pretrained("runs/ring8"); model = genlab.load("runs/ring8")
    report = genlab.evaluate(model, data)
"""

from genlab import datasets
from genlab.api import fit, load
from genlab.errors import GenlabError
from genlab.evaluation import Report, evaluate
from genlab.sampling.latent import interpolate
from genlab.version import __version__

__all__ = ["GenlabError", "Report", "__version__", "datasets", "evaluate", "fit", "interpolate", "load"]
