"""CPU time per message of processing and delivery, on a fixed workload.

Wall-clock benchmarks wander on a shared machine; the CPU time of one thread
doing a fixed amount of work does not (much).  This script stores N messages
(the end-to-end messages of ``bench/intake.py``: 5 KB, each from its own customer,
so each opens a ticket and gets an acknowledgement; ``--repeat-senders`` takes the
people of ``examples/directory.toml`` instead, whose repeated requests are duplicates)
through the SMTP intake's ``SpoolWriter`` (group commit, 8 at a time), then runs
each through ``process_spool_entry`` and delivers its outbox rows to a maildir, in
one thread, and prints the CPU milliseconds per message of each phase.

    .venv/bin/python bench/processing.py                  # 500 messages
    .venv/bin/python bench/processing.py --profile out.prof   # plus cProfile of processing
    .venv/bin/python bench/processing.py --corpus ../shared/corpus --count 300
                                          # real mail instead: a fixed sample of its .eml
    .venv/bin/python bench/processing.py --postgres postgresql://postgres@127.0.0.1/test \
        --statements 15                   # on a fresh PostgreSQL database; the 15
                                          # statements run most often, per message

It also counts the SQL statements per message of each phase.  The profile measures
CPU time (``time.process_time``), not wall time, so other processes on the machine do
not show up in it as time spent in our code.
"""

from __future__ import annotations

import argparse
import cProfile
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from intake import DIRECTORY_FILE, E2E_SENDERS, e2e_message, e2e_sender  # noqa: E402
from throughput import Database_  # noqa: E402

from gateway.config import Settings  # noqa: E402
from gateway.directory import load_directory_file  # noqa: E402
from gateway.pipeline.processing import process_spool_entry  # noqa: E402
from gateway.prepared import Prepared  # noqa: E402
from gateway.runtime.app import Gateway  # noqa: E402
from inbound.spool import SpoolWriter  # noqa: E402
from outbound.delivery import deliver_outbox_item  # noqa: E402


class _Statements:
    """Counts the SQL statements every engine runs (the bench's own included), and the
    statements run on the driver's own cursor (``gateway.prepared``), which no engine
    event sees."""

    def __init__(self) -> None:
        self.count = 0
        self.by_text: Counter[str] = Counter()
        event.listen(Engine, "before_cursor_execute", self._seen)
        rows = Prepared.rows
        shapes: dict[Prepared, str] = {}

        def counted(read: Prepared, session: Session, *args: Any, **kwargs: Any
                    ) -> list[tuple[Any, ...]]:
            found = rows(read, session, *args, **kwargs)
            # Unless it went through SQLAlchemy (whose event counted it), it ran on the
            # driver's own cursor.
            if read._plans.get(session.connection().dialect.name) is not None:  # noqa: SLF001
                self.count += 1
                if read not in shapes:  # compiling it costs more than running it
                    shapes[read] = _shape(str(read.statement))
                self.by_text[shapes[read]] += 1
            return found
        Prepared.rows = counted  # type: ignore[method-assign,assignment]

    def _seen(self, _conn: Any, _cursor: Any, statement: str, *args: Any) -> None:
        self.count += 1
        self.by_text[_shape(statement)] += 1

    @contextmanager
    def counting(self, into: list[int]) -> Iterator[None]:
        before = self.count
        try:
            yield
        finally:
            into[0] += self.count - before


def _shape(statement: str) -> str:
    """A statement's first words, to group its runs."""
    return " ".join(statement.split())[:110]


