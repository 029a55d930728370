"""The restricted unpickler: a hostile or malformed pickle is refused or made inert, never run."""

from __future__ import annotations

import io
import pickle
import pickletools
import zipfile
from pathlib import Path

import pytest
import torch

from core.weights import unpickler
from core.weights.convert import read_state_dict
from core.weights.unpickler import OpaqueObject, restricted_load


class FileWriter:
    """Unpickling this with pickle.load would create ``path`` (arbitrary code execution)."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return exec, (f"open({str(self.path)!r}, 'w').write('pwned')",)


def zip_with_pickle(path: Path, payload: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", payload)
        archive.writestr("archive/byteorder", "little")
    return path


def test_malicious_pickle_is_neutralised(tmp_path):
    target = tmp_path / "pwned.txt"
    payload = pickle.dumps({"state_dict": {"w": FileWriter(target)}}, protocol=2)
    # The payload is live: it imports exec and calls it (read statically with pickletools, never run here).
    ops = [(op.name, arg) for op, arg, _ in pickletools.genops(payload)]
    assert ("GLOBAL", "__builtin__ exec") in ops and any(name == "REDUCE" for name, _ in ops)

    path = zip_with_pickle(tmp_path / "evil.ckpt", payload)
    checkpoint = restricted_load(path)
    assert not target.exists()
    evil = checkpoint["state_dict"]["w"]
    assert isinstance(evil, OpaqueObject) and evil.global_name == "__builtin__.exec"  # protocol 2 spelling
    assert "pwned" in evil.args[0]  # the code was recorded as a string, never run
    with pytest.raises(ValueError, match="not a tensor"):
        read_state_dict(path, {"type": "lightning_ckpt", "key": "state_dict"})
    assert not target.exists()


@pytest.mark.parametrize("module,name", [("os", "system"), ("posix", "system"), ("subprocess", "call"),
                                         ("builtins", "eval"), ("builtins", "getattr")])
def test_every_non_allowlisted_global_is_inert(tmp_path, module, name):
    target = tmp_path / "touched"
    # GLOBAL module name; MARK; string; TUPLE; REDUCE; STOP  ==  module.name("touch ...")
    payload = b"\x80\x02c" + f"{module}\n{name}\n".encode() + b"(X" + len(f"touch {target}").to_bytes(4, "little") \
        + f"touch {target}".encode() + b"tR."
    result = restricted_load(zip_with_pickle(tmp_path / "evil.pt", payload))
    assert isinstance(result, OpaqueObject) and result.global_name == f"{module}.{name}"
    assert result.args == (f"touch {target}",)
    assert not target.exists()


def test_malformed_files_are_refused(tmp_path):
    buffer = io.BytesIO()
    torch.save({"w": torch.arange(4.0)}, buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        root = archive.namelist()[0].split("/")[0]
        data = archive.read(f"{root}/data.pkl")
        storage = archive.read(f"{root}/data/0")
    # Same pickle, but the tensor claims 1000 elements of a 4-element storage.
    evil = data.replace(b"K\x04\x85", b"M\xe8\x03\x85", 1)
    assert evil != data
    path = tmp_path / "oob.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", evil)
        archive.writestr("archive/data/0", storage)
    with pytest.raises(ValueError, match="could not be read safely"):
        restricted_load(path)
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps({"w": 1}))
    with pytest.raises(ValueError, match="not a torch zip archive"):
        restricted_load(plain)
    with pytest.raises(ValueError, match="storage"):
        missing = tmp_path / "missing.pt"
        with zipfile.ZipFile(missing, "w") as archive:
            archive.writestr("archive/data.pkl", data)  # refers to data/0, which is absent
        restricted_load(missing)


def test_build_cannot_change_the_shared_allowlisted_objects(tmp_path):
    # GLOBAL torch.FloatStorage; {"dtype": "x"}; BUILD  -> every later conversion would break
    storage_type = b"\x80\x02ctorch\nFloatStorage\n}X\x05\x00\x00\x00dtypeX\x01\x00\x00\x00xsb."
    # GLOBAL torch._utils._rebuild_tensor_v2; (None, {"__defaults__": (1,)}); BUILD  -> setattr on the function
    function = b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\nN}X\x0c\x00\x00\x00__defaults__K\x01\x85s\x86b."
    for i, payload in enumerate((storage_type, function)):
        with pytest.raises(ValueError, match="could not be read safely"):
            restricted_load(zip_with_pickle(tmp_path / f"build{i}.pt", payload))
    assert unpickler._ALLOWED_GLOBALS[("torch", "FloatStorage")].dtype is torch.float32
    assert unpickler._rebuild_tensor.__defaults__ is None
    good = tmp_path / "good.pt"
    torch.save({"w": torch.arange(3.0)}, good)
    assert torch.equal(read_state_dict(good, {"type": "lightning_ckpt"})["w"], torch.arange(3.0))
