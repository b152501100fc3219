#!/usr/bin/python3
"""compare_npy.py GOT.npy EXPECT.npy [TOL] — the largest absolute difference between two float arrays,
relative to the largest magnitude of the expected one; exit 1 when it exceeds TOL (default 1e-4) or
the shapes differ."""
import sys

import numpy as np

got, want = np.load(sys.argv[1]), np.load(sys.argv[2])
tol = float(sys.argv[3]) if len(sys.argv) > 3 else 1e-4
if got.shape != want.shape:
    print(f"shape {got.shape}, expected {want.shape}")
    sys.exit(1)
scale = max(float(np.abs(want).max()), 1e-30)
err = float(np.abs(got.astype(np.float64) - want.astype(np.float64)).max()) / scale
print(f"max |diff| / max |expected| = {err:.3g} (tolerance {tol:g}, shape {want.shape})")
sys.exit(0 if err <= tol else 1)
