"""Typed errors: why a search engine gave no results, or why one download failed."""

from __future__ import annotations


class ScraperError(Exception):
    """Base of every error this package raises on purpose."""


class EngineError(ScraperError):
    """A search engine did not give results; the message says why and what to do."""

    def __init__(self, engine: str, message: str):
        super().__init__(f"{engine}: {message}")
        self.engine = engine


class Blocked(EngineError):
    """The engine refused the request (HTTP 403, an anti-spider answer)."""


class Consent(EngineError):
    """The engine answered with a cookie-consent page instead of results."""


class Captcha(EngineError):
    """The engine answered with a captcha ("unusual traffic") page."""


class JsWall(EngineError):
    """The engine answered with a page that needs JavaScript to show any result."""


class LayoutChanged(EngineError):
    """The response no longer has the structure the parser knows."""


class MissingApiKey(EngineError):
    """The engine needs an API key that is not set."""


class MissingContact(MissingApiKey):
    """The engine's usage policy wants the operator's contact details, and none are set."""


class QuotaExhausted(Blocked):
    """The engine's published request quota is used up; the message says when it frees."""


class Discontinued(EngineError):
    """The engine's service has closed; the message names engines that work."""


class ApiError(EngineError):
    """The engine's API answered with an error object."""


class UnsupportedOption(EngineError):
    """The engine cannot honour an option (such as a licence filter)."""


class DownloadError(ScraperError):
    """One URL could not be fetched; ``reason`` is a short stable code stored in the tables."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class InvalidImage(ScraperError):
    """Fetched bytes are not an image we accept; ``reason`` is a short stable code."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
