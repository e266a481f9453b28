"""``fairseq-train`` as one rank of the distributed tests runs it: fairseq's own train command,
which in addition writes, after each update, the rank's model parameters and the sample ids of
its batches to ``STATE.rank<R>.pt`` (fairseq writes checkpoints on rank 0 only, so this is how
the tests see the other ranks).

    python tests/distributed_worker.py STATE fairseq-train-arguments...
"""

import sys

import torch
from fairseq.trainer import Trainer


def record_each_update(path):
    original = Trainer.train_step
    seen = []

    def train_step(self, samples, raise_oom=False):
        output = original(self, samples, raise_oom)
        seen.append(sorted(i for s in samples if s and "id" in s for i in s["id"].tolist()))
        state = {k: v.detach().clone() for k, v in self._model.state_dict().items()}
        rank = self.data_parallel_rank
        torch.save(
            {"model": state, "seen": seen, "updates": self.get_num_updates()},
            f"{path}.rank{rank}.pt",
        )
        return output

    Trainer.train_step = train_step


if __name__ == "__main__":
    record_each_update(sys.argv.pop(1))
    from fairseq_cli.train import cli_main

    cli_main()
