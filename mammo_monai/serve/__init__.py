"""``mammo-monai serve``: an HTTP service and a web page over a bundle opened once (:mod:`.app`)."""

from __future__ import annotations

from mammo_monai.serve.app import ServeSettings, create_app

__all__ = ["ServeSettings", "create_app"]
