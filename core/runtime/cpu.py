"""What this CPU can do natively: the instruction sets that decide which variant is fastest, whether BF16 is
native and which INT8 weight range is safe. Detected once per process, never assumed from one machine."""

from __future__ import annotations

import functools
from dataclasses import dataclass

# The instruction sets that change which variant is fastest or whether it is native, as /proc/cpuinfo names them.
FEATURES = (
    "avx2",
    "avx512f",
    "avx512_vnni",  # AVX-512 VNNI: int8 dot products without int16 saturation (u8 x s8 in one instruction)
    "avx_vnni",  # the same on 256-bit registers (Alder Lake and later, Zen 5)
    "avx512_bf16",  # bfloat16 dot products (Cooper Lake, Zen 4 and later)
    "avx512_fp16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "amx_fp16",
)


@dataclass(frozen=True)
class CpuFeatures:
    """What this CPU can do natively, detected once per process (Linux: /proc/cpuinfo's flags)."""

    flags: frozenset[str]
    known: bool = True  # False: the flags could not be read (then nothing is assumed native)

    @property
    def vnni(self) -> bool:
        return bool(self.flags & {"avx512_vnni", "avx_vnni", "amx_int8"})

    @property
    def bf16(self) -> bool:
        return bool(self.flags & {"avx512_bf16", "amx_bf16"})

    @property
    def names(self) -> list[str]:
        """The relevant sets present, in :data:`FEATURES` order (what results show)."""
        return [f for f in FEATURES if f in self.flags]

    def bf16_reason(self) -> str:
        """ "" when BF16 is native here, else why a BF16 variant is unavailable."""
        if self.bf16:
            return ""
        if not self.known:
            return "this CPU's instruction sets could not be read, so native BF16 is not assumed"
        return "this CPU has no AVX512_BF16 or AMX: BF16 would be emulated (slower than FP32), so it is not offered"

    def summary(self) -> str:
        """'AVX2, AVX-512, VNNI, BF16' — what the CPU has of what matters here."""
        if not self.known:
            return "instruction sets unknown"
        parts = [name for name, has in (("AVX2", "avx2" in self.flags), ("AVX-512", "avx512f" in self.flags),
                                        ("VNNI", self.vnni), ("BF16", self.bf16),
                                        ("AMX", "amx_tile" in self.flags)) if has]  # fmt: skip
        return ", ".join(parts) or "no AVX2"


def read_cpu_flags(cpuinfo: str) -> CpuFeatures:
    """The flags of a /proc/cpuinfo text (x86 ``flags``, ARM ``Features``)."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return CpuFeatures(frozenset(value.split()))
    return CpuFeatures(frozenset(), known=False)


@functools.cache
def cpu_features() -> CpuFeatures:
    try:
        with open("/proc/cpuinfo") as f:
            return read_cpu_flags(f.read())
    except OSError:
        return CpuFeatures(frozenset(), known=False)
