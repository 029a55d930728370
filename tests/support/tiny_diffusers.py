"""A tiny random Stable Diffusion pipeline (and TAESD) as the bytes of a Hub repository.

Same layout as the real repositories (``model_index.json``, ``unet/``, ``vae/``,
``text_encoder/``, ``tokenizer/``, ``scheduler/``), written by ``save_pretrained``, so tests can
serve it from ``tests.support.local_servers.LocalHub`` and load it through the real resolver.
The tokenizer is a byte-level BPE over the 256 byte symbols plus a few merges; its
``model_max_length`` is CLIP's 77. Weights are random but fixed (seeded), so the bytes, and the
local Hub's commit shas, are the same in every run.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

TINY_REPO = "tests/tiny-stable-diffusion"
TINY_TAESD_REPO = "tests/tiny-taesd"
SD_PATTERNS = ["model_index.json", "scheduler/*.json", "tokenizer/*", "text_encoder/*.json",
               "text_encoder/*.safetensors", "unet/*.json", "unet/*.safetensors", "vae/*.json", "vae/*.safetensors"]
MERGES = [("c", "a"), ("ca", "t</w>"), ("d", "o"), ("do", "g</w>"), ("r", "e"), ("re", "d</w>")]


def _folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def tiny_tokenizer():
    from tokenizers import pre_tokenizers
    from transformers import CLIPTokenizer

    symbols = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab: dict[str, int] = {}
    for symbol in symbols + [s + "</w>" for s in symbols]:  # word-inner and word-final forms
        vocab[symbol] = len(vocab)
    for a, b in MERGES:
        vocab[a + b] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=MERGES, model_max_length=77)


@functools.cache
def tiny_pipeline_files() -> dict[str, bytes]:
    """The files of a tiny random StableDiffusionPipeline (8x latent downsampling, like SD)."""
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    tokenizer = tiny_tokenizer()
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, block_out_channels=(8, 16), layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=16, attention_head_dim=2, norm_num_groups=4,
    )
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8, 8, 8), layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=4,
    )
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_attention_heads=2, num_hidden_layers=2,
        max_position_embeddings=77, projection_dim=16, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    ))
    scheduler = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", skip_prk_steps=True,
                              steps_offset=1, set_alpha_to_one=False)
    pipe = StableDiffusionPipeline(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    with tempfile.TemporaryDirectory() as tmp:
        pipe.save_pretrained(tmp, safe_serialization=True)
        files = _folder_bytes(Path(tmp))
    files["README.md"] = b"tiny random pipeline for tests\n"
    files["unet/diffusion_pytorch_model.bin"] = b"not a pickle: must never be downloaded"
    return files


@functools.cache
def tiny_taesd_files() -> dict[str, bytes]:
    """The files of a tiny random AutoencoderTiny (TAESD layout: config.json + safetensors at the root)."""
    import torch
    from diffusers import AutoencoderTiny

    torch.manual_seed(1)
    taesd = AutoencoderTiny(encoder_block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8),
                            num_encoder_blocks=(1, 1, 1, 1), num_decoder_blocks=(1, 1, 1, 1))
    with tempfile.TemporaryDirectory() as tmp:
        taesd.save_pretrained(tmp, safe_serialization=True)
        return _folder_bytes(Path(tmp))


def manifest_entry(repo_id: str, revision: str, **config) -> dict:
    """A manifest entry for the tiny pipeline served at ``repo_id@revision``."""
    return {
        "title": f"Tiny test pipeline ({repo_id})", "arch": "diffusers", "apps": ["text2image"],
        "license": "Apache-2.0",
        "paper": "none", "training_data": "none (random weights)", "card": "random weights for tests",
        "input": {"kind": "text"},
        "config": {"pipeline": "StableDiffusionPipeline", "scheduler": "PNDMScheduler", "steps": 2, "max_steps": 60,
                   "guidance_scale": 5.0, "size": 64, "min_size": 32, "max_size": 128, **config},
        "sources": [{"kind": "hf", "repo_id": repo_id, "revision": revision, "allow_patterns": SD_PATTERNS,
                     "ignore_patterns": ["*.fp16.safetensors"]}],
    }


def taesd_manifest_entry(repo_id: str, revision: str, files_sha256: dict | None = None) -> dict:
    source = {"kind": "hf", "repo_id": repo_id, "revision": revision,
              "allow_patterns": ["config.json", "diffusion_pytorch_model.safetensors"]}
    if files_sha256:
        source["files_sha256"] = files_sha256
    return {"title": "Tiny test TAESD", "arch": "diffusers", "apps": ["text2image"], "license": "MIT", "paper": "none",
            "training_data": "none", "card": "random weights for tests", "input": {"kind": "latent"},
            "config": {"class": "AutoencoderTiny"}, "sources": [source]}


def served_test_models(tmp_path_factory):
    """A module-scoped fixture body: one local Hub serving the tiny pipeline and TAESD, and a test
    manifest with them (``diffusers.tiny``, float16 on CUDA), a scheduler variant and broken variants.
    Yields the Hub server, its ``revision`` set to the tiny pipeline's commit."""
    import json

    import pytest
    import torch

    from core.cache import MODEL_CACHE
    from core.pipelines import text_to_image as t2i
    from tests.support.local_servers import LocalHub, isolate_weights

    root = tmp_path_factory.mktemp("t2i")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is fastest, and the CPU is shared
    with pytest.MonkeyPatch.context() as mp, LocalHub() as server:
        isolate_weights(mp, root, server.url)
        mp.setenv("GANHUB_MANIFEST", str(root / "manifest.json"))
        mp.setattr(t2i, "PREVIEW_MAX_SHARE", 1.0)  # a preview at every step, however fast the steps
        mp.setenv("GANHUB_CPU_BF16", "0")  # float32: the same numbers on every CPU
        revision = server.add_files(TINY_REPO, tiny_pipeline_files())
        taesd_revision = server.add_files(TINY_TAESD_REPO, tiny_taesd_files())
        models = {
            "diffusers.tiny": {**manifest_entry(TINY_REPO, revision), "cuda_dtype": "float16"},
            "diffusers.tiny_euler": manifest_entry(TINY_REPO, revision, scheduler="EulerDiscreteScheduler"),
            "diffusers.absent": manifest_entry("tests/not-on-the-hub", "1" * 40),
            "diffusers.taesd": taesd_manifest_entry(TINY_TAESD_REPO, taesd_revision),
            "diffusers.taesd_absent": taesd_manifest_entry("tests/no-taesd", "2" * 40),
            "diffusers.taesd_bad_sha": taesd_manifest_entry(
                TINY_TAESD_REPO, taesd_revision, {"diffusion_pytorch_model.safetensors": "0" * 64}),
        }
        (root / "manifest.json").write_text(json.dumps({"schema_version": 1, "models": models}))
        MODEL_CACHE.clear()
        server.revision = revision
        yield server
        MODEL_CACHE.clear()
    torch.set_num_threads(threads)
