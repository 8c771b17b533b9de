"""Peak memory of the server while it refuses an unsigned 400 MB POST.

The server (dealbot's WSGI app under the same waitress settings `dealbot serve` uses) runs
in a subprocess; this process streams the body at it and then reads the server's peak RSS
(VmHWM in /proc) before and after. Before the cap the server grew by about the body's size.

    python -m bench.big_body [--megabytes 400]
"""

from __future__ import annotations

import argparse
import http.client
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SERVER = """
import sys
from bot.app import create_app
from bot.server import build_wsgi_app, make_server
from bot.settings import load_settings
from storage.migrate import upgrade
from bot.fake_slack import FakeSlackWebAPI
from tests.fakes.slack_spec import slack_spec_dir

url = sys.argv[1]
# Bolt asks auth.test at start-up; the fake answers it, as in the other benchmarks.
slack = FakeSlackWebAPI(spec_dir=slack_spec_dir()).start()
upgrade(url)
settings = load_settings(
    _env_file=None,
    slack_bot_token="xoxb-bench",
    slack_signing_secret="bench-secret",
    slack_api_url=slack.base_url,
    database_url=url,
)
server = make_server(build_wsgi_app(create_app(settings)), host="127.0.0.1", port=0)
print(server.effective_port, flush=True)
server.run()
"""


def peak_rss_kib(pid: int) -> int:
    """Return the process's peak resident set size (VmHWM) in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc status")


def stream_body(port: int, megabytes: int) -> tuple[int | None, int]:
    """Return (status or None, bytes sent) of an unsigned POST of `megabytes` MB."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    total = megabytes * 1_000_000
    connection.putrequest("POST", "/slack/events")
    connection.putheader("Content-Type", "application/x-www-form-urlencoded")
    connection.putheader("Content-Length", str(total))
    connection.putheader("X-Slack-Request-Timestamp", "1")
    connection.putheader("X-Slack-Signature", "v0=unsigned")
    connection.endheaders()
    chunk = b"x" * 1_000_000
    sent = 0
    try:
        while sent < total:
            connection.send(chunk)
            sent += len(chunk)
    except OSError:
        pass  # The server refused and hung up, as it should.
    try:
        status: int | None = connection.getresponse().status
    except OSError:
        status = None
    connection.close()
    return status, sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        server = subprocess.Popen(
            [sys.executable, "-c", SERVER, url],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
        )
        try:
            assert server.stdout is not None
            port = int(server.stdout.readline())
            before = peak_rss_kib(server.pid)
            status, sent = stream_body(port, args.megabytes)
            time.sleep(0.5)  # Let the server finish with the connection.
            after = peak_rss_kib(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=10)
    print(f"unsigned {args.megabytes} MB POST: HTTP {status}, {sent / 1e6:.0f} MB sent")
    print(f"server peak RSS: {before / 1024:.1f} MiB before, {after / 1024:.1f} MiB after")
    print(f"ratio peak after / before: {after / before:.2f}")


if __name__ == "__main__":
    main()
