# SPDX-License-Identifier: AGPL-3.0-only
"""Password logins through the real ``/login`` form, from CONCURRENCY threads, for DURATION seconds.

For bench/login-mix. Each login is what a browser does: ``GET /login`` (which sets the
``csrf`` cookie and puts the token in the form), then ``POST /login`` with the token, the
username and the password, which must answer ``303`` with a ``session`` cookie. Prints one
line: ``LOGINS ok=N failed=M p50_ms=… p99_ms=…``.

Usage: python logins.py PORT USERNAME PASSWORD CONCURRENCY DURATION
"""

from __future__ import annotations

import http.client
import re
import sys
import threading
import time
from urllib.parse import urlencode

_CSRF_FIELD = re.compile(rb'name="csrf" value="([^"]+)"')


def login(port: int, username: str, password: str) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/login")
        page = conn.getresponse()
        body = page.read()
        match = _CSRF_FIELD.search(body)
        cookies = [c.split(";", 1)[0] for c in page.headers.get_all("Set-Cookie") or []]
        if page.status != 200 or match is None or not cookies:
            return False
        form = urlencode({"csrf": match.group(1).decode(), "username": username, "password": password})
        conn.request(
            "POST",
            "/login",
            body=form,
            headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": "; ".join(cookies)},
        )
        answer = conn.getresponse()
        answer.read()
        session = any(c.startswith("session=") for c in answer.headers.get_all("Set-Cookie") or [])
        return answer.status == 303 and session
    finally:
        conn.close()


def main() -> None:
    port, username, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    concurrency, duration = int(sys.argv[4]), float(sys.argv[5])
    deadline = time.monotonic() + duration
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()

    def worker() -> None:
        while time.monotonic() < deadline:
            start = time.monotonic()
            try:
                ok = login(port, username, password)
            except OSError:
                ok = False
            elapsed = time.monotonic() - start
            with lock:
                if ok:
                    latencies.append(elapsed)
                else:
                    failures[0] += 1

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies.sort()

    def percentile(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000 if latencies else 0.0

    print(
        f"LOGINS ok={len(latencies)} failed={failures[0]} p50_ms={percentile(0.5):.1f} p99_ms={percentile(0.99):.1f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
