"""The options of ``synth`` and ``prepare`` that say where data come from (issue 23): several datasets in one
manifest (``--dataset NAME:ROOT,...``, ``--datasets-yaml``, ``--test-dataset``), a root given as a URL and its
download cache, and the synthetic generator's site (``--site-profile``, ``--site-option``). Kept apart from
:mod:`mammo_monai.commands`, which registers them."""

from __future__ import annotations

import argparse


def add_dataset_sources(p: argparse.ArgumentParser) -> None:
    """prepare: which dataset(s), where (a folder or a URL), and the download cache of URLs."""
    p.add_argument(
        "--dataset",
        help="an adapter's name (cbis-ddsm, mias, inbreast, rsna, folder, ...: an unknown name lists them all) "
        "with --root; or several datasets NAME:ROOT,NAME:ROOT in one manifest (a dataset column, patient ids "
        "NAME/ID, splits stratified by dataset and label)",
    )
    p.add_argument(
        "--root",
        help="the dataset's folder, or an fsspec URL (s3://, gs://, https://, file://) copied into the download cache",
    )
    p.add_argument(
        "--datasets-yaml",
        metavar="FILE",
        help="several datasets listed in YAML (datasets: - {name: NAME, root: ROOT, OPTION: VALUE}) instead of --dataset",
    )
    p.add_argument(
        "--test-dataset",
        metavar="NAME",
        help="several datasets: this whole dataset is the test split (leave-one-dataset-out); "
        "validation comes from the others",
    )
    p.add_argument(
        "--download-cache",
        metavar="DIR",
        help="URL roots: the local download cache (default: $MAMMO_MONAI_DOWNLOAD_CACHE or ~/.cache/mammo-monai/downloads)",
    )
    p.add_argument(
        "--download-cache-size",
        metavar="SIZE",
        help="URL roots: the cache's bound, least recently used files deleted beyond it "
        "(default: $MAMMO_MONAI_DOWNLOAD_CACHE_SIZE or 200G)",
    )


def prepare_arguments(args: argparse.Namespace) -> dict:
    """The keyword arguments of :func:`mammo_monai.data.prepare.prepare` from ``prepare``'s options."""
    from mammo_monai.data.multi_dataset import choose_datasets
    from mammo_monai.io.remote import DownloadCache, parse_size

    cli_options = {
        "official_split": args.official_split or None,
        "birads_cut": args.birads_cut,
        "patients_csv": args.patients_csv,
    }
    dataset, root = choose_datasets(args.dataset, args.root, args.datasets_yaml, cli_options)
    adapter = {"birads_cut": args.birads_cut} if dataset == "inbreast" else {}
    if args.patients_csv and isinstance(dataset, str):
        if dataset != "folder":
            raise ValueError("--patients-csv applies to --dataset folder only")
        adapter["patients_csv"] = args.patients_csv
    size = parse_size(args.download_cache_size) if args.download_cache_size else None
    return {
        "dataset": dataset,
        "root": root,
        "test_dataset": args.test_dataset,
        "downloads": DownloadCache(args.download_cache, size),
        "adapter_options": adapter,
    }


def add_site_options(p: argparse.ArgumentParser) -> None:
    """synth: the site's intensity profile and lesion look (mammo_monai/synthetic/site.py)."""
    p.add_argument(
        "--site-profile",
        default="A",
        metavar="NAME",
        help="cbis-ddsm layout: the site's look: A the generator's own, B another vendor (darker, gamma 1.2, "
        "12-bit, noisier, fainter smaller lesions) (default: A)",
    )
    p.add_argument(
        "--site-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change one setting of the profile: gamma, scale, offset, noise, bits, lesion_contrast, lesion_size",
    )


def site_profile(args: argparse.Namespace):
    """The :class:`~mammo_monai.synthetic.site.SiteProfile` of ``--site-profile`` and ``--site-option``."""
    from mammo_monai.synthetic.site import SITE_PROFILES

    if args.site_profile not in SITE_PROFILES:
        raise ValueError(f"--site-profile {args.site_profile!r}: choose from {', '.join(SITE_PROFILES)}")
    pairs = [item.partition("=") for item in args.site_option]
    bad = [k for k, sep, _ in pairs if not sep]
    if bad:
        raise ValueError(f"--site-option {bad[0]!r}: write KEY=VALUE")
    return SITE_PROFILES[args.site_profile].with_options({k.strip(): v.strip() for k, _, v in pairs})
