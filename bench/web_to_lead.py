"""Load-test the web-to-lead endpoint (``POST /crm_lead/w/<key>``) served by two worker processes.

    python bench/web_to_lead.py                                  # throw-away SQLite file, 10 s
    python bench/web_to_lead.py --seconds 20 --clients 24
    python bench/web_to_lead.py --postgresql                     # a throw-away PostgreSQL database
    python bench/web_to_lead.py --rate-limit 20                  # with the per-address limit on (see below)

A fresh instance (edition ``marketing``: leads without sales) is created on a throw-away database with one
web form routed to a sales rep (so each submission also writes the rep's in-app notification), then
``--workers`` waitress processes (default 2) serve it, each on a port of its own on 127.0.0.1, with
``--threads`` threads each. This process then loads them over loopback for ``--seconds`` with ``--clients``
concurrent keep-alive HTTP clients (``http.client`` in threads, spread over the workers), each posting
form-encoded submissions with distinct names, e-mails and mobiles, as a website's visitors would.

It prints submissions per second, latency p50/p95/max, errors by status, and the leads stored — which must
equal the successful submissions. The bar (issue 5): ≥ 200 submissions/s; the exit code is 1 below it or
when the counts differ.

The rate limit: every request comes from 127.0.0.1, so by default the benchmark form has no limit
(``rate_limit=0``). With ``--rate-limit N`` the form limits N submissions per minute per address, the
workers trust 127.0.0.1 as a proxy (``CRM_LEAD_WEBFORM_TRUSTED_PROXIES``) and every request carries another
``X-Forwarded-For`` address — the limiter's upsert is then part of every submission.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BAR_PER_SECOND = 200.0
FORM_KEY = "bench-web-to-lead-form-key"
PASSWORD = "bench-password"


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=10.0, help="length of the load (default 10)")
    p.add_argument("--clients", type=int, default=16, help="concurrent keep-alive clients (default 16)")
    p.add_argument("--workers", type=int, default=2, help="server processes (default 2)")
    p.add_argument("--threads", type=int, default=4, help="waitress threads per worker (default 4)")
    p.add_argument("--postgresql", action="store_true", help="a throw-away PostgreSQL database "
                   "(MOSAIC_TEST_PG_URL, default postgresql+psycopg://postgres@127.0.0.1:5432/postgres)")
    p.add_argument("--rate-limit", type=int, default=0, help="submissions per minute per address (0: off)")
    p.add_argument("--keep", action="store_true", help="keep the throw-away instance folder")
    # internal: run one worker
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--database", help=argparse.SUPPRESS)
    p.add_argument("--instance", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    return p.parse_args()


def _config(database: str, rate_limit: int) -> dict:
    config = {"DATABASE_URL": database, "SECRET_KEY": "bench-secret", "MAIL_SERVER": None}
    if rate_limit:
        config["CRM_LEAD_WEBFORM_TRUSTED_PROXIES"] = ("127.0.0.1",)
    return config


# -- the instance -------------------------------------------------------------------------------------
def prepare(database: str, instance: Path, rate_limit: int) -> int:
    """Initialise the instance, add a rep and the benchmark form; return the form's id."""
    from sqlalchemy import select

    from addons.crm_lead.webform_models import WebForm
    from core import accounts
    from core.app import create_app
    from core.extensions import db
    from core.instance import initialise
    from core.models import User

    app = create_app(_config(database, rate_limit), instance_path=instance)
    with app.app_context():
        initialise(app, "marketing", "zh_CN", "admin", PASSWORD)
        rep = accounts.ensure_user("rep", PASSWORD, display_name="销售代表", email="rep@example.cn")
        db.session.flush()
        form = WebForm(public_key=FORM_KEY, title="官网咨询", campaign="官网", rate_limit=rate_limit, owner_id=rep.id,
                       fields=[{"field": "name", "label": "姓名", "required": True},
                               {"field": "company", "label": "公司", "required": False},
                               {"field": "mobile", "label": "手机", "required": True},
                               {"field": "email", "label": "邮箱", "required": False},
                               {"field": "description", "label": "留言", "required": False}])
        db.session.add(form)
        db.session.commit()
        assert db.session.execute(select(User.id).where(User.username == "rep")).scalar() == rep.id
        form_id = form.id
        db.session.remove()
        db.engine.dispose()
    return form_id


