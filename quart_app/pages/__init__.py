"""HTML pages and their static files, served from this package (no CDN): /docs, and next the voice
assistant page and the operations dashboard. Every page answers with a Content-Security-Policy that
allows only this origin."""
