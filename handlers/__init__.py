"""The Task API's Lambda code: ``handlers.api.handler`` and ``handlers.processor.handler``."""

import os

# Pydantic looks for plugins in the entry points of every installed distribution the first
# time it builds a model: a scan of the whole sys.path on each cold start, for plugins
# these functions do not use. An explicit setting in the environment still wins.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

# Before any handler imports Powertools: its re-exporting packages load what is asked for.
from handlers.lazy_packages import install as _lazy_powertools

_lazy_powertools()
