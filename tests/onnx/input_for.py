#!/usr/bin/python3
"""input_for.py MODEL.onnx OUT.npy [BATCH] — a seeded random float32 input in [-1, 1] of the shape the
ONNX model's first input declares, its dynamic batch set to BATCH (default 2)."""
import sys

import numpy as np
import onnx

model = onnx.load(sys.argv[1])
batch = int(sys.argv[3]) if len(sys.argv) > 3 else 2
dims = [d.dim_value if d.dim_value > 0 else batch for d in model.graph.input[0].type.tensor_type.shape.dim]
dims[0] = batch
np.save(sys.argv[2], np.random.default_rng(0).uniform(-1, 1, dims).astype(np.float32))
