"""``pathbench sample`` and ``eval`` show progress over denoiser calls, not batches: the bar
moves during a batch and ends at the number of calls made, and counting changes no sample."""

import json

import torch

from pathbench.cli import main
from pathbench.engine.step_progress import denoiser_progress


def test_the_bar_counts_forward_calls_and_learns_the_total_from_the_first_batch():
    model = torch.nn.Linear(2, 2)
    seen = []
    with denoiser_progress(model, "t", batches=3, nfe=4, disable=False) as progress:
        assert progress.bar.total == 12  # the guess before any batch ended: batches x nfe
        for _ in range(3):
            for _ in range(5):  # e.g. nfe 4 and one final call
                model(torch.zeros(1, 2))
                seen.append(progress.bar.n)
            progress.batch_done()
        assert progress.bar.total == 15 and progress.bar.n == 15
    assert seen[:5] == [1, 2, 3, 4, 5]  # it moved inside the first batch
    model(torch.zeros(1, 2))  # the hook is gone with the bar
    assert progress.bar.n == 15


def test_sample_shows_denoiser_calls_and_writes_the_same_ids(kl_run, tmp_path, capsys):
    out = tmp_path / "s.jsonl"
    assert main(["sample", "--ckpt", str(kl_run), "--n", "3", "--batch-size", "2", "--nfe", "3",
                 "--sampler", "basic", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    final = [line for line in err.replace("\r", "\n").splitlines() if "sample basic" in line][-1]
    assert "call" in final and "batch 2/2" in final
    done, total = final.split("|")[2].split()[0].split("/")
    assert done == total and int(total) >= 2 * 3  # at least nfe calls for each of the 2 batches
    first = [json.loads(line)["ids"] for line in out.read_text().splitlines()]
    assert main(["sample", "--ckpt", str(kl_run), "--n", "3", "--batch-size", "2", "--nfe", "3",
                 "--sampler", "basic", "--out", str(tmp_path / "again.jsonl")]) == 0
    assert first == [json.loads(line)["ids"] for line in (tmp_path / "again.jsonl").read_text().splitlines()]
