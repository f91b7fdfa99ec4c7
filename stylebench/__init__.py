"""stylebench: style-transfer datasets from web searches, batch transfer, recorded runs."""


def __getattr__(name: str) -> str:
    # The installed version, read when first asked for (reading the package metadata took 20 ms
    # of every command's start, before the program could start what the command waits for).
    if name != "__version__":
        raise AttributeError(f"module 'stylebench' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        value = version("stylebench")
    except PackageNotFoundError:  # running from a source tree that was never installed
        value = "0.0.0+unknown"
    globals()["__version__"] = value
    return value