def serve(args: argparse.Namespace) -> None:
    """One worker: the app under waitress on 127.0.0.1:``--port`` (no scheduler)."""
    import logging

    from waitress import serve as waitress_serve

    from core.app import create_app

    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "task queue depth" under load
    app = create_app(_config(args.database, args.rate_limit), instance_path=args.instance)
    # waitress drops X-Forwarded-For unless told to keep it (the app decides whom to trust)
    waitress_serve(app, host="127.0.0.1", port=args.port, threads=args.threads, ident="Mosaic CRM bench",
                   connection_limit=1000, channel_timeout=30, clear_untrusted_proxy_headers=not args.rate_limit)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ready(port: int, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the worker on port {port} exited with {process.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", f"/crm_lead/w/{FORM_KEY}")
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the worker on port {port} did not answer within {timeout:.0f} s")


# -- the load -----------------------------------------------------------------------------------------
class Results:
    def __init__(self):
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.errors: dict[str, int] = {}

    def ok(self, seconds: float) -> None:
        with self.lock:
            self.latencies.append(seconds)

    def error(self, kind: str) -> None:
        with self.lock:
            self.errors[kind] = self.errors.get(kind, 0) + 1


def client(number: int, port: int, deadline: float, results: Results, rate_limited: bool) -> None:
    """One website visitor after another on one keep-alive connection, until ``deadline``."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    sequence = 0
    while time.monotonic() < deadline:
        sequence += 1
        serial = number * 1_000_000 + sequence
        body = urlencode({"name": f"访客{serial}", "company": f"测试科技{serial % 997}有限公司",
                          "mobile": f"139{serial % 100_000_000:08d}", "email": f"visitor{serial}@example.cn",
                          "description": "想了解一下贵公司的产品报价", "homepage_url": ""})
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json",
                   "Origin": "https://www.example.com", "Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8",
                   "Referer": "https://www.example.com/landing?utm_campaign=bench"}
        if rate_limited:  # another visitor's address each time, through the trusted proxy
            headers["X-Forwarded-For"] = f"10.{serial >> 16 & 255}.{serial >> 8 & 255}.{serial & 255}"
        started = time.perf_counter()
        try:
            conn.request("POST", f"/crm_lead/w/{FORM_KEY}", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as exc:
            results.error(type(exc).__name__)
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            continue
        elapsed = time.perf_counter() - started
        if response.status == 200:
            results.ok(elapsed)
        else:
            results.error(f"HTTP {response.status}")
    conn.close()


def load(ports: list[int], seconds: float, clients: int, rate_limited: bool) -> tuple[Results, float]:
    results = Results()
    started = time.monotonic()
    deadline = started + seconds
    threads = [threading.Thread(target=client, args=(n, ports[n % len(ports)], deadline, results, rate_limited))
               for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, time.monotonic() - started


def stored_leads(database: str, instance: Path, form_id: int) -> int:
    from sqlalchemy import func, select

    from addons.crm_lead.models import Lead
    from core.app import create_app
    from core.extensions import db

    app = create_app(_config(database, 0), instance_path=instance)
    with app.app_context():
        count = db.session.scalar(select(func.count()).select_from(Lead).where(Lead.web_form_id == form_id))
        db.session.remove()
        db.engine.dispose()
    return count


def cpu_seconds(pids: list[int]) -> float | None:
    """User + system CPU time of processes (Linux ``/proc``), ``None`` elsewhere."""
    try:
        total = 0
        for pid in pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))] if ordered else float("nan")


def main() -> int:
    args = parse()
    os.environ.setdefault("MOSAIC_LANG", "en")
    if args.serve:
        serve(args)
        return 0
    instance = Path(tempfile.mkdtemp(prefix="mosaic-web-to-lead-"))
    pg_url = None
    if args.postgresql:
        from core.testing import create_pg_database

        database = pg_url = create_pg_database()
    else:
        database = f"sqlite:///{instance / 'bench.db'}"
    workers: list[subprocess.Popen] = []
    try:
        print(f"database: {database.split('@')[-1] if pg_url else database}", flush=True)
        form_id = prepare(database, instance, args.rate_limit)
        ports = [_free_port() for _ in range(args.workers)]
        for port in ports:
            log = open(instance / f"worker-{port}.log", "w")  # noqa: SIM115 - closed with the process
            workers.append(subprocess.Popen(
                [sys.executable, __file__, "--serve", "--database", database, "--instance", str(instance),
                 "--port", str(port), "--threads", str(args.threads), "--rate-limit", str(args.rate_limit)],
                stdout=log, stderr=subprocess.STDOUT, cwd=ROOT))
        for port, process in zip(ports, workers, strict=True):
            _wait_ready(port, process)
        print(f"{args.workers} waitress workers ({args.threads} threads each) on ports {ports}; "
              f"{args.clients} keep-alive clients for {args.seconds:.0f} s", flush=True)
        if args.rate_limit:
            print(f"rate limit ON: {args.rate_limit}/min per address; workers trust 127.0.0.1 as a proxy and every "
                  "request carries another X-Forwarded-For address", flush=True)
        else:
            print("rate limit OFF for the benchmark form (rate_limit=0): every request comes from 127.0.0.1",
                  flush=True)
        load(ports, min(2.0, args.seconds), max(2, args.clients // 4), bool(args.rate_limit))  # warm-up
        before = stored_leads(database, instance, form_id)
        cpu_before, own_before = cpu_seconds([p.pid for p in workers]), time.process_time()
        results, elapsed = load(ports, args.seconds, args.clients, bool(args.rate_limit))
        cpu_after, own_cpu = cpu_seconds([p.pid for p in workers]), time.process_time() - own_before
        stored = stored_leads(database, instance, form_id) - before
    finally:
        for process in workers:
            process.send_signal(signal.SIGTERM)
        for process in workers:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        if pg_url:
            from core.testing import drop_pg_database

            drop_pg_database(pg_url)
        if args.keep:
            print(f"instance kept in {instance}")
        else:
            shutil.rmtree(instance, ignore_errors=True)
    successes = len(results.latencies)
    rate = successes / elapsed if elapsed else 0.0
    ms = [s * 1000 for s in results.latencies]
    print(f"submissions: {successes} in {elapsed:.1f} s = {rate:.0f}/s (bar ≥ {BAR_PER_SECOND:.0f}/s)")
    if ms:
        print(f"latency: p50 {statistics.median(ms):.1f} ms, p95 {percentile(ms, 0.95):.1f} ms, max {max(ms):.1f} ms")
    if successes and cpu_before is not None and cpu_after is not None:
        server_ms = (cpu_after - cpu_before) * 1000 / successes
        client_ms = own_cpu * 1000 / successes
        print(f"CPU per submission: workers {server_ms:.1f} ms, load generator {client_ms:.1f} ms "
              f"({os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f} — other processes share them)")
        print(f"  estimate, not a measurement: {os.cpu_count()} otherwise idle CPUs would sustain about "
              f"{os.cpu_count() * 1000 / (server_ms + client_ms):.0f}/s "
              + ("(the PostgreSQL server's own CPU not counted)" if pg_url else "(SQLite's one writer aside)"))
    print(f"errors: {sum(results.errors.values())} {dict(sorted(results.errors.items())) or ''}".rstrip())
    print(f"leads stored: {stored} ({'equal to' if stored == successes else 'DIFFERENT FROM'} the successes)")
    ok = rate >= BAR_PER_SECOND and stored == successes
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
