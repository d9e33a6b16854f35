"""What Inlayer made: metadata kept with each result, and the history of this Krita session.

Each result layer's metadata (prompt, seed and every parameter, enough to make it again) goes
into the document's `ANNOTATION` annotation as a JSON list, which Krita saves inside .kra files;
the session history lists the same entries for the docker.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any

from krita import Document, Node

from .inlayer_client.protocol import EditResult, GeneratedImage
from .qt import QtCore, Signal

ANNOTATION = "inlayer-results"
_ANNOTATION_DESCRIPTION = "Inlayer results: prompt, seed and parameters of each generated layer"
# The live preview layer's id: the layer is no result, and never a source to read.
LIVE_PREVIEW_ANNOTATION = "inlayer-live-preview"
_LIVE_PREVIEW_DESCRIPTION = "Inlayer: the unique id of the live preview layer"


@dataclass(frozen=True)
class HistoryEntry:
    document: str  # the document's name when the result arrived
    layer: str  # the layer's name
    layer_id: str  # the layer's unique id (Krita's QUuid as text)
    x: int  # where the layer's pixels start, in image coordinates
    y: int
    width: int
    height: int
    model: str
    created: str  # local time, ISO 8601
    parameters: dict[str, Any]  # the request's parameters for this very image (its seed, count 1)
    # Made with AI, in IPTC's words, and by which tool: `EditResult.provenance_of`.
    digital_source_type: str = ""
    creator_tool: str = ""

    @property
    def prompt(self) -> str:
        return str(self.parameters.get("prompt", ""))

    @property
    def seed(self) -> int:
        return int(self.parameters.get("seed", -1))


def document_entries(document: Document) -> list[dict[str, Any]]:
    """The metadata stored in a document (empty when it holds none, or unreadable data)."""
    data = bytes(document.annotation(ANNOTATION))
    if not data:
        return []
    try:
        entries = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return []
    return entries if isinstance(entries, list) else []


def mark_live_preview(document: Document, layer: Node) -> None:
    """Record `layer` as the document's live preview (kept in .kra files, like the results)."""
    unique_id = layer.uniqueId().toString().encode("utf-8")
    document.setAnnotation(LIVE_PREVIEW_ANNOTATION, _LIVE_PREVIEW_DESCRIPTION, unique_id)


def live_preview_id(document: Document) -> str:
    """The unique id of the document's live preview layer ("" when it never had one)."""
    return bytes(document.annotation(LIVE_PREVIEW_ANNOTATION)).decode("utf-8", errors="replace")


def is_live_preview(document: Document, node: Node) -> bool:
    unique_id = live_preview_id(document)
    return bool(unique_id) and node.uniqueId().toString() == unique_id


class SessionHistory(QtCore.QObject):
    """Every result of this Krita session, oldest first."""

    added = Signal(object)  # HistoryEntry

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[HistoryEntry] = []

    def record(
        self,
        document: Document,
        layer: Node,
        result: EditResult,
        image: GeneratedImage,
        position: tuple[int, int],
    ) -> HistoryEntry:
        """Store the metadata of one result layer in its document and in the session history."""
        entry = HistoryEntry(
            document=document.name(),
            layer=layer.name(),
            layer_id=layer.uniqueId().toString(),
            x=position[0],
            y=position[1],
            width=image.image.width,
            height=image.image.height,
            model=result.model,
            created=time.strftime("%Y-%m-%dT%H:%M:%S"),
            parameters=result.parameters_of(image),
            digital_source_type=result.provenance_of(image)["digital_source_type"],
            creator_tool=result.provenance_of(image)["creator_tool"],
        )
        entries = [*document_entries(document), asdict(entry)]
        document.setAnnotation(
            ANNOTATION, _ANNOTATION_DESCRIPTION, json.dumps(entries, indent=1).encode("utf-8")
        )
        self.entries.append(entry)
        self.added.emit(entry)
        return entry


session_history = SessionHistory()
