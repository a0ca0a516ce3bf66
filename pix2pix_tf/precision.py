"""`--precision auto`: the compute precision this machine runs fastest without losing quality.

bfloat16 halves the memory traffic of a step, but only pays where the hardware has
bfloat16 arithmetic: TPUs, and CPUs with AVX512_BF16 or AMX (through oneDNN). On other
CPUs TensorFlow emulates it and a step takes about twice as long, so `auto` never
picks it there. GPUs with tensor cores (compute capability 7.0 and up) get float16
with loss scaling. Everything else trains in float32.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

AUTO = "auto"
NATIVE_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo names
_MIN_FLOAT16_GPU = (7, 0)  # Volta: tensor cores


@dataclasses.dataclass(frozen=True)
class Hardware:
    """What the precision choice depends on."""

    cpu_flags: frozenset[str] = frozenset()
    onednn: bool = True  # TF_ENABLE_ONEDNN_OPTS=0 turns oneDNN, and with it native bfloat16, off
    tpus: int = 0
    gpu_compute_capabilities: tuple[tuple[int, int], ...] = ()


def cpu_model() -> str:
    """The CPU's model name as the OS reports it (Linux), else what `platform` knows."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> frozenset[str]:
    """The CPU feature flags the OS reports (Linux); empty where it does not say."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def detect() -> Hardware:
    """Reads the CPU flags and asks TensorFlow for TPUs and GPUs."""
    import tensorflow as tf

    capabilities = []
    for gpu in tf.config.list_physical_devices("GPU"):
        capability = tf.config.experimental.get_device_details(gpu).get("compute_capability")
        if capability:
            capabilities.append(tuple(capability))
    return Hardware(
        cpu_flags=cpu_flags(),
        onednn=os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") != "0",
        tpus=len(tf.config.list_logical_devices("TPU")),
        gpu_compute_capabilities=tuple(capabilities),
    )


def choose(hardware: Hardware) -> tuple[str, str]:
    """(precision, the reason in words) for `hardware`."""
    if hardware.tpus:
        return "mixed_bfloat16", f"{hardware.tpus} TPU core(s): bfloat16 is native there"
    if hardware.gpu_compute_capabilities:
        if all(c >= _MIN_FLOAT16_GPU for c in hardware.gpu_compute_capabilities):
            return "mixed_float16", "GPU(s) with tensor cores (compute capability >= 7.0)"
        return "float32", "GPU(s) without tensor cores: float16 would not be faster"
    native = sorted(set(NATIVE_BF16_CPU_FLAGS) & hardware.cpu_flags)
    if native and hardware.onednn:
        return "mixed_bfloat16", f"the CPU has native bfloat16 ({', '.join(native)})"
    if native:
        return "float32", "oneDNN is off (TF_ENABLE_ONEDNN_OPTS=0), so bfloat16 would be emulated"
    return "float32", "the CPU has no native bfloat16 (no AVX512_BF16 or AMX): it would be emulated, about 2x slower"


def resolve(precision: str, hardware: Hardware | None = None) -> tuple[str, str]:
    """The concrete precision for `precision` ("auto" or a policy name) and why."""
    if precision != AUTO:
        return precision, "set in the config (by an option, or recorded by an earlier run)"
    return choose(hardware or detect())
