"""Shared fixtures: tiny random-weight models (fixtures/models.py, fixtures/image_models.py,
fixtures/guided_models.py), a real server process on loopback (fixtures/server.py) and the
chroot holding the real editors (editors/chroot.py)."""

pytest_plugins = [
    "tests.fixtures.models",
    "tests.fixtures.image_models",
    "tests.fixtures.server",
    "tests.fixtures.guided_models",  # after the server's: it starts one with the guides
    "tests.editors.chroot",
]
