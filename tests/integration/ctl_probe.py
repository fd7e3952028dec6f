"""Raw control-socket client for tests, run inside a namespace: `python ctl_probe.py JSON`.

JSON is a list of cases run at the same time, each a dict:
  name     agr interface (default agr0)
  data     request text to send (str), or
  size     send this many bytes of filler (an oversized request)
  shut     half-close after sending (default true)
  hold     seconds to wait before reading (a slow client; default 0)
  uid      setuid to this uid in a forked child first
Prints a JSON list: per case {"reply": parsed reply or None, "raw": text, "closed_after": s, "error": str}.
"""
import json
import os
import socket
import sys
import time


def run(case):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    start = time.monotonic()
    out = {"reply": None, "raw": "", "error": None}
    try:
        sock.connect("\0agrconfig/" + case.get("name", "agr0"))  # blocking: waits for backlog room
        sock.settimeout(case.get("timeout", 10))
        payload = case["data"].encode() if "data" in case else b"x" * case.get("size", 0)
        try:
            sock.sendall(payload)
            if case.get("shut", True):
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError) as exc:
            out["error"] = f"send: {exc!r}"
        if case.get("hold"):
            time.sleep(case["hold"])
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
        raw = b"".join(chunks).decode()
        out["raw"] = raw
        if raw:
            out["reply"] = json.loads(raw)
    except Exception as exc:  # noqa: BLE001 - reported to the test
        out["error"] = repr(exc)
    out["closed_after"] = time.monotonic() - start
    sock.close()
    return out


def run_as(case):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            os.setgid(case["uid"])
            os.setuid(case["uid"])
            res = run(case)
        except Exception as exc:  # noqa: BLE001
            res = {"reply": None, "raw": "", "error": repr(exc), "closed_after": 0}
        os.write(w, json.dumps(res).encode())
        os._exit(0)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        data += chunk
    os.waitpid(pid, 0)
    return json.loads(data)


def main():
    import threading
    cases = json.loads(sys.argv[1])
    results = [None] * len(cases)

    def one(i, case):
        results[i] = run_as(case) if "uid" in case else run(case)

    threads = [threading.Thread(target=one, args=(i, c)) for i, c in enumerate(cases)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
