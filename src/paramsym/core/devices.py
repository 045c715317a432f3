"""Devices for the roofline times: published peak dense FLOP/s (no structured sparsity) per number
format, memory bandwidth and memory, from the makers' data sheets. `--device h100`, or the user's
own figures: `--device 989.4e12,3.35e12` (peak FLOP/s, bytes/s), optionally `,80GB` of memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from ..errors import ParamsymUsageError

TERA = 10**12
GIGA = 10**9


@dataclass(frozen=True)
class Device:
    """A device's peaks: FLOP/s by compute format ("fp32", "16" for bf16/fp16, "8" for fp8/int8) and
    memory bytes per second; `memory` in bytes (None when not given)."""

    name: str
    peak: dict[str, Fraction]
    bandwidth: Fraction
    memory: int | None
    source: str = ""

    def flops_per_second(self, compute: str) -> Fraction:
        """The peak for matrix products in `compute` (a Format name): fp32 runs at the fp32 peak, bf16 and
        fp16 at the 16-bit tensor peak, fp8 and int8 at the 8-bit one (the 16-bit one where there is none)."""
        key = {"fp32": "fp32", "bf16": "16", "fp16": "16", "fp8": "8", "int8": "8"}.get(compute, "16")
        return self.peak.get(key) or self.peak["16"]


def _device(name: str, fp32: float, bf16: float, eight: float | None, bandwidth: float, memory_gb: int, source: str):
    peak = {"fp32": Fraction(str(fp32)) * TERA, "16": Fraction(str(bf16)) * TERA}
    if eight:
        peak["8"] = Fraction(str(eight)) * TERA
    return Device(name, peak, Fraction(str(bandwidth)) * GIGA, memory_gb * GIGA, source)


# TFLOP/s dense (fp32 without TF32, 16-bit tensor, 8-bit tensor), GB/s, GB
DEVICES = {
    d.name: d
    for d in (
        _device("h100", 66.9, 989.4, 1978.9, 3350, 80, "NVIDIA H100 SXM5 80GB data sheet"),
        _device("h100-pcie", 51.2, 756.5, 1513.0, 2000, 80, "NVIDIA H100 PCIe 80GB data sheet"),
        _device("h200", 66.9, 989.4, 1978.9, 4800, 141, "NVIDIA H200 SXM data sheet"),
        _device("a100", 19.5, 312.0, 624.0, 2039, 80, "NVIDIA A100 SXM4 80GB data sheet (int8 for 8-bit)"),
        _device("a100-40gb", 19.5, 312.0, 624.0, 1555, 40, "NVIDIA A100 SXM4 40GB data sheet (int8 for 8-bit)"),
        _device("l4", 30.3, 121.0, 242.5, 300, 24, "NVIDIA L4 data sheet"),
        _device("rtx4090", 82.6, 165.2, 330.3, 1008, 24, "NVIDIA Ada whitepaper (fp32 accumulate)"),
        _device("v100", 15.7, 125.0, None, 900, 32, "NVIDIA V100 SXM2 32GB data sheet"),
        _device("t4", 8.1, 65.0, 130.0, 320, 16, "NVIDIA T4 data sheet (int8 for 8-bit)"),
        _device("mi300x", 163.4, 1307.4, 2614.9, 5300, 192, "AMD Instinct MI300X data sheet"),
    )
}


def parse_device(text: str, option: str = "--device") -> Device:
    """A device by name (h100), or `FLOPS,BANDWIDTH[,MEMORY]`: peak FLOP/s, bytes per second and memory
    bytes as numbers (989.4e12,3.35e12,80GB)."""
    from ..language.syntax import parse_count

    given = text.strip()
    if given.lower() in DEVICES:
        return DEVICES[given.lower()]
    parts = [part.strip() for part in given.split(",")]
    if len(parts) not in (2, 3) or not all(parts):
        names = ", ".join(DEVICES)
        raise ParamsymUsageError(
            f"{option} {given}: unknown device",
            hint=f"use one of {names}, or give PEAK_FLOPS,BYTES_PER_SECOND[,MEMORY] such as 989.4e12,3.35e12,80GB",
        )
    peak = Fraction(parse_count(parts[0], f"{option}'s peak FLOP/s"))
    bandwidth = Fraction(parse_count(parts[1], f"{option}'s memory bandwidth"))
    memory = parse_count(parts[2], f"{option}'s memory") if len(parts) == 3 else None
    if peak <= 0 or bandwidth <= 0:
        raise ParamsymUsageError(f"{option} {given}: the peak FLOP/s and the bandwidth must be above 0")
    return Device("given", {"fp32": peak, "16": peak, "8": peak}, bandwidth, memory, "given on the command line")


def parse_fraction(text: str, option: str) -> Fraction:
    """A fraction above 0 and at most 1: `0.4` or `40%`."""
    given = text.strip()
    try:
        value = Fraction(given[:-1]) / 100 if given.endswith("%") else Fraction(given)
    except (ValueError, ZeroDivisionError):
        raise ParamsymUsageError(f"{option} must be a fraction such as 0.4 or 40%, not {given!r}") from None
    if not 0 < value <= 1:
        raise ParamsymUsageError(f"{option} must be above 0 and at most 1 (0.4 or 40%), not {given!r}")
    return value
