"""The trainers' shared run-folder helpers: optimiser state round trip, atomic writes, the log."""

from __future__ import annotations

import torch

from core.train import checkpoints


def adam_after_two_steps(seed: int = 0):
    torch.manual_seed(seed)
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    for _ in range(2):
        opt.zero_grad()
        model(torch.randn(4, 3)).square().sum().backward()
        opt.step()
    return model, opt


def test_optimizer_state_round_trips_through_safetensors(tmp_path):
    model, opt = adam_after_two_steps()
    flat = checkpoints.optimizer_tensors("opt", opt)
    assert set(flat) == {f"opt.{i}.{name}" for i in (0, 1) for name in ("step", "exp_avg", "exp_avg_sq")}
    checkpoints.save_atomic({**flat, **{f"m.{k}": v for k, v in model.state_dict().items()}},
                            tmp_path / "state.safetensors", {"step": "2"})
    assert [p.name for p in tmp_path.iterdir()] == ["state.safetensors"]  # the .part file was renamed
    assert checkpoints.metadata_of(tmp_path / "state.safetensors") == {"step": "2"}

    from safetensors.torch import load_file

    saved = load_file(str(tmp_path / "state.safetensors"))
    copy = torch.nn.Linear(3, 2)
    copy.load_state_dict({k[2:]: v for k, v in saved.items() if k.startswith("m.")})
    copy_opt = torch.optim.Adam(copy.parameters(), lr=0.1)
    checkpoints.restore_optimizer("opt", copy_opt, saved)
    x = torch.randn(4, 3)
    for m, o in ((model, opt), (copy, copy_opt)):  # one more step from the same state: the same weights
        o.zero_grad()
        m(x).square().sum().backward()
        o.step()
    assert torch.equal(model.weight, copy.weight) and torch.equal(model.bias, copy.bias)


def test_run_log_prints_and_appends(tmp_path, capsys):
    log = checkpoints.run_log(tmp_path)
    log("step 1")
    log("step 2")
    assert (tmp_path / "log.txt").read_text() == "step 1\nstep 2\n"
    assert capsys.readouterr().out == "step 1\nstep 2\n"
