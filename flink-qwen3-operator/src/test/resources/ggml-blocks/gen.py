"""Writes the ggml block test vectors that GgmlBlocksTest reads: for each type, TYPE.blocks (random
blocks: 2 rows of 512 weights, f16 scales set to finite values of either sign) and TYPE.f32 (those
weights as llama.cpp's own Python package gguf-py dequantizes them, little-endian fp32).

Run from this directory with llama.cpp's gguf-py on the path (the repository's
../shared/tools/llamacpp/build.sh unpacks llama.cpp, gguf-py included, under
~/.cache/flink-qwen3-anchor):  PYTHONPATH=<llama.cpp source>/gguf-py python3 gen.py
"""
import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize

rng = np.random.default_rng(20261130)
# type: (weights per block, bytes per block, byte offsets of its f16 scales)
TYPES = {"Q8_0": (32, 34, [0]), "Q4_0": (32, 18, [0]), "Q4_1": (32, 20, [0, 2]), "Q5_0": (32, 22, [0]),
         "Q5_1": (32, 24, [0, 2]), "IQ4_NL": (32, 18, [0]), "Q2_K": (256, 84, [80, 82]), "Q3_K": (256, 110, [108]),
         "Q4_K": (256, 144, [0, 2]), "Q5_K": (256, 176, [0, 2]), "Q6_K": (256, 210, [208]), "IQ4_XS": (256, 136, [0])}
COLS, ROWS = 512, 2
for name, (elements, nbytes, scales) in TYPES.items():
    blocks = ROWS * COLS // elements
    raw = rng.integers(0, 256, size=(blocks, nbytes), dtype=np.uint8)
    for off in scales:
        raw[:, off:off + 2] = rng.uniform(-0.01, 0.01, size=(blocks, 1)).astype(np.float16).view(np.uint8)
    weights = dequantize(raw.reshape(-1), getattr(T, name)).astype("<f4")
    assert weights.size == ROWS * COLS and np.all(np.isfinite(weights))
    raw.tofile(name + ".blocks")
    weights.tofile(name + ".f32")
