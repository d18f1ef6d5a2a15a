"""OpenVINO infer requests used from several threads without deadlocking.

OpenVINO's Python binding initializes C++ function statics that call back into Python
(pybind11's NumPy API) when a tensor's data is first touched. Two threads doing that at
once deadlock for good: one holds the GIL while it waits for the other's initialization,
which waits for the GIL (three concurrent analyses in one process hung; a script starting
three requests at once with a fourth thread importing torch hung in 4 of 12 runs). Every
touch of tensor data (inputs copied in, outputs copied out) therefore goes through one
process-wide lock; the inference itself runs outside it.

>>> import numpy as np, openvino as ov
>>> from openvino import opset13 as ops
>>> x = ops.parameter([1, 2], np.float32)
>>> request = ov.Core().compile_model(ov.Model([ops.relu(x)], [x]), "CPU").create_infer_request()
>>> submit(request, {0: np.array([[-1.0, 2.0]], np.float32)})
>>> outputs(request)[0].tolist()
[[0.0, 2.0]]
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

_TENSOR_DATA = threading.Lock()


def submit(request: Any, inputs: dict[Any, np.ndarray]) -> None:
    """Start `request` on `inputs` (copied into its input tensors under the lock)."""
    with _TENSOR_DATA:
        request.start_async(inputs)


def outputs(request: Any, count: int = 1) -> list[np.ndarray]:
    """Wait for `request`; copies of its first `count` outputs (read under the lock)."""
    request.wait()
    with _TENSOR_DATA:
        return [request.get_output_tensor(i).data.copy() for i in range(count)]


def infer(request: Any, inputs: dict[Any, np.ndarray], count: int = 1) -> list[np.ndarray]:
    """`submit` then `outputs`: one synchronous inference."""
    submit(request, inputs)
    return outputs(request, count)
