"""Is dynamic int8 quantisation faster than fp32 here? Times both in one process.

    .venv/bin/python bench/int8.py [--model yolox_nano_320] [--runs 50]
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import click
import numpy as np
import onnxruntime as ort

from models import resolve_model  # before onnxruntime.quantization, whose imports shadow a 'models' package

from onnxruntime.quantization import QuantType, quantize_dynamic  # noqa: E402


def median_ms(session: ort.InferenceSession, blob: np.ndarray, runs: int) -> float:
    name = session.get_inputs()[0].name
    for _ in range(5):
        session.run(None, {name: blob})
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, {name: blob})
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


@click.command()
@click.option("--model", default="yolox_nano_320", show_default=True)
@click.option("--runs", default=50, show_default=True)
def main(model: str, runs: int) -> None:
    path = resolve_model(model).path
    with tempfile.TemporaryDirectory() as tmp:
        quantised = Path(tmp) / "int8.onnx"
        quantize_dynamic(str(path), str(quantised), weight_type=QuantType.QUInt8)
        fp32 = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        int8 = ort.InferenceSession(str(quantised), providers=["CPUExecutionProvider"])
        shape = [d if isinstance(d, int) else 1 for d in fp32.get_inputs()[0].shape]
        blob = np.random.default_rng(0).uniform(0, 255, shape).astype(np.float32)
        t32, t8 = median_ms(fp32, blob, runs), median_ms(int8, blob, runs)
    print(f"{model}: fp32 {t32:.1f} ms, dynamic int8 {t8:.1f} ms per run (median of {runs}); "
          f"int8/fp32 speed ratio {t32 / t8:.2f}")


if __name__ == "__main__":
    main()
