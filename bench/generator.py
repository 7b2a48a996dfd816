"""Benchmark the StyleSync generator: parameters, GFLOPs per frame, frames per second.

Runs encode → MaLS → synthesize on synthetic inputs (no decode, no mel, no blending) for each
config, batch size, precision (fp32 / bf16 autocast) and mode (eager / torch.compile), and
appends a table headed by the device name to the "## generator" section of bench/results.md.

    python bench/generator.py                      # CPU-sized defaults, or GPU when present
    python bench/generator.py --device cuda --batch-sizes full=16,64 --compile
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import platform
import re
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from lipdub.model.config import CONFIGS, GeneratorConfig
from lipdub.model.engine import select_device
from lipdub.model.generator import StyleSyncGenerator

RESULTS = Path(__file__).resolve().parent / "results.md"
H100_BF16_TFLOPS = 735.0  # Tensor-core bf16 peak used for the theoretical limit (dense, SXM).
SECTION = "## generator"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    return f"CPU {model}, {torch.get_num_threads()} threads"


def inputs(cfg: GeneratorConfig, n: int, device: torch.device):
    s = cfg.resolution
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 3, s, s, generator=g) * 2 - 1
    m = torch.zeros(n, 1, s, s)
    m[:, :, s // 2 :, s // 4 : 3 * s // 4] = 1
    mel = torch.rand(n, 1, cfg.mel.n_mels, cfg.mel.window_frames, generator=g) * 8 - 4
    return [t.to(device) for t in (x, x.roll(1, 0), m, mel)]


def step(model: StyleSyncGenerator, encode, synthesize, batch) -> torch.Tensor:
    target, ref, mask, mel = batch
    ws, feats = encode(target, ref, mask, mel)
    ws = model.mals(ws.float()[None])[0]
    return synthesize(ws, feats, mask)


def gflops_per_frame(model: StyleSyncGenerator, cfg: GeneratorConfig) -> float:
    batch = inputs(cfg, 2, torch.device("cpu"))
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        step(model.cpu(), model.encode, model.synthesize, batch)
    return counter.get_total_flops() / 2 / 1e9


def frames_per_second(model, cfg, device, n, precision, compiled, seconds) -> float:
    encode, synthesize = model.encode, model.synthesize
    if compiled:
        encode, synthesize = torch.compile(encode), torch.compile(synthesize)
    batch = inputs(cfg, n, device)
    if device.type == "cuda":
        batch = [
            b.contiguous(memory_format=torch.channels_last) if b.ndim == 4 else b for b in batch
        ]
    amp = (
        torch.autocast(device.type, dtype=torch.bfloat16)
        if precision == "bf16"
        else contextlib.nullcontext()
    )

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    with torch.no_grad(), amp:
        for _ in range(2):  # Warm-up (and compilation).
            step(model, encode, synthesize, batch)
        sync()
        iters, t0 = 0, time.perf_counter()
        while True:
            step(model, encode, synthesize, batch)
            iters += 1
            sync()
            if time.perf_counter() - t0 > seconds and iters >= 2:
                break
    return iters * n / (time.perf_counter() - t0)


def write_results(text: str) -> None:
    """Append ``text`` to the generator section of results.md, leaving other sections alone."""
    old = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if SECTION not in old.splitlines():
        old = old.rstrip("\n") + f"\n\n{SECTION}\n"
    match = re.search(rf"^{re.escape(SECTION)}\n(.*?)(?=^## |\Z)", old, re.S | re.M)
    assert match is not None
    prior = match.group(1).strip("\n")
    body = ("\n" + prior + "\n" if prior else "") + "\n" + text.strip("\n") + "\n\n"
    RESULTS.write_text(old[: match.start(1)] + body + old[match.end(1) :].lstrip("\n"))


def parse_batches(spec: str) -> dict[str, list[int]]:
    out = {}
    for part in spec.split(";"):
        name, sizes = part.split("=")
        out[name.strip()] = [int(s) for s in sizes.split(",")]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument(
        "--batch-sizes",
        default=None,
        help='e.g. "lite=1,4;full=1,2" (default: CPU-sized or GPU-sized)',
    )
    ap.add_argument("--compile", action="store_true", help="also time torch.compile")
    ap.add_argument("--compile-configs", default="lite", help="configs to compile (comma list)")
    ap.add_argument("--seconds", type=float, default=1.5, help="timing per measurement")
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args()
    device = select_device(args.device)
    default = "lite=1,4;full=1,2" if device.type == "cpu" else "lite=16,64,256;full=1,16,64"
    batches = parse_batches(args.batch_sizes or default)
    name = device_name(device)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    lines = [f"### {name} — {stamp} (torch {torch.__version__})", ""]
    summary = [
        "| config | res | params (M) | GFLOPs/frame | H100 bf16 limit (frames/s) |",
        "|---|---|---|---|---|",
    ]
    table = ["| config | batch | precision | mode | frames/s |", "|---|---|---|---|---|"]
    for cfg_name, sizes in batches.items():
        cfg = CONFIGS[cfg_name]
        torch.manual_seed(0)
        model = StyleSyncGenerator(cfg).eval().requires_grad_(False)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        gf = gflops_per_frame(model, cfg)
        summary.append(
            f"| {cfg_name} | {cfg.resolution} | {params:.1f} | {gf:.2f} | "
            f"{H100_BF16_TFLOPS * 1e3 / gf:,.0f} |"
        )
        model = model.to(device)
        if device.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        modes = ["eager"] + (
            ["compiled"] if args.compile and cfg_name in args.compile_configs.split(",") else []
        )
        for mode in modes:
            for precision in ("fp32", "bf16"):
                for n in sizes if mode == "eager" else sizes[-1:]:
                    fps = frames_per_second(
                        model, cfg, device, n, precision, mode == "compiled", args.seconds
                    )
                    row = f"| {cfg_name} | {n} | {precision} | {mode} | {fps:,.1f} |"
                    print(row, flush=True)
                    table.append(row)
    text = "\n".join(lines + summary + [""] + table)
    print(text)
    if not args.no_write:
        write_results(text)


if __name__ == "__main__":
    main()
