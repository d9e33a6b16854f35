"""Inlayer for Krita: local AI inpainting, transforms and generation as new layers.

Krita loads this package at start-up; it registers the docker and the menu actions. Scripts use
`inlayer_krita.api`.
"""

from krita import DockWidgetFactory, DockWidgetFactoryBase, Krita

from .docker import DOCKER_ID, InlayerDocker
from .extension import InlayerExtension

Krita.instance().addExtension(InlayerExtension(Krita.instance()))
Krita.instance().addDockWidgetFactory(
    DockWidgetFactory(DOCKER_ID, DockWidgetFactoryBase.DockPosition.DockRight, InlayerDocker)
)
