"""ipc.client.exchange_many: `-a` and `--metrics` ask every worker at once without threads:
all the requests are sent before any reply is read."""
import json
import socket
import threading

from agrconfig import paths
from agrconfig.ipc import client, protocol


class FakeWorker(threading.Thread):
    """Answers one request on a socket of its own, but only once every worker of the
    `barrier` holds its request: asked one after the other, they would all time out."""

    def __init__(self, address, barrier, reply):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(address)
        self.sock.listen(1)
        self.barrier, self.reply, self.got = barrier, reply, None

    def run(self):
        conn, _ = self.sock.accept()
        with conn:
            data = b""
            while chunk := conn.recv(65536):
                data += chunk
            self.got = json.loads(data)
            try:
                self.barrier.wait(timeout=5)
            except threading.BrokenBarrierError:
                return   # never all asked together: no answer
            conn.sendall(json.dumps(self.reply).encode())
        self.sock.close()


def test_every_worker_is_asked_before_any_answer_is_read(monkeypatch, tmp_path):
    monkeypatch.setattr(paths, "control_address", lambda name: str(tmp_path / name))
    barrier = threading.Barrier(3)
    workers = {n: FakeWorker(str(tmp_path / n), barrier, {"result": {"n": n}, "version": 3, "release": "9.9"})
               for n in ("agr0", "agr1", "agr2")}
    for w in workers.values():
        w.start()
    out = client.exchange_many(["agr2", "gone", "agr0", "agr1"], protocol.build("status"), timeout=10)
    assert list(out) == ["agr2", "gone", "agr0", "agr1"]   # in the order asked
    assert isinstance(out["gone"], client.WorkerGone) and not out["gone"].sent
    for n, w in workers.items():
        w.join(5)
        assert w.got == {"op": "status"}
        assert out[n]["result"] == {"n": n}
        assert client.peer_of(n).release == "9.9"


def test_workers_that_do_not_answer_time_out_within_the_one_timeout(monkeypatch, tmp_path):
    monkeypatch.setattr(paths, "control_address", lambda name: str(tmp_path / name))
    barrier = threading.Barrier(3)   # only two workers: neither ever answers
    workers = [FakeWorker(str(tmp_path / n), barrier, {}) for n in ("agr0", "agr1")]
    for w in workers:
        w.start()
    out = client.exchange_many(["agr0", "agr1"], protocol.build("status"), timeout=0.5)
    assert all(isinstance(r, client.AgrError) and "did not answer" in str(r) for r in out.values())