def _corpus_sample(folder: Path, count: int) -> list[bytes]:
    """``count`` messages of the corpus's .eml files, the same sample on every run."""
    files = sorted(folder.rglob("*.eml"))
    if not files:
        raise SystemExit(f"no .eml files under {folder}")
    random.Random(18).shuffle(files)
    return [files[i % len(files)].read_bytes() for i in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--size", type=int, default=5120)
    parser.add_argument("--profile", type=Path, help="write a cProfile of processing here")
    parser.add_argument("--repeat-senders", action="store_true",
                        help="the directory's five senders, so most messages are duplicates")
    parser.add_argument("--postgres", metavar="ADMIN_URL",
                        help="run on a fresh database of this PostgreSQL server")
    parser.add_argument("--statements", type=int, default=0, metavar="N",
                        help="print the N statements run most often, per message")
    parser.add_argument("--corpus", type=Path,
                        help="take a fixed sample of the .eml files under this folder instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gw-prof-", dir=ROOT / "bench") as tmp:
        work = Path(tmp)
        database = Database_.make("scaleout" if args.postgres else "embedded", work,
                                  args.postgres or "")
        settings = Settings(database_url=database.url,
                            outbound_url=f"maildir:{work / 'sent'}", var_dir=work / "var",
                            secret_key="x" * 64, ack_limit_per_hour=1_000_000,
                            ack_limit_per_domain_per_hour=1_000_000)
        gateway = Gateway(settings)
        gateway.db.upgrade()
        with gateway.db.transaction() as session:
            load_directory_file(session, DIRECTORY_FILE)
        if args.corpus is not None:
            raws = _corpus_sample(args.corpus, args.count)
        else:
            raws = [e2e_message(i, "prof", E2E_SENDERS[i % len(E2E_SENDERS)]
                                if args.repeat_senders else e2e_sender(i), args.size)[1]
                    for i in range(args.count)]
        statements = _Statements()
        process_sql, deliver_sql = [0], [0]
        writer = SpoolWriter(gateway.db)
        started = time.process_time()
        futures = []
        for index, raw in enumerate(raws):
            futures.append(writer.submit(raw, source="smtp", mail_from="bench@client.example",
                                         rcpt_tos=["support@support.example"], peer="127.0.0.1"))
            if index % 8 == 7:  # like 8 SMTP sessions waiting for their 250 together
                futures[-1].result()
        ids = [future.result().spool_id for future in futures]
        store_cpu = time.process_time() - started
        writer.close()
        profiler = cProfile.Profile(time.process_time) if args.profile else None
        process_cpu = deliver_cpu = 0.0
        delivered = 0
        for spool_id in ids:
            started = time.process_time()
            if profiler:
                profiler.enable()
            with statements.counting(process_sql):
                outcome = process_spool_entry(gateway.db, gateway.services, spool_id)
            mid = time.process_time()
            process_cpu += mid - started
            with statements.counting(deliver_sql):
                for outbox_id in outcome.outbox_ids:
                    if deliver_outbox_item(gateway.db, gateway.transport, settings,
                                           outbox_id) == "sent":
                        delivered += 1
            if profiler:
                profiler.disable()
            deliver_cpu += time.process_time() - mid
        if profiler and args.profile:
            profiler.dump_stats(args.profile)
        gateway.close()
        database.drop()
    n = args.count
    what = (f"corpus sample of {args.corpus}" if args.corpus is not None
            else f"{args.size} bytes")
    print(f"{n} messages ({what}), {delivered} notices delivered to a maildir")
    print(f"  intake: prepare + group commit  {store_cpu / n * 1000:7.2f} ms CPU per message")
    print(f"  process_spool_entry             {process_cpu / n * 1000:7.2f} ms CPU per message"
          f"  {process_sql[0] / n:5.1f} SQL statements")
    print(f"  delivery of its outbox rows     {deliver_cpu / n * 1000:7.2f} ms CPU per message"
          f"  {deliver_sql[0] / n:5.1f} SQL statements")
    print(f"  processing + delivery           {(process_cpu + deliver_cpu) / n * 1000:7.2f} "
          "ms CPU per message")
    _print_statements(statements, args.statements, n)


def _print_statements(statements: _Statements, most: int, n: int) -> None:
    if most:
        print("  statements run most often (store, process, deliver), per message:")
        for shape, runs in statements.by_text.most_common(most):
            print(f"    {runs / n:5.2f}  {shape}")


if __name__ == "__main__":
    main()
