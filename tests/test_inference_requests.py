"""OpenVINO infer requests from several threads (`capstone.models.inference_requests`).

The first touches of tensor data in OpenVINO's Python binding deadlock when two threads make
them at once (seen: three concurrent analyses in one process hung; a script starting three
requests together hung in 4 of 12 runs). Every touch goes through one lock."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

from tests.conftest import ROOT

# a request's own calls; `inference_requests.infer(...)` is the locked one
TOUCHES = re.compile(
    r"\.start_async\(|(?<!inference_requests)\.infer\(|get_output_tensor\(|get_input_tensor\("
)


def test_tensor_data_is_touched_only_through_the_lock() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted((ROOT / "capstone").rglob("*.py"))
        if path.name != "inference_requests.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if TOUCHES.search(line)
    ]
    assert not offenders, offenders


def test_three_fresh_streams_at_once_in_a_new_process_finish() -> None:
    """Three threads start their first requests together while a fourth imports the
    tracker (torch), in a process that never inferred before; each gets the boxes a
    serial call gets."""
    script = textwrap.dedent(
        """
        import threading
        import numpy as np
        from capstone.models.detector import get_detector

        detector = get_detector()
        image = np.zeros((240, 320, 3), np.uint8)
        image[60:180, 100:220] = 200
        barrier = threading.Barrier(4)
        results = {}

        def detect(i):
            barrier.wait()
            results[i] = [d.xyxy.tolist() for _, d in detector.stream([image, image])]

        def load_tracker():
            barrier.wait()
            import ultralytics.trackers.byte_tracker  # noqa: F401

        threads = [threading.Thread(target=detect, args=(i,)) for i in range(3)]
        threads.append(threading.Thread(target=load_tracker))
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        serial = [d.xyxy.tolist() for _, d in detector.stream([image, image])]
        assert all(results[i] == serial for i in range(3)), (results, serial)
        print("finished")
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "CAPSTONE_DETECTION_MEMO"}  # detect
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env
    )
    assert proc.returncode == 0 and "finished" in proc.stdout, proc.stderr[-3000:]
