"""``genlab serve``: an HTTP API in the shapes OpenAI/vLLM clients send, and a web playground.

- :mod:`~genlab.serve.app`: ``create_app(registry, settings)``, the routes;
- :mod:`~genlab.serve.registry`: loaded models and how ``GET /v1/models`` describes them;
- :mod:`~genlab.serve.schemas`: request bodies; :mod:`~genlab.serve.records`: records as JSON;
- :mod:`~genlab.serve.errors`: the error JSON, API keys and limits; :mod:`~genlab.serve.batcher`:
  micro-batching; :mod:`~genlab.serve.continuous`: continuous batching of text completions, whose
  answers :mod:`~genlab.serve.completions` writes; :mod:`~genlab.serve.jobs`: model work off the event
  loop; ``static/index.html``: the playground.
"""

from genlab.serve.app import ServeSettings, create_app
from genlab.serve.registry import ModelRegistry

__all__ = ["ModelRegistry", "ServeSettings", "create_app"]
