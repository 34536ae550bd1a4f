"""Benchmark: requests per second for the main feed (/rss.xml) from `speakerfeed serve`, and from
nginx serving the same file on the same machine in the same run.

Builds a project of synthetic articles (bench/build.py's generator) in a temporary folder, starts
`speakerfeed serve --no-build` on it as a child process (as it runs in production: one uvicorn
process, httptools and uvloop), and, when nginx is installed, nginx as a foreground child with a
temporary nginx.conf whose root is the same public/ folder. Each is loaded with keep-alive
connections for:

- 200: a plain GET (no Accept-Encoding), the whole file each time;
- 200_gzip: GET with Accept-Encoding: gzip (speakerfeed keeps the compressed bytes of each file
  version, made at level 6; nginx compresses every response, at its default gzip_comp_level 1);
- 304: GET with If-None-Match carrying the server's own ETag for the file.

`speakerfeed serve` is measured twice: as the command runs today, and with uvicorn's access log
turned off (the same command through a wrapper that passes access_log=False to uvicorn.run),
because one log line per request costs about as much CPU as the rest of a 304.

Besides requests per second, each case records the server's CPU time per request (user + system,
from /proc, nginx's workers included): unlike requests per second it hardly moves when other
processes share the machine, so it is the steadier way to compare the servers.

The load client is wrk when installed, else a small asyncio keep-alive client in this process
(slower than wrk, so figures then show the client's limit as much as the servers'; the results
say which client ran). Rounds alternate between the servers so that a busy neighbour on the
machine slows both alike; the figure for each case is the median of its rounds.

Budget: speakerfeed's 304 rate >= 0.2 x nginx's. Without nginx there is nothing to compare with:
the results then hold speakerfeed's figures, `within_budget: null` and the reason.

Prints and writes bench/results/serve.json.

    python bench/serve.py [--articles 200] [--duration 10] [--connections 32] [--threads 2]
        [--rounds 3] [--work DIR] [--client auto|wrk|python] [--skip-nginx]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from build import CONFIG, generate
from measure import write_results

BUDGET = {"min_ratio_304_to_nginx": 0.2}  # judged on `speakerfeed serve` as it runs
QUIET_CHILD = "--serve-without-access-log"
PATH = "/rss.xml"
CASES = ("200", "200_gzip", "304")

NGINX_CONF = """\
worker_processes {workers};
pid {run}/nginx.pid;
error_log {run}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {run}/client_body;
    proxy_temp_path {run}/proxy;
    fastcgi_temp_path {run}/fastcgi;
    uwsgi_temp_path {run}/uwsgi;
    scgi_temp_path {run}/scgi;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000000;
    server_tokens off;
    types {{
        text/html html;
        text/xsl xsl;
        application/xml xml;
        application/feed+json json;
    }}
    charset utf-8;
    charset_types text/xsl application/xml application/rss+xml application/atom+xml
        application/feed+json;
    gzip on;
    gzip_min_length 1400;
    gzip_vary on;
    gzip_types text/xsl application/xml application/rss+xml application/atom+xml
        application/feed+json;
    add_header Cache-Control "public, max-age=300";
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location ~ (^|/)(rss\\.xml|archive/rss/[0-9]+\\.xml)$ {{
            types {{ }}
            default_type application/rss+xml;
        }}
        location ~ (^|/)(atom\\.xml|archive/atom/[0-9]+\\.xml)$ {{
            types {{ }}
            default_type application/atom+xml;
        }}
    }}
}}
"""


# -- servers --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, process: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on port {port} within 60 s")


@contextmanager
def child(
    command: list[str], port: int, what: str, log: Path, **options: Any
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, **options)
    try:
        wait_listening(port, process, what, log)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def speakerfeed_serve(work: Path, port: int, *, access_log: bool = True) -> Any:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("SPEAKERFEED_SECRET_KEY", "SPEAKERFEED_CONFIG")
    }
    arguments = ["--config", str(work / "config.toml"),
                 "serve", "--no-build", "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    if access_log:
        command = [sys.executable, "-m", "speakerfeed", *arguments]
    else:
        command = [sys.executable, __file__, QUIET_CHILD, *arguments]
    log = work / f"serve-{port}.log"
    return child(command, port, "speakerfeed serve", log, cwd=work, env=environment)


def quiet_serve(arguments: list[str]) -> None:
    """`speakerfeed serve` with uvicorn's access log off: what the CLI would run with
    uvicorn.run(..., access_log=False), measured beside the command as it is."""
    import uvicorn

    from speakerfeed.cli import main

    run = uvicorn.run

    def without_access_log(*args: Any, **options: Any) -> None:
        run(*args, **{**options, "access_log": False})

    uvicorn.run = without_access_log
    main(arguments)


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (str(p) for p in (Path("/usr/sbin/nginx"), Path("/usr/local/sbin/nginx")) if p.is_file()),
        None,
    )


def nginx(binary: str, work: Path, port: int, workers: int) -> Any:
    run = work / "nginx"
    run.mkdir(exist_ok=True)
    conf = run / "nginx.conf"
    root = work / "public"
    conf.write_text(NGINX_CONF.format(workers=workers, run=run, port=port, root=root), "utf-8")
    command = [binary, "-p", str(run), "-e", str(run / "error.log"), "-c", str(conf),
               "-g", "daemon off;"]  # fmt: skip
    return child(command, port, "nginx", run / "error.log")


def version_of(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "unknown"
    text = (done.stdout + done.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) of a process and its children (nginx's workers), from /proc."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        total = 0
        for each in [pid, *map(int, children)]:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime in clock ticks
    except (OSError, ValueError, IndexError):
        return None
    return total / os.sysconf("SC_CLK_TCK")


# -- requests -------------------------------------------------------------------------------------


def fetch(port: int, headers: dict[str, str], method: str = "GET") -> tuple[int, dict[str, str]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, PATH, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}
    finally:
        connection.close()


def case_headers(port: int) -> dict[str, dict[str, str]]:
    """Each case's request headers, checked once: the status and encoding they must give."""
    status, plain = fetch(port, {})
    assert status == 200 and "content-encoding" not in plain, (status, plain)
    status, gz = fetch(port, {"Accept-Encoding": "gzip"})
    assert status == 200 and gz.get("content-encoding") == "gzip", (status, gz)
    conditional = {"If-None-Match": plain["etag"]}
    status, _ = fetch(port, conditional)
    assert status == 304, status
    return {"200": {}, "200_gzip": {"Accept-Encoding": "gzip"}, "304": conditional}


