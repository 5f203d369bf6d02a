"""The process layer: serving (resources, then features), the drain on SIGTERM, and the private internals."""
