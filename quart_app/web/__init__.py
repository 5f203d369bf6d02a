"""Quart glue shared by the edges: request state, guards, uploads, body limits and error rendering."""
