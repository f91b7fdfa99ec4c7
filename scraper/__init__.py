"""Scraper: search engines, the hardened downloader, validation and curation into the store."""

from scraper.curate import CurationConfig
from scraper.download import DownloadConfig
from scraper.engines import ENGINES, LICENSES, Result
from scraper.errors import DownloadError, EngineError, InvalidImage, ScraperError
from scraper.pipeline import (
    CurateSummary,
    LocalFile,
    ScrapeSummary,
    curate_undecided,
    import_files,
    import_sources,
    scrape,
)

__all__ = [
    "ENGINES",
    "LICENSES",
    "CurateSummary",
    "CurationConfig",
    "DownloadConfig",
    "DownloadError",
    "EngineError",
    "InvalidImage",
    "LocalFile",
    "Result",
    "ScrapeSummary",
    "ScraperError",
    "import_files",
    "curate_undecided",
    "import_sources",
    "scrape",
]
