"""One vendor per module, each built from Settings with its base URL."""
