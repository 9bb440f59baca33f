"""Mail through the MTA pipe: ``gateway ingest`` once per message, as Postfix's pipe(8) runs it.

Two setups in one run, on the same new requests (5 KB, each from its own customer, so each
opens a ticket and is acknowledged), until every message is processed and acknowledged:

- ``ingest processes``: no ``serve``; each ``ingest`` processes its own message (at most
  the pool's number at once, so the MTA runs that many: the baseline, what every piped
  message cost before ``ingest`` handed over to ``serve``);
- ``serve running``: ``gateway serve`` is up; each ``ingest`` stores and hands the row
  over, ``--concurrency`` of them at once (Postfix's default for a transport is 20).

It prints msgs/s and the CPU milliseconds a message of the ``ingest`` processes and of
``serve``, and the ratio of the two setups' rates.

    .venv/bin/python bench/pipe.py                       # 60 messages, 8 at a time
    .venv/bin/python bench/pipe.py --count 200 --concurrency 20
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from intake import DIRECTORY_FILE  # noqa: E402
from throughput import SUPPORT, Cluster, new_requests  # noqa: E402


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _pipe(cluster: Cluster, sender: str, raw: bytes) -> None:
    done = subprocess.run([sys.executable, "-m", "gateway", "ingest", "-f", sender, "-r",
                           SUPPORT, "-"], input=raw, env=cluster.env, cwd=cluster.work,
                          capture_output=True, timeout=600, check=False)
    if done.returncode != 0:
        raise SystemExit(f"ingest exited {done.returncode}: {done.stderr.decode()}")


def _run(args: argparse.Namespace, root: Path, label: str, with_serve: bool,
         concurrency: int) -> tuple[str, float, float, float, float]:
    work = root / label.replace(" ", "-")
    work.mkdir()
    cluster_args = argparse.Namespace(env=[], postgres="", redis="")
    cluster = Cluster(cluster_args, "embedded", 0, work, DIRECTORY_FILE)
    mails = new_requests(args.count, label.replace(" ", "-"))
    serve_before = 0.0
    try:
        if with_serve:
            cluster.start()
        else:
            cluster.serve = None
            subprocess.run([sys.executable, "-m", "gateway", "db", "upgrade"], env=cluster.env,
                           cwd=work, check=True, capture_output=True)
            subprocess.run([sys.executable, "-m", "gateway", "directory", "load",
                            str(DIRECTORY_FILE)], env=cluster.env, cwd=work, check=True,
                           capture_output=True)
        if cluster.serve is not None:
            serve_before = sum(cluster.cpu().values())
        children_before = _children_cpu()
        started = time.monotonic()
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(lambda mail: _pipe(cluster, mail[0], mail[2]), mails))
        deadline = time.monotonic() + args.drain
        while not cluster.settled(args.count):
            if time.monotonic() > deadline:
                raise SystemExit(f"{label}: not every message processed after {args.drain} s")
            time.sleep(0.1)
        seconds = time.monotonic() - started
        ingest_cpu = _children_cpu() - children_before
        serve_cpu = (sum(cluster.cpu().values()) - serve_before) if cluster.serve else 0.0
        acks = len(os.listdir(cluster.maildir / "new")) if (cluster.maildir / "new").exists() \
            else 0
        if acks < args.count:
            raise SystemExit(f"{label}: {acks} acknowledgements for {args.count} messages")
    finally:
        if with_serve:
            cluster.stop()
    return (label, args.count / seconds, seconds, ingest_cpu * 1000 / args.count,
            serve_cpu * 1000 / args.count)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=60)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--drain", type=float, default=300)
    args = parser.parse_args()
    slots = len(os.sched_getaffinity(0))  # the processing pool's size: one per core
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="gw-pipe-") as tmp:
        root = Path(tmp)
        runs = [_run(args, root, "ingest processes", False, slots),
                _run(args, root, "serve running", True, args.concurrency)]
    print(f"bench/pipe.py: {args.count} new requests of 5 KB through `gateway ingest`, "
          f"{os.cpu_count()} cores, load average before {load_before:.2f}")
    print(f"  {'setup':<18} {'msgs/s':>7} {'s':>7} {'ingest CPU ms/msg':>18} "
          f"{'serve CPU ms/msg':>17}")
    for label, rate, seconds, ingest_ms, serve_ms in runs:
        print(f"  {label:<18} {rate:7.2f} {seconds:7.1f} {ingest_ms:18.0f} {serve_ms:17.0f}")
    print(f"  ratio serve running / ingest processes: {runs[1][1] / runs[0][1]:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
