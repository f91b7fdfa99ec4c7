"""The lists every package shares: engines, licences, roles, statuses, image suffixes, size bounds.

Each is spelled here and nowhere else (tests/test_vocabulary.py checks): storage, the scraper,
the flows and the command line import them. This module imports nothing, so the command line
can build its choices from it without loading a library.
"""

from __future__ import annotations

# The search engines, in the order `stylebench engines` lists them; each is the module
# scraper/engines/<name>.py. Web image searches first, then the open-access museum APIs.
ENGINE_NAMES: tuple[str, ...] = (
    "google",
    "bing",
    "duckduckgo",
    "baidu",
    "flickr",
    "openverse",
    "wikimedia",
    "met",
    "artic",
    "cleveland",
)
# Engines that answer plain HTTP clients (some with an identity or a key): what an error of a
# walled engine suggests instead.
WORKING_ENGINES: tuple[str, ...] = (
    "bing",
    "duckduckgo",
    "openverse",
    "met",
    "artic",
    "cleveland",
    "wikimedia",
    "flickr",
)
# Engines whose results carry a licence that ``--license`` can filter on.
LICENCE_ENGINES: tuple[str, ...] = ("flickr", "openverse", "wikimedia")
# Open-access collections: they land works released under CC0 and nothing else.
CC0_ENGINES: tuple[str, ...] = ("met", "artic", "cleveland")
# The `engine` column of imported images: a local file, or a URL given by hand.
LOCAL_ENGINES: tuple[str, ...] = ("local", "url")

# Licence codes a user may ask for (``--license``), Creative Commons style.
LICENSES: tuple[str, ...] = ("cc0", "pdm", "by", "by-sa", "by-nc", "by-nd", "by-nc-sa", "by-nc-nd")

ROLES: tuple[str, ...] = ("content", "style")  # images.role
STATUSES: tuple[str, ...] = ("accepted", "rejected")  # curation.status
RUN_STATUSES: tuple[str, ...] = ("ok", "failed", "diverged")  # runs.status

# Files an import or a training folder takes as images (the formats scraper.validate decodes).
IMAGE_SUFFIXES: tuple[str, ...] = (
    ".jpg",
    ".jpeg",
    ".png",
    ".webp",
    ".gif",
    ".bmp",
    ".tif",
    ".tiff",
)

# The shortest side, in pixels, below which curation rejects an image as too small.
SCRAPE_MIN_SIDE = 256
IMPORT_MIN_SIDE = 64  # files chosen by hand: only icons are refused
