"""A redis-server of a test's own, restartable on the same port (for Redis outage tests)."""

import socket
import subprocess
import time

import redis


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OwnRedis:
    """A redis-server of this test's own, restartable on the same port."""

    def __init__(self, binary, tmp_path):
        self.binary = binary
        self.port = _free_port()
        self.dir = tmp_path
        self.proc = None
        self.url = "redis://127.0.0.1:{}/0".format(self.port)

    def start(self):
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port)
        for _ in range(200):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