def run_wrk(port: int, headers: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    command = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    command.append(f"http://127.0.0.1:{port}{PATH}")
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if rate is None:
        raise RuntimeError(f"no Requests/sec in wrk's output:\n{output}")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    latency = re.search(r"Latency\s+([\d.]+\w+)", output)
    requests = re.search(r"(\d+) requests in", output)
    return {
        "rps": float(rate.group(1)),
        "requests": int(requests.group(1)) if requests else None,
        "bad_status": int(bad.group(1)) if bad else 0,
        "socket_errors": sum(int(n) for n in errors.groups()) if errors else 0,
        "mean_latency": latency.group(1) if latency else None,
    }


async def _read_body(reader: asyncio.StreamReader, head: bytes) -> None:
    lines = head.lower().split(b"\r\n")
    length = 0
    chunked = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value:
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                return
    elif length:
        await reader.readexactly(length)


async def _python_load(
    port: int, headers: dict[str, str], args: argparse.Namespace
) -> Counter[int]:
    request = f"GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
    request += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
    payload = request.encode()
    counts: Counter[int] = Counter()
    deadline = time.perf_counter() + args.duration

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < deadline:
                writer.write(payload)
                head = await reader.readuntil(b"\r\n\r\n")
                await _read_body(reader, head)
                counts[int(head[9:12])] += 1
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(args.connections)))
    return counts


