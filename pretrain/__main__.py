"""python -m pretrain --config pretrain/configs/<experiment>.yaml [key=value ...]"""
from __future__ import annotations

import argparse
import logging

from pretrain.config import load_config
from pretrain.engine import train


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m pretrain", description="Pretrain one method with one experiment config; "
        "writes <train.out_dir>/checkpoint.pth (full state), backbone.pth, config.yaml, log.csv.")
    parser.add_argument("--config", required=True, help="YAML file (a name under pretrain/configs/ works too)")
    parser.add_argument("--resume", default=None,
                        help="'auto' = continue from <out_dir>/checkpoint.pth if present, or a checkpoint path")
    parser.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. optim.max_steps=10")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    train(load_config(args.config, args.overrides), resume=args.resume)


if __name__ == "__main__":
    main()
