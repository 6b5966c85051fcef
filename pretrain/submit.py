"""Launch a pretraining run on SLURM through submitit: one task per GPU, on one or more nodes.

    python -m pretrain.submit --config pretrain/configs/X.yaml --nodes 2 --gpus-per-node 8 \\
        --partition gpu --timeout-min 4320 [key=value ...]
    python -m pretrain.submit --config ... --local --tasks 2   # submitit's local executor (no SLURM)

Each task reads its rank from the SLURM job environment and exports the variables the
engine reads under torchrun (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT), so the
training code path is the same as ``torchrun -m pretrain``. On preemption or time-out the
job is requeued and resumes from its last checkpoint (``--resume auto``). Logs of every
task land in ``<out_dir>/submitit/``.
"""
from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

import submitit

from pretrain.config import load_config


class Job:
    """The callable submitit pickles and runs in every task."""

    def __init__(self, config: dict[str, Any], resume: str | None):
        self.config, self.resume = config, resume

    def __call__(self) -> str:
        env = submitit.JobEnvironment()
        os.environ.update(RANK=str(env.global_rank), LOCAL_RANK=str(env.local_rank),
                          WORLD_SIZE=str(env.num_tasks), MASTER_ADDR=env.hostnames[0],
                          MASTER_PORT=str(20000 + int(str(env.job_id).split("_")[0]) % 20000))
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
        from pretrain.engine import train  # imported in the task, after the environment is set

        return str(train(self.config, resume=self.resume))

    def checkpoint(self) -> submitit.helpers.DelayedSubmission:
        """Requeue after preemption / time-out, resuming from the latest checkpoint."""
        return submitit.helpers.DelayedSubmission(Job(self.config, "auto"))


def make_executor(folder: Path, *, local: bool, nodes: int, tasks_per_node: int, gpus_per_node: int,
                  cpus_per_task: int, timeout_min: int, partition: str | None, name: str,
                  slurm_args: dict[str, Any]) -> submitit.Executor:
    executor = (submitit.LocalExecutor(folder=folder) if local
                else submitit.AutoExecutor(folder=folder, slurm_max_num_timeout=30))
    params: dict[str, Any] = dict(nodes=nodes, tasks_per_node=tasks_per_node, timeout_min=timeout_min,
                                  cpus_per_task=cpus_per_task)
    if gpus_per_node:
        params["gpus_per_node"] = gpus_per_node
    if not local:
        params.update(name=name, slurm_partition=partition, slurm_signal_delay_s=120, **slurm_args)
    executor.update_parameters(**{k: v for k, v in params.items() if v is not None})
    return executor


def main(argv: list[str] | None = None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="experiment YAML (pretrain/configs/...)")
    parser.add_argument("overrides", nargs="*", help="dotted key=value overrides of the config")
    parser.add_argument("--resume", default="auto", help="'auto' (default: latest checkpoint of the run) or a path")
    parser.add_argument("--nodes", type=int, default=1)
    parser.add_argument("--gpus-per-node", type=int, default=8, help="also the number of tasks per node")
    parser.add_argument("--cpus-per-task", type=int, default=10)
    parser.add_argument("--timeout-min", type=int, default=60 * 72)
    parser.add_argument("--partition", default=None)
    parser.add_argument("--slurm", action="append", default=[], metavar="KEY=VALUE",
                        help="extra submitit slurm_* parameter, e.g. --slurm constraint=volta32gb")
    parser.add_argument("--local", action="store_true", help="run with submitit's local executor (no SLURM)")
    parser.add_argument("--tasks", type=int, default=None,
                        help="tasks per node for --local (default 1); on SLURM = --gpus-per-node")
    parser.add_argument("--wait", action="store_true", help="wait for the job and print its result")
    args = parser.parse_args(argv)

    config = load_config(args.config, args.overrides)
    folder = Path(config["train"]["out_dir"]) / "submitit"
    slurm_args = {f"slurm_{k}": v for k, v in (item.split("=", 1) for item in args.slurm)}
    tasks = (args.tasks or 1) if args.local else args.gpus_per_node
    executor = make_executor(folder, local=args.local, nodes=args.nodes, tasks_per_node=tasks,
                             gpus_per_node=0 if args.local else args.gpus_per_node,
                             cpus_per_task=args.cpus_per_task, timeout_min=args.timeout_min,
                             partition=args.partition, name=config.get("name", "pretrain"),
                             slurm_args=slurm_args)
    job = executor.submit(Job(config, args.resume))
    print(f"submitted job {job.job_id}: {config.get('name')} -> {config['train']['out_dir']} (logs in {folder})")
    if args.wait:
        results = job.results()
        print(f"job {job.job_id} finished: {results[0]}")
        return results
    return job


if __name__ == "__main__":
    main()
