"""The machine a number was measured on: every timing and every result row names it.

Training speed, and in the last digits every trained number, depend on the
CPU (its generation, whether it computes in bfloat16 natively), the number of
threads and the torch version, so a row keeps all of them.
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path

import torch


def _cpuinfo() -> dict:
    """The first processor's entries of /proc/cpuinfo (empty where there is none)."""
    out = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if not line.strip():
                break
            key, _, value = line.partition(":")
            out[key.strip()] = value.strip()
    except OSError:
        pass
    return out


def cpu_model() -> str:
    """The CPU's name, e.g. "AMD EPYC", with its family and model numbers where the name alone is vague."""
    info = _cpuinfo()
    name = info.get("model name") or platform.processor() or "unknown CPU"
    if "cpu family" in info and "model" in info:
        name += f" (family {info['cpu family']} model {info['model']})"
    return name


def cpu_bf16_support() -> str | None:
    """How this CPU computes in bfloat16 natively: "amx", "avx512_bf16", or None (emulated or absent)."""
    try:
        if torch.cpu._is_amx_tile_supported():
            return "amx"
        if torch.cpu._is_avx512_bf16_supported():
            return "avx512_bf16"
    except AttributeError:  # pragma: no cover - torch older than 2.3
        pass
    return None


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def commit() -> str | None:
    """The git commit of the checkout the package runs from, with "+changes" when its files differ; None outside git."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=10)
        if head.returncode:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def machine_info(device: torch.device | str = "cpu") -> dict:
    """What a row records of the machine: CPU (or GPU), cores, threads, torch, Python, the time."""
    device = torch.device(device)
    info = {
        "cpu": cpu_model(),
        "cores": cores(),
        "threads": torch.get_num_threads(),
        "bf16": cpu_bf16_support(),
        "capability": torch.backends.cpu.get_cpu_capability(),
        "device": str(device),
        "torch": torch.__version__.split("+")[0],
        "python": platform.python_version(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def machine_header() -> str:
    """The first line of a lab script's or a benchmark's output: the CPU, the threads, bfloat16 and torch."""
    return (f"# {cpu_model()}, {torch.get_num_threads()} threads, native bfloat16: {cpu_bf16_support() or 'none'}, "
            f"torch {torch.__version__}")
