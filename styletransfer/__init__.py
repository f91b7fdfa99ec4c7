"""styletransfer package."""
