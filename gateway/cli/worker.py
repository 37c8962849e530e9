"""`sluice worker`: the evaluation queue in a process of its own (see evaluations/worker_cli.py)."""

from __future__ import annotations

import argparse
from typing import Any

from gateway.cli.command import configure_logging, server_settings
from gateway.cli.serve import check_config_file

__all__ = ["register"]


def register(commands: Any) -> None:
    worker = commands.add_parser("worker", help="run evaluation jobs from the Redis queue")
    worker.add_argument(
        "--name", help="consumer name in the queue (default: HOSTNAME-PID); unique per worker"
    )
    worker.add_argument(
        "--metrics-port",
        type=int,
        default=0,
        help="serve this worker's Prometheus metrics on this port (default: off)",
    )
    worker.set_defaults(run=_worker)


def _worker(args: argparse.Namespace) -> int:
    from gateway.evaluations.worker_cli import run_worker

    settings = server_settings()
    check_config_file(settings)
    configure_logging()
    return run_worker(settings, name=args.name, metrics_port=args.metrics_port)
