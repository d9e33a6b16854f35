"""Inlayer's HTTP server: a thin shell over the core (job queue, auth, limits, A1111 subset)."""
