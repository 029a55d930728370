"""Seconds per 512x512 image on this CPU for the text2image models, and their peak memory (RSS).

The pipelines are built from the real configurations with random weights (the cost is the same as
with the trained ones; no download), then run through ``core.pipelines.text_to_image``:

1. SD-Turbo (SD 2.1 UNet, OpenCLIP-H text encoder), 1 step, guidance 0: end to end with the full
   VAE decode, and with the TAESD decode.
2. BK-SDM-Tiny (block-removed SD 1.4 UNet, CLIP-L text encoder), 25 PNDM steps, guidance 7.5
   (two UNet evaluations per step): with the full VAE and with TAESD.
3. CPU bfloat16 against float32: one BK-SDM-Tiny UNet evaluation, one VAE decode, one TAESD decode:
   time and output error (relative L2 / PSNR against float32 on the same input); then whole
   generations (SD-Turbo 1 step + VAE, BK-SDM-Tiny 8 steps + TAESD) in both dtypes from the same
   seed: CPU seconds and PSNR of the bfloat16 image against the float32 one.

Each case runs in its own process so ``ru_maxrss`` is that case's peak RSS. Default: one torch
thread (the machine is shared), ``--threads`` to change. Every time is given twice: wall-clock
seconds and CPU seconds of the process (``time.process_time``); on a busy shared machine the wall
time grows with the load while the CPU time stays close to what an idle core needs.

Usage: ``python bench/text_to_image.py [--threads 1] [--case NAME]`` -> JSON lines on stdout.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# --------------------------------------------------------------------------- real configurations

SD_VAE = dict(  # the kl-f8 VAE shared by SD 1.x and 2.x
    in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(128, 256, 512, 512), layers_per_block=2,
    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=32,
    act_fn="silu", sample_size=512, scaling_factor=0.18215,
)
TURBO_UNET = dict(  # stabilityai/sd-turbo @ b261bac6 unet/config.json (SD 2.1)
    sample_size=64, in_channels=4, out_channels=4, block_out_channels=(320, 640, 1280, 1280), layers_per_block=2,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    cross_attention_dim=1024, attention_head_dim=(5, 10, 20, 20), use_linear_projection=True, norm_num_groups=32,
)
TURBO_TEXT = dict(  # OpenCLIP ViT-H/14 text tower as used by SD 2.x (penultimate layer: 23 layers)
    vocab_size=49408, hidden_size=1024, intermediate_size=4096, num_attention_heads=16, num_hidden_layers=23,
    max_position_embeddings=77, hidden_act="gelu", projection_dim=512,
)
BK_TINY_UNET = dict(  # Nota-NetsPresso/BK-SDM src/unet_config/bk_tiny/config.json
    sample_size=64, in_channels=4, out_channels=4, block_out_channels=(320, 640, 1280), layers_per_block=1,
    down_block_types=("CrossAttnDownBlock2D",) * 3, up_block_types=("CrossAttnUpBlock2D",) * 3, mid_block_type=None,
    cross_attention_dim=768, attention_head_dim=8, norm_num_groups=32,
)
BK_TINY_TEXT = dict(  # CLIP ViT-L/14 text encoder (SD 1.x)
    vocab_size=49408, hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12,
    max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768,
)
TAESD = dict(  # madebyollin/taesd config.json (the AutoencoderTiny defaults)
    encoder_block_out_channels=(64, 64, 64, 64), decoder_block_out_channels=(64, 64, 64, 64),
    num_encoder_blocks=(1, 3, 3, 3), num_decoder_blocks=(3, 3, 3, 1), latent_magnitude=3, latent_shift=0.5,
)
SCHEDULERS = {
    "turbo": ("EulerDiscreteScheduler", dict(timestep_spacing="trailing", steps_offset=1)),
    "bk_tiny": ("PNDMScheduler", dict(skip_prk_steps=True, steps_offset=1, set_alpha_to_one=False)),
}
PROMPT = "a lighthouse on a cliff at sunset, oil painting"


def clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def since(start: tuple[float, float]) -> tuple[float, float]:
    now = clock()
    return now[0] - start[0], now[1] - start[1]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_pipeline(kind: str, dtype):
    import threading

    import diffusers
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel

    from tests.support.tiny_diffusers import tiny_tokenizer  # any CLIP-style tokenizer: 77 tokens cost the same

    torch.manual_seed(0)
    unet_config, text_config = (TURBO_UNET, TURBO_TEXT) if kind == "turbo" else (BK_TINY_UNET, BK_TINY_TEXT)
    scheduler_name, scheduler_config = SCHEDULERS[kind]
    scheduler = getattr(diffusers, scheduler_name)(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                                   **scheduler_config)
    pipe = diffusers.StableDiffusionPipeline(
        unet=diffusers.UNet2DConditionModel(**unet_config), vae=diffusers.AutoencoderKL(**SD_VAE),
        text_encoder=CLIPTextModel(CLIPTextConfig(**text_config)), tokenizer=tiny_tokenizer(), scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    ).to(dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    pipe._ganhub_lock = threading.Lock()
    return pipe


def build_taesd(dtype):
    import torch
    from diffusers import AutoencoderTiny

    torch.manual_seed(1)
    return AutoencoderTiny(**TAESD).to(dtype=dtype).eval()


def count_params(module) -> float:
    return sum(p.numel() for p in module.parameters()) / 1e6


# --------------------------------------------------------------------------- cases


def case_pipeline(kind: str, model_id: str, steps: int, guidance: float, runs: int) -> dict:
    """End to end through core.pipelines.text_to_image, full VAE, then the same latents decoded by TAESD."""
    import torch

    from core.limits import Budget
    from core.pipelines import text_to_image as t2i
    from core.pipelines.text_to_image_loading import decode_final

    pipe = build_pipeline(kind, torch.float32)
    taesd = build_taesd(torch.float32)
    built_rss = peak_rss_mb()
    out = {"case": kind, "model_id": model_id, "steps": steps, "guidance": guidance, "size": "512x512",
           "params_M": {name: round(count_params(module), 2) for name, module in
                        (("unet", pipe.unet), ("text_encoder", pipe.text_encoder), ("vae", pipe.vae),
                         ("taesd", taesd))}}
    timings = {"unet": [], "text_encoder": []}
    for name in timings:  # wall and CPU seconds of every evaluation of the UNet and the text encoder
        module = getattr(pipe, name)
        module.register_forward_pre_hook(lambda m, a, name=name: timings[name].append(clock()))
        module.register_forward_hook(lambda m, a, o, name=name: timings[name].__setitem__(
            -1, since(timings[name][-1])))
    runs_wall, runs_cpu = [], []
    for run in range(runs):
        settings = t2i.Settings(model_id, "", steps, guidance, 512, 512, seed=run)
        start = clock()
        result = t2i.run(PROMPT, settings, model=pipe, budget=Budget(seconds=0))
        wall, cpu = since(start)  # prompt encoding, every step and the full VAE decode
        assert result.images and result.images[0].size == (512, 512)
        runs_wall.append(wall)
        runs_cpu.append(cpu)
    latents = torch.randn(1, 4, 64, 64, generator=torch.Generator().manual_seed(0))
    start = clock()
    decode_final(pipe, latents)
    vae = since(start)
    decode_final(pipe, latents, taesd)  # warm-up
    start = clock()
    decode_final(pipe, latents, taesd)
    tiny = since(start)

    def median(pairs, i):
        return round(sorted(p[i] for p in pairs)[len(pairs) // 2], 2)

    out.update({
        "runs_wall_s_full_vae": [round(s, 1) for s in runs_wall],
        "runs_cpu_s_full_vae": [round(s, 1) for s in runs_cpu],
        "per_image_full_vae": {"wall_s": round(runs_wall[-1], 1), "cpu_s": round(runs_cpu[-1], 1)},
        "per_image_taesd": {"wall_s": round(runs_wall[-1] - vae[0] + tiny[0], 1),
                            "cpu_s": round(runs_cpu[-1] - vae[1] + tiny[1], 1)},
        "vae_decode": {"wall_s": round(vae[0], 2), "cpu_s": round(vae[1], 2)},
        "taesd_decode": {"wall_s": round(tiny[0], 3), "cpu_s": round(tiny[1], 3)},
        "unet_eval_median": {"wall_s": median(timings["unet"], 0), "cpu_s": median(timings["unet"], 1)},
        "unet_evals_per_image": len(timings["unet"]) // runs,
        "text_encoder_median": {"wall_s": median(timings["text_encoder"], 0),
                                "cpu_s": median(timings["text_encoder"], 1)},
        "rss_after_build_MB": round(built_rss), "peak_rss_MB": round(peak_rss_mb()),
    })
    return out


def case_bfloat16() -> dict:
    """float32 vs bfloat16 on this CPU for the BK-SDM-Tiny UNet, the SD VAE decoder and TAESD."""
    import torch
    import diffusers

    def timed(fn, repeats=2):  # best CPU seconds (robust to other load on the machine) and the output
        fn()  # warm-up (oneDNN picks its kernels)
        best = float("inf")
        for _ in range(repeats):
            start = time.process_time()
            result = fn()
            best = min(best, time.process_time() - start)
        return best, result

    def psnr(a, b):  # images in [-1, 1]
        mse = torch.mean((a.float().clamp(-1, 1) - b.float().clamp(-1, 1)) ** 2).item()
        return 10 * torch.log10(torch.tensor(4.0 / max(mse, 1e-12))).item()

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    latents = torch.randn(2, 4, 64, 64, generator=g)
    context = torch.randn(2, 77, 768, generator=g)
    unet = diffusers.UNet2DConditionModel(**BK_TINY_UNET).eval()
    vae = diffusers.AutoencoderKL(**SD_VAE).eval()
    taesd = build_taesd(torch.float32)
    out = {"case": "bfloat16"}
    with torch.inference_mode():
        t32, eps32 = timed(lambda: unet(latents, 500, encoder_hidden_states=context).sample)
        unet.to(torch.bfloat16)
        t16, eps16 = timed(lambda: unet(latents.bfloat16(), 500, encoder_hidden_states=context.bfloat16()).sample)
        rel = (torch.linalg.vector_norm(eps16.float() - eps32) / torch.linalg.vector_norm(eps32)).item()
        out["unet_bk_tiny_batch2"] = {"fp32_cpu_s": round(t32, 2), "bf16_cpu_s": round(t16, 2),
                                      "rel_l2_error": round(rel, 4)}
        z = latents[:1] / 0.18215
        t32, img32 = timed(lambda: vae.decode(z).sample, repeats=1)
        vae.to(torch.bfloat16)
        t16, img16 = timed(lambda: vae.decode(z.bfloat16()).sample, repeats=1)
        out["vae_decode_512"] = {"fp32_cpu_s": round(t32, 2), "bf16_cpu_s": round(t16, 2),
                                 "psnr_db": round(psnr(img16, img32), 1)}
        t32, img32 = timed(lambda: taesd.decode(latents[:1]).sample)
        taesd.to(torch.bfloat16)
        t16, img16 = timed(lambda: taesd.decode(latents[:1].bfloat16()).sample)
        out["taesd_decode_512"] = {"fp32_cpu_s": round(t32, 3), "bf16_cpu_s": round(t16, 3),
                                   "psnr_db": round(psnr(img16, img32), 1)}
    out["peak_rss_MB"] = round(peak_rss_mb())
    return out


def case_bfloat16_end_to_end() -> dict:
    """Whole generations in float32, then bfloat16 (same pipeline object, same seed): time and image PSNR."""
    import numpy as np
    import torch

    from core.limits import Budget
    from core.pipelines import text_to_image as t2i

    def psnr(a, b):
        mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
        return round(10 * np.log10(255.0**2 / max(mse, 1e-12)), 1)

    out = {"case": "bfloat16_end_to_end"}
    for kind, model_id, steps, guidance, use_taesd in (("turbo", "diffusers.sd_turbo", 1, 0.0, False),
                                                      ("bk_tiny", "diffusers.bk_sdm_tiny", 8, 7.5, True)):
        pipe = build_pipeline(kind, torch.float32)
        taesd = build_taesd(torch.float32) if use_taesd else None
        settings = t2i.Settings(model_id, "", steps, guidance, 512, 512, seed=0, fast_decode=use_taesd)
        images, seconds = {}, {}
        for dtype in (torch.float32, torch.bfloat16):
            pipe.to(dtype=dtype)
            taesd = taesd.to(dtype=dtype) if taesd is not None else None
            start = time.process_time()
            result = t2i.run(PROMPT, settings, model=pipe, taesd=taesd, budget=Budget(seconds=0))
            images[dtype] = result.images[0]
            seconds[dtype] = time.process_time() - start
        out[f"{kind}_{steps}_steps_{'taesd' if use_taesd else 'vae'}"] = {
            "fp32_cpu_s": round(seconds[torch.float32], 1), "bf16_cpu_s": round(seconds[torch.bfloat16], 1),
            "psnr_db": psnr(images[torch.bfloat16], images[torch.float32])}
        del pipe, taesd
    out["peak_rss_MB"] = round(peak_rss_mb())
    return out


CASES = {
    "turbo": lambda: case_pipeline("turbo", "diffusers.sd_turbo", steps=1, guidance=0.0, runs=2),
    "bk_tiny": lambda: case_pipeline("bk_tiny", "diffusers.bk_sdm_tiny", steps=25, guidance=7.5, runs=1),
    "bfloat16": case_bfloat16,
    "bfloat16_end_to_end": case_bfloat16_end_to_end,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--case", choices=sorted(CASES), help="run one case in this process")
    args = parser.parse_args()
    if args.case:
        import torch

        torch.set_num_threads(args.threads)
        result = CASES[args.case]()
        result["threads"] = args.threads
        print(json.dumps(result), flush=True)
        return
    import os
    import platform

    print(json.dumps({"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                      "threads": args.threads, "load_avg_at_start": os.getloadavg()}), flush=True)
    for name in CASES:
        proc = subprocess.run([sys.executable, __file__, "--case", name, "--threads", str(args.threads)],
                              capture_output=True, text=True, env={**os.environ, "GANHUB_DEVICE": "cpu"})
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        print(lines[-1] if lines else json.dumps({"case": name, "error": proc.stderr[-2000:]}), flush=True)
    print(json.dumps({"load_avg_at_end": os.getloadavg()}), flush=True)


if __name__ == "__main__":
    main()
