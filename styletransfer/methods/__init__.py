"""The built-in methods' implementations; styletransfer.registry declares and lists them."""
