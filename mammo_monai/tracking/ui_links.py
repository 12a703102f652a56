"""``python -m mammo_monai.tracking.ui_links``: the ``mlflow ui`` command for a store and the link that
opens each of its experiments on the runs list with their metrics (:mod:`mammo_monai.tracking.ui`)."""

from __future__ import annotations

import argparse

from mammo_monai.tracking.runs import default_tracking_uri
from mammo_monai.tracking.ui import UI_URL, VIEW_TAG, runs_page_url


def ui_links(tracking_uri: str | None = None, ui_url: str = UI_URL) -> dict[str, str]:
    """``{experiment name: runs_page_url}`` for every experiment of the store that has the saved view."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=tracking_uri or default_tracking_uri())
    return {
        e.name: runs_page_url(e.experiment_id, ui_url)
        for e in client.search_experiments()
        if VIEW_TAG in (e.tags or {})
    }


def main(argv: list[str] | None = None) -> int:
    """Print the command that serves the store and each experiment's link."""
    parser = argparse.ArgumentParser(prog="python -m mammo_monai.tracking.ui_links", description=main.__doc__)
    parser.add_argument("--tracking-uri", default=None, help="default: MLFLOW_TRACKING_URI or ./mlruns/mlflow.db")
    parser.add_argument("--ui-url", default=UI_URL, help=f"where mlflow ui serves (default {UI_URL})")
    args = parser.parse_args(argv)
    uri = args.tracking_uri or default_tracking_uri()
    print(f"mlflow ui --backend-store-uri {uri}")
    for name, url in ui_links(uri, args.ui_url).items():
        print(f"{name}: {url}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