def run_python(port: int, headers: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    counts = asyncio.run(_python_load(port, headers, args))
    elapsed = time.perf_counter() - started
    bad = sum(n for status, n in counts.items() if not 200 <= status < 400)
    total = sum(counts.values())
    return {"rps": total / elapsed, "requests": total, "bad_status": bad, "socket_errors": 0}


# -- the run --------------------------------------------------------------------------------------


def build_project(work: Path, articles: int) -> None:
    (work / "config.toml").write_text(CONFIG, encoding="utf-8")
    generate(work / "articles", articles)
    subprocess.run(
        [sys.executable, "-m", "speakerfeed", "--config", str(work / "config.toml"), "build",
         "--quiet", "--no-fetch"],
        check=True,
    )  # fmt: skip


def main() -> None:
    if sys.argv[1:2] == [QUIET_CHILD]:
        quiet_serve(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--articles", type=int, default=200)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work", type=Path, help="a folder to keep [default: a temporary one]")
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--skip-nginx", action="store_true", help="as if nginx were missing")
    args = parser.parse_args()

    notes = [
        "200_gzip: speakerfeed serve sends gzip bytes it made once per file version; nginx "
        "compresses every response (gzip_static would need .gz files beside the feeds)"
    ]
    wrk = shutil.which("wrk")
    if args.client == "wrk" and wrk is None:
        raise SystemExit("--client wrk: wrk is not installed (apt-get install wrk)")
    use_wrk = wrk is not None and args.client != "python"
    if use_wrk:
        client = version_of(["wrk", "-v"]).split(" Copyright")[0]
        load: Callable[[int, dict[str, str], argparse.Namespace], dict[str, Any]] = run_wrk
    else:
        client = "python asyncio keep-alive client (bench/serve.py)"
        load = run_python
        if args.client != "python":
            notes.append("wrk is not installed: the python client ran, and it is likely the "
                         "bottleneck (apt-get install wrk for real figures)")  # fmt: skip
    nginx_path = None if args.skip_nginx else nginx_binary()
    workers = os.cpu_count() or 1
    missing = "--skip-nginx was given" if args.skip_nginx else "nginx is not installed"
    if nginx_path is None:
        hint = "" if args.skip_nginx else " (apt-get install nginx)"
        notes.append(f"{missing}{hint}: no comparison, so the budget cannot be judged")

    temporary = None
    if args.work is None:
        temporary = tempfile.mkdtemp(prefix="speakerfeed-serve-bench-")
        work = Path(temporary)
    else:
        work = args.work.resolve()
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
    work.chmod(0o755)  # nginx's workers run as another user when started as root
    try:
        started = time.perf_counter()
        build_project(work, args.articles)
        feed = work / "public" / PATH.lstrip("/")
        print(f"built {args.articles} articles in {time.perf_counter() - started:.1f} s; "
              f"{PATH} is {feed.stat().st_size} bytes; client: {client}")  # fmt: skip

        ports = {"speakerfeed_serve": free_port(), "speakerfeed_serve_no_access_log": free_port()}
        if nginx_path is not None:
            ports["nginx"] = free_port()
        rounds: dict[str, dict[str, list[dict[str, Any]]]] = {
            name: {case: [] for case in CASES} for name in ports
        }
        facts: dict[str, dict[str, Any]] = {}
        load_average = [round(x, 2) for x in os.getloadavg()]
        with ExitStack() as running:
            pids = {"speakerfeed_serve": running.enter_context(
                speakerfeed_serve(work, ports["speakerfeed_serve"])).pid}  # fmt: skip
            quiet = ports["speakerfeed_serve_no_access_log"]
            pids["speakerfeed_serve_no_access_log"] = running.enter_context(
                speakerfeed_serve(work, quiet, access_log=False)
            ).pid
            if nginx_path is not None:
                pids["nginx"] = running.enter_context(
                    nginx(nginx_path, work, ports["nginx"], workers)
                ).pid
            headers = {name: case_headers(port) for name, port in ports.items()}
            for name, port in ports.items():
                _, plain = fetch(port, {})
                _, gz = fetch(port, {"Accept-Encoding": "gzip"})
                facts[name] = {
                    "etag": plain.get("etag"),
                    "etag_gzip": gz.get("etag"),
                    "content_type": plain.get("content-type"),
                    "cache_control": plain.get("cache-control"),
                    "gzip_bytes": int(gz.get("content-length", 0)) or None,
                }
            # Round by round and case by case the servers take turns, so a busy neighbour on
            # the machine weighs on both alike.
            for number in range(1, args.rounds + 1):
                for case in CASES:
                    for name, port in ports.items():
                        before = cpu_seconds(pids[name])
                        result = load(port, headers[name][case], args)
                        after = cpu_seconds(pids[name])
                        result["cpu_us_per_request"] = (
                            round((after - before) / result["requests"] * 1e6, 1)
                            if before is not None and after is not None and result["requests"]
                            else None
                        )
                        rounds[name][case].append(result)
                        flagged = result["bad_status"] + result["socket_errors"]
                        print(f"round {number} {case:9} {name:31} {result['rps']:10.0f} req/s"
                              + (f"  ({flagged} bad statuses or socket errors)"
                                 if flagged else ""))  # fmt: skip

        results: dict[str, Any] = {
            "machine": {
                "cpus": os.cpu_count(),
                "python": sys.version.split()[0],
                "load_average_before": load_average,
            },
            "client": client,
            "load": {
                "connections": args.connections,
                "threads": args.threads if use_wrk else 1,
                "duration_s": args.duration,
                "rounds": args.rounds,
                "keep_alive": True,
            },
            "file": {
                "path": PATH,
                "articles_built": args.articles,
                "bytes": feed.stat().st_size,
            },
        }
        for name in ports:
            medians = {case: round(statistics.median(r["rps"] for r in rounds[name][case]))
                       for case in CASES}  # fmt: skip
            entry: dict[str, Any] = {"rps": medians}
            cpu = {case: [r["cpu_us_per_request"] for r in rounds[name][case]] for case in CASES}
            entry["cpu_us_per_request"] = {
                case: None if None in values else round(statistics.median(values), 1)
                for case, values in cpu.items()
            }
            entry.update(facts[name])
            entry["rounds_rps"] = {c: [round(r["rps"]) for r in rounds[name][c]] for c in CASES}
            failures = sum(r["bad_status"] + r["socket_errors"] for c in CASES
                           for r in rounds[name][c])  # fmt: skip
            entry["bad_responses_or_socket_errors"] = failures
            if name == "nginx":
                entry["version"] = version_of([nginx_path or "nginx", "-v"])
                entry["worker_processes"] = workers
            elif name == "speakerfeed_serve":
                entry["command"] = "speakerfeed serve --no-build (1 uvicorn process)"
            else:
                entry["command"] = "the same, with access_log=False forced"
            results[name] = entry
        if "nginx" not in results:
            results["nginx"] = {"missing": missing}
            results["ratio_to_nginx"] = None
            results["within_budget"] = None
        else:
            nginx_rps = results["nginx"]["rps"]
            ratios = {
                name: {c: round(results[name]["rps"][c] / nginx_rps[c], 3) for c in CASES}
                for name in ports
                if name != "nginx"
            }
            results["ratio_to_nginx"] = ratios
            results["within_budget"] = (
                ratios["speakerfeed_serve"]["304"] >= BUDGET["min_ratio_304_to_nginx"]
            )
        results["budget"] = BUDGET
        results["notes"] = notes
        print()
        write_results("serve", results, width=32)
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)


if __name__ == "__main__":
    main()
