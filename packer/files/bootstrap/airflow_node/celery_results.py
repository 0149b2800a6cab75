"""The Celery result backend of every Celery node: Redis, with reads that ride out a broker
outage.

Results live in Redis so that workers need no metadata-DB credentials. The scheduler's
CeleryExecutor reads task states with one ``mget`` per loop (BulkStateFetcher), and Celery's
RedisBackend sends that without its retry policy (only writes go through ``ensure``), so a
Redis failover would raise out of the scheduler loop and stop the scheduler. Here ``mget``
retries like a write: the loop waits for the broker instead, as it already does to publish.
Selected in the result_backend URL as ``airflow_node.celery_results:RetryingRedisBackend+rediss://...``.
"""

from __future__ import annotations

from celery.backends.redis import RedisBackend


class RetryingRedisBackend(RedisBackend):
    def mget(self, keys):
        return self.ensure(super().mget, (keys,))
