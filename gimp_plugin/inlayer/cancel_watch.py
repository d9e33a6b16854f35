"""Cancel an Inlayer job on the server when the GIMP plug-in that submitted it goes away.

GIMP's Cancel button on a plug-in's progress bar ends the plug-in process at once, with no
chance to run code. So the plug-in starts this watcher with the job id and a pipe on its standard
input: when the plug-in finishes normally it writes "done" and closes the pipe; when it is ended
mid-job the pipe closes with nothing written, and the watcher cancels the job.

    python3 cancel_watch.py JOB_ID
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from inlayer_client.http_client import connect
from inlayer_client.protocol import InlayerError


def main(job_id: str) -> int:
    finished = sys.stdin.buffer.read().strip() == b"done"
    if finished:
        return 0
    try:
        connect().cancel(job_id)
    except InlayerError as error:  # the job ended meanwhile, or the server is gone: nothing to do
        print(f"inlayer: could not cancel job {job_id}: {error}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
