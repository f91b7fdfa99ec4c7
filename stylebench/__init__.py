"""stylebench: style-transfer datasets from web searches, batch transfer, recorded runs."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("stylebench")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
