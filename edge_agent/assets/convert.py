"""TFLite → ONNX conversion of the embedder, with a dynamic batch dimension.

Needs the ``[models]`` extra (tflite2onnx, onnx); a gate device that receives
ready ONNX files does not.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from edge_agent.errors import AssetError

BATCH_DIM = "batch"


def tflite_to_onnx(tflite: Path, target: Path) -> None:
    """Convert, then make dim 0 symbolic and fix the final Reshape to ``[-1, D]``.

    tflite2onnx keeps the TFLite batch of 2; the only batch-dependent constant
    in MobileFaceNet is the shape of the final Reshape (``[2, 192]``).
    """
    try:
        import numpy as np
        import onnx
        import tflite2onnx
        from onnx import numpy_helper
    except ImportError as exc:
        raise AssetError(
            f"converting {tflite.name} needs {exc.name}: pip install 'facegate[models]'"
        ) from exc

    # tflite2onnx logs every inserted node at INFO.
    logging.getLogger("tflite2onnx").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.onnx"
        tflite2onnx.convert(str(tflite), str(raw))
        model = onnx.load(str(raw))
    graph = model.graph
    if len(graph.input) != 1 or len(graph.output) != 1:
        raise AssetError("expected one input and one output in the converted embedder")
    out_name = graph.output[0].name
    reshape = [n for n in graph.node if n.op_type == "Reshape" and n.output[0] == out_name]
    if len(reshape) != 1:
        raise AssetError("the embedder's output is not produced by one Reshape")
    inits = {i.name: i for i in graph.initializer}
    shape_init = inits.get(reshape[0].input[1])
    if shape_init is None:
        raise AssetError("the final Reshape's shape is not a constant")
    shape = numpy_helper.to_array(shape_init)
    if shape.shape != (2,):
        raise AssetError(f"unexpected final Reshape shape {shape.tolist()}")
    shape_init.CopyFrom(
        numpy_helper.from_array(np.array([-1, int(shape[1])], dtype=np.int64), shape_init.name)
    )
    # Intermediate shapes were inferred with batch 2; drop them, keep the ends.
    del graph.value_info[:]
    for value in (graph.input[0], graph.output[0]):
        dim0 = value.type.tensor_type.shape.dim[0]
        dim0.ClearField("dim_value")
        dim0.dim_param = BATCH_DIM
    onnx.checker.check_model(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_suffix(".part")
    onnx.save(model, str(part))
    part.replace(target)
