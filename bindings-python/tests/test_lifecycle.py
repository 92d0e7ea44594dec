"""Interpreter exit: open clients, live subscriptions and pending async
calls must not crash or hang a process that exits without closing them."""

from __future__ import annotations

import subprocess
import sys
import textwrap

EXIT_DEADLINE_SECONDS = 30

# Rewrites a file every few milliseconds while a subscription with a short
# TTL refreshes it, so that callbacks are firing when the interpreter exits.
BUSY_EXIT = """
import pathlib, sys, threading, time
import keystead

path = pathlib.Path(sys.argv[1])
path.write_text("0")
client = keystead.Client(file={{"ttl": "50ms"}})
async_client = keystead.AsyncClient()
seen = []
client.subscribe(f"file://{{path}}", lambda event: seen.append(event.secret.reveal()))

def rewrite():
    for index in range(1, 10_000):
        path.write_text(str(index))
        time.sleep(0.002)

threading.Thread(target=rewrite, daemon=True).start()
deadline = time.monotonic() + 10
while len(seen) < 3 and time.monotonic() < deadline:
    time.sleep(0.01)
print("rotations seen:", len(seen) >= 3, flush=True)
{ending}
"""


def run_script(source: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(source), *arguments],
        capture_output=True,
        text=True,
        timeout=EXIT_DEADLINE_SECONDS,
    )


def test_exit_with_open_clients_and_callbacks(tmp_path):
    result = run_script(BUSY_EXIT.format(ending=""), str(tmp_path / "busy.txt"))
    assert result.returncode == 0, result.stderr
    assert "rotations seen: True" in result.stdout
    assert "Traceback" not in result.stderr
    assert "panicked" not in result.stderr


def test_exit_from_sys_exit_in_thread_of_callbacks(tmp_path):
    result = run_script(BUSY_EXIT.format(ending="sys.exit(3)"), str(tmp_path / "busy.txt"))
    assert result.returncode == 3, result.stderr
    assert "panicked" not in result.stderr


def test_exit_with_pending_async_call(silent_port):
    source = f"""
    import asyncio
    import keystead

    async def main():
        client = keystead.AsyncClient(aws={{"endpoint_url": "http://127.0.0.1:{silent_port}", "max_attempts": 1}})
        task = asyncio.ensure_future(client.get("aws-sm://silent/at-exit"))
        await asyncio.sleep(0.2)
        print("leaving with a call in flight", flush=True)

    asyncio.run(main())
    """
    result = run_script(source)
    assert result.returncode == 0, result.stderr
    assert "leaving with a call in flight" in result.stdout
    assert "panicked" not in result.stderr
