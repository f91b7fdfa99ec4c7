"""What the open-access museum engines share: CC0 by default, and the licence they state."""

from __future__ import annotations

from scraper.errors import UnsupportedOption

CC0 = "CC0 1.0"
CC0_URL = "https://creativecommons.org/publicdomain/zero/1.0/"
OPEN_CODES = frozenset({"cc0", "pdm"})


def check_licenses(engine: str, licenses: tuple[str, ...]) -> None:
    """Museum engines land public-domain works released as CC0, and nothing else."""
    if licenses and not OPEN_CODES & set(licenses):
        raise UnsupportedOption(
            engine,
            f"lands only public-domain works released under CC0; asked for "
            f"{', '.join(licenses)}; use --license cc0 (or no --license)",
        )


def join(*parts: object) -> str | None:
    """The non-empty parts, stripped, joined by '; ' (None when there are none)."""
    kept = [str(p).strip() for p in parts if p is not None and str(p).strip()]
    return "; ".join(kept) or None
