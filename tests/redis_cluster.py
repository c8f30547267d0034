"""A real three-node Redis Cluster on free loopback ports, for the tests that run the cache on
one: `redis-server --cluster-enabled yes` three times, then `redis-cli --cluster create`.

Three primaries and no replicas: a killed node leaves its slots uncovered, and the cluster says
CLUSTERDOWN for every key until it is back (the failure the cache must survive).
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from typing import Any

_taken: set[int] = set()


def free_port() -> int:
    """A loopback port that is free, as is the one 10,000 above it (the cluster bus), and that
    this process has not handed out yet: Redis takes ports up to 55535 for a cluster node."""
    import random

    rng = random.Random()
    while True:
        port = rng.randrange(20000, 45000)
        if port in _taken:
            continue
        try:
            with socket.socket() as one, socket.socket() as bus:
                one.bind(("127.0.0.1", port))
                bus.bind(("127.0.0.1", port + 10000))
        except OSError:
            continue
        _taken.add(port)
        return port


class ClusterNode:
    def __init__(self, directory: Path, persistent: bool = False) -> None:
        self.persistent = persistent  # an append-only file: a restarted node keeps its keys
        self.port = free_port()
        self.directory = directory / str(self.port)
        self.directory.mkdir(parents=True)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "1500",
                "--appendonly",
                "yes" if self.persistent else "no",
                "--appendfsync",
                "always",
                "--save",
                "",
                "--logfile",
                str(self.directory / "redis.log"),
            ],  # fmt: skip
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def client(self) -> Any:
        import redis

        return redis.Redis(port=self.port, socket_connect_timeout=0.5, socket_timeout=2)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def log(self) -> str:
        path = self.directory / "redis.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""


class RedisCluster3:
    """Start, kill a node, bring it back, stop; `url` names the first node."""

    def __init__(self, directory: Path, persistent: bool = False) -> None:
        self.nodes = [ClusterNode(directory, persistent) for _ in range(3)]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.nodes[0].port}/0"

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        for node in self.nodes:
            self._wait(lambda n=node: bool(n.client().ping()), f"node {node.port} to start")
        created = subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *(f"127.0.0.1:{node.port}" for node in self.nodes),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],  # fmt: skip
            capture_output=True,
            check=False,
            timeout=60,
        )
        if created.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {created.stdout[-2000:]!r}")
        self.wait_ok()

    def wait_ok(self) -> None:
        """Until every node says `cluster_state:ok` (slots covered, the nodes agree)."""

        def ok() -> bool:
            return all(
                node.client().info("cluster") and _state(node) == "ok" for node in self.nodes
            )

        self._wait(ok, "the cluster to be ok")

    def kill(self, index: int) -> None:
        self.nodes[index].kill()

    def index_of(self, port: int) -> int:
        return next(i for i, node in enumerate(self.nodes) if node.port == port)

    def restart(self, index: int) -> None:
        """The node comes back on its port with its nodes.conf: it rejoins with its slots."""
        node = self.nodes[index]
        node.start()
        self._wait(lambda: bool(node.client().ping()), f"node {node.port} to restart")
        self.wait_ok()

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()

    def _wait(self, check: Any, what: str, seconds: float = 30) -> None:
        import redis

        deadline = time.monotonic() + seconds
        while True:  # waiting for servers, not timing anything
            try:
                if check():
                    return
            except (redis.RedisError, OSError):
                pass
            if time.monotonic() > deadline:
                logs = "\n".join(node.log() for node in self.nodes)
                raise RuntimeError(f"timed out waiting for {what}:\n{logs}")
            time.sleep(0.05)


def _state(node: ClusterNode) -> str:
    client = node.client()
    try:
        info = client.execute_command("CLUSTER", "INFO")
    finally:
        client.close()
    text = info.decode() if isinstance(info, bytes) else str(info)
    for line in text.splitlines():
        if line.startswith("cluster_state:"):
            return line.split(":", 1)[1].strip()
    return ""


class TenantSlotNode:
    """The interface of test_cache_faults' private server, on a persistent three-node cluster:
    the faults (kill, restart, pause, resume) hit the node holding the tenant's hash slot, and
    `client()` talks to the whole cluster."""

    def __init__(self, directory: Path, tenant: str) -> None:
        self.cluster = RedisCluster3(directory, persistent=True)
        self.tenant = tenant
        self.index = 0

    @property
    def url(self) -> str:
        return self.cluster.url

    def start(self) -> None:
        from redis.cluster import RedisCluster

        self.cluster.start()
        client = RedisCluster.from_url(self.url)
        try:
            port = client.get_node_from_key("{" + self.tenant + "}").port
        finally:
            client.close()
        self.index = self.cluster.index_of(port)

    def kill(self) -> None:
        self.cluster.kill(self.index)

    def restart(self) -> None:
        self.cluster.restart(self.index)

    def pause(self) -> None:
        import os
        import signal

        process = self.cluster.nodes[self.index].process
        assert process is not None
        os.kill(process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """The node answers again, and the cluster agrees it is back (no CLUSTERDOWN)."""
        import os
        import signal

        process = self.cluster.nodes[self.index].process
        assert process is not None
        os.kill(process.pid, signal.SIGCONT)
        self.cluster.wait_ok()

    def client(self) -> Any:
        from redis.cluster import RedisCluster

        return RedisCluster.from_url(self.url, socket_connect_timeout=1, socket_timeout=5)

    def stop(self) -> None:
        import os
        import signal

        for node in self.cluster.nodes:
            if node.process is not None and node.process.poll() is None:
                os.kill(node.process.pid, signal.SIGCONT)
        self.cluster.stop()
