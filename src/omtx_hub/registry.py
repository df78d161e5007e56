"""Where predictors come from: the ``omtx_hub.predictors`` entry points and the ``predictor_plugins``
setting, both mapping a name to ``module:factory``. ``factory(settings)`` returns a Predictor.

Listing names imports nothing, so the API can validate a predictor name on a machine where the
predictor's packages are not installed; only a worker loads them.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from omtx_hub.errors import PredictorUnavailable

if TYPE_CHECKING:
    from omtx_hub.predictors.base import Predictor
    from omtx_hub.settings import Settings

__all__ = ["available_predictors", "load_predictor"]

GROUP = "omtx_hub.predictors"


def available_predictors(settings: Settings) -> dict[str, str]:
    """Predictor name → ``module:factory``, without importing anything."""
    found = {ep.name: ep.value for ep in entry_points(group=GROUP)}
    found.update(settings.predictor_plugins)
    return found


def load_predictor(name: str, settings: Settings) -> Predictor:
    """Import and build a predictor; raise PredictorUnavailable saying exactly what is missing."""
    known = available_predictors(settings)
    if name not in known:
        raise PredictorUnavailable(
            f"no predictor named {name!r} is installed (known: {', '.join(sorted(known)) or 'none'}). "
            f"Install the package that provides it (it registers an '{GROUP}' entry point), or point "
            'OMTX_PREDICTOR_PLUGINS=\'{"name": "module:factory"}\' at your own; for example: pip install <package>'
        )
    module_name, _, attr = known[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise PredictorUnavailable(
            f"predictor {name!r} cannot be loaded: {exc}. Install its dependencies, for example: "
            f"pip install 'omtx-hub[server,{name}]'"
        ) from exc
    factory = getattr(module, attr, None)
    if factory is None:
        raise PredictorUnavailable(f"predictor {name!r}: {module_name} has no attribute {attr!r}")
    predictor: Predictor = factory(settings)
    return predictor
