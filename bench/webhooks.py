"""Webhooks: what they add to the pipeline, and how fast one process delivers.

    .venv/bin/python bench/webhooks.py [--database-url URL] [--batch 16] [--rounds 50] [--deliveries 200]

- Recording: the receiver of `memory_indexed` (webhooks/events.py) for a batch of `--batch`
  indexed memories (the pipeline's batch), with no endpoint, and with two endpoints subscribed to
  it (an event and two deliveries per memory written; the deliveries' sending is left out: the
  transaction is rolled back, so nothing is sent on commit). Per batch, p50/p95 over `--rounds`.
- Delivering: `--deliveries` attempts one after another in this process (`webhook_delivery_attempt`:
  claim, sign, resolve and check the address, POST, record) to a receiver on 127.0.0.1 answering
  200 (WEBHOOKS_ALLOW_PRIVATE on); attempts per second and p50/p95 per attempt.
"""

import argparse
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from common import database_label, machine, percentiles, setup_django


class _Ok(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def recording(batch: int, rounds: int, endpoints: int) -> dict:
    from django.db import transaction
    from django.utils import timezone

    from memories.models import Memory
    from omi_memory.actors import Actor
    from webhooks.events import memories_indexed
    from webhooks.services import webhook_endpoint_create

    samples = []
    for _ in range(rounds):
        with transaction.atomic():
            for n in range(endpoints):
                webhook_endpoint_create(url=f"http://127.0.0.1:9/{n}", events=["memory.indexed"], actor=Actor.command())
            now = timezone.now()
            ids = [
                m.id
                for m in Memory.objects.bulk_create(
                    Memory(uid=f"bench-{i % 4}", transcript="Alice: hello", status="indexed", indexed_at=now)
                    for i in range(batch)
                )
            ]
            started = time.perf_counter()
            memories_indexed(memory_ids=ids)
            samples.append((time.perf_counter() - started) * 1000)
            transaction.set_rollback(True)
    return percentiles(samples)


def delivering(count: int) -> tuple[float, dict]:
    from omi_memory.actors import Actor
    from webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
    from webhooks.services import webhook_delivery_attempt, webhook_endpoint_create

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = webhook_endpoint_create(
        url=f"http://127.0.0.1:{server.server_address[1]}/hook", events=["memory.indexed"], actor=Actor.command()
    )
    try:
        events = WebhookEvent.objects.bulk_create(
            WebhookEvent(type="memory.indexed", uid="bench", data={"memory": {"id": n, "title": "x" * 200}})
            for n in range(count)
        )
        deliveries = WebhookDelivery.objects.bulk_create(WebhookDelivery(endpoint=endpoint, event=e) for e in events)
        samples = []
        started = time.perf_counter()
        for delivery in deliveries:
            one = time.perf_counter()
            webhook_delivery_attempt(delivery_id=delivery.id)
            samples.append((time.perf_counter() - one) * 1000)
        seconds = time.perf_counter() - started
        delivered = WebhookDelivery.objects.filter(endpoint=endpoint, status="delivered").count()
        assert delivered == count, f"{delivered} of {count} delivered"
    finally:
        WebhookEndpoint.objects.filter(id=endpoint.id).delete()
        WebhookEvent.objects.filter(uid="bench").delete()
        server.shutdown()
    return count / seconds, percentiles(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--deliveries", type=int, default=200)
    args = parser.parse_args()
    os.environ["WEBHOOKS_ALLOW_PRIVATE"] = "1"  # the receiver is on 127.0.0.1
    url = setup_django(args.database_url)
    print(f"machine: {machine()}; database: {database_label(url)}")
    for endpoints in (0, 2):
        p = recording(args.batch, args.rounds, endpoints)
        print(
            f"recording memory.indexed for a batch of {args.batch}, {endpoints} endpoints: "
            f"p50 {p['p50']:.2f} ms, p95 {p['p95']:.2f} ms (n={p['n']})"
        )
    rate, p = delivering(args.deliveries)
    print(
        f"delivering {args.deliveries} webhooks one after another to 127.0.0.1: {rate:.0f}/s, "
        f"p50 {p['p50']:.2f} ms, p95 {p['p95']:.2f} ms per attempt"
    )


if __name__ == "__main__":
    main()
