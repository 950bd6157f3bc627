#!/usr/bin/env python3
"""Checks dashboards/ against a real Prometheus.

1. `promtool check rules alerts.yml` and `promtool test rules alerts.test.yml` (the alert
   rules' unit tests: each alert fires and does not fire on synthetic series).
2. Every expression of the Grafana dashboard, Grafana's variables filled in, parses
   (`promtool check rules` on them as recording rules).
3. Live: `cargo run --example metrics` serves the crate's metrics; a Prometheus started here
   scrapes it every second with the alert rules loaded; every dashboard expression must
   return data (a NaN is none) and every rule must evaluate without error.

promtool and prometheus come from $PROMETHEUS_DIR, else PATH, else Debian's `prometheus`
package unpacked (`apt-get download prometheus`, `dpkg -x`) under target/prometheus/.

    python3 dashboards/check.py              # everything (about a minute once built)
    python3 dashboards/check.py --skip-live  # the promtool checks only
    python3 dashboards/check.py --target http://127.0.0.1:9000/metrics  # scrape that instead
"""
import argparse
import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CACHE = os.path.join(ROOT, "target", "prometheus")
# What Grafana's variables become for the checks.
VARIABLES = {"$__rate_interval": "30s", "${datasource}": "", "$method": ".*", "$route": ".*"}


def find_tools():
    """Paths of promtool and prometheus, installing Debian's package if neither is found."""
    dirs = [os.environ.get("PROMETHEUS_DIR", ""), os.path.join(CACHE, "usr", "bin")]
    for d in dirs:
        if d and all(os.access(os.path.join(d, t), os.X_OK) for t in ("promtool", "prometheus")):
            return os.path.join(d, "promtool"), os.path.join(d, "prometheus")
    if shutil.which("promtool") and shutil.which("prometheus"):
        return shutil.which("promtool"), shutil.which("prometheus")
    os.makedirs(CACHE, exist_ok=True)
    print("installing Debian's prometheus package under", os.path.relpath(CACHE, ROOT), flush=True)
    if subprocess.call(["apt-get", "download", "prometheus"], cwd=CACHE) != 0:
        subprocess.check_call(["apt-get", "update", "-qq"])
        subprocess.check_call(["apt-get", "download", "prometheus"], cwd=CACHE)
    deb = sorted(glob.glob(os.path.join(CACHE, "prometheus_*.deb")))[-1]
    subprocess.check_call(["dpkg", "-x", deb, CACHE])
    return os.path.join(CACHE, "usr", "bin", "promtool"), os.path.join(CACHE, "usr", "bin", "prometheus")


def dashboard_exprs():
    """(panel title, expression with the variables filled in) for every dashboard target."""
    with open(os.path.join(HERE, "tinker-telemetry.json")) as f:
        dashboard = json.load(f)
    out = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for var, value in VARIABLES.items():
                expr = expr.replace(var, value)
            assert "$" not in expr, f"an unknown variable in {panel['title']}: {expr}"
            out.append((f"{panel['title']} [{target['refId']}]", expr))
    return out


def run(what, cmd, cwd=HERE):
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    ok = result.returncode == 0
    print(f"{'ok  ' if ok else 'FAIL'} {what}", flush=True)
    if not ok:
        print(result.stdout + result.stderr)
    return ok


def static_checks(promtool):
    ok = run("promtool check rules alerts.yml", [promtool, "check", "rules", "alerts.yml"])
    ok &= run("promtool test rules alerts.test.yml", [promtool, "test", "rules", "alerts.test.yml"])
    exprs = dashboard_exprs()
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        rules = [{"record": f"dashboard:expr_{i}", "expr": e} for i, (_, e) in enumerate(exprs)]
        json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, f)
    ok &= run(f"promtool check rules: the dashboard's {len(exprs)} expressions", [promtool, "check", "rules", f.name])
    os.unlink(f.name)
    return ok


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def query(base, expr):
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=5) as r:
        body = json.load(r)
    result = body["data"]["result"] if body.get("status") == "success" else []
    # A quantile of an empty window is NaN: that is no data.
    return [r for r in result if r.get("value", [0, "NaN"])[1] != "NaN"]


def unhealthy_rules(base):
    """The alert rules that have not evaluated cleanly (yet)."""
    with urllib.request.urlopen(f"{base}/api/v1/rules", timeout=5) as r:
        groups = json.load(r)["data"]["groups"]
    rules = [rule for g in groups for rule in g["rules"]]
    return [f"{r['name']}: {r.get('health')} {r.get('lastError', '')}".strip() for r in rules if r.get("health") != "ok"] or (
        [] if rules else ["no rules loaded"])


def live_check(prometheus, target, seconds, started):
    """Scrapes `target` with a real Prometheus until every dashboard expression has data."""
    url = urllib.parse.urlparse(target)
    work = tempfile.mkdtemp(prefix="tinker-prometheus-")
    config = os.path.join(work, "prometheus.yml")
    with open(config, "w") as f:
        f.write(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            f"rule_files: ['{os.path.join(HERE, 'alerts.yml')}']\n"
            "scrape_configs:\n"
            f"  - job_name: tinker-telemetry-example\n"
            f"    metrics_path: {url.path or '/metrics'}\n"
            f"    static_configs: [{{targets: ['{url.netloc}']}}]\n"
        )
    port = free_port()
    log = open(os.path.join(work, "prometheus.log"), "w")
    server = subprocess.Popen(
        [prometheus, f"--config.file={config}", f"--storage.tsdb.path={work}/data",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    started.append(server)
    base = f"http://127.0.0.1:{port}"
    exprs = dashboard_exprs()
    deadline = time.monotonic() + seconds
    missing, unhealthy = exprs, ["not evaluated"]
    while time.monotonic() < deadline:
        time.sleep(2)
        try:
            if not query(base, 'up{job="tinker-telemetry-example"} == 1'):
                continue
            missing = [(t, e) for t, e in exprs if not query(base, e)]
            unhealthy = unhealthy_rules(base)
        except OSError:
            continue
        if not missing and not unhealthy:
            break
    for title, expr in exprs:
        print(f"{'FAIL' if (title, expr) in missing else 'ok  '} data from a real Prometheus: {title}", flush=True)
    print(f"{'FAIL' if unhealthy else 'ok  '} the alert rules evaluate on a real Prometheus", flush=True)
    if unhealthy:
        print("  " + "\n  ".join(unhealthy))
    if missing:
        print("no data for:\n  " + "\n  ".join(e for _, e in missing))
        print(open(os.path.join(work, "prometheus.log")).read()[-3000:])
    shutil.rmtree(work, ignore_errors=True)
    return not missing and not unhealthy


def start_example(seconds, started):
    """Starts `cargo run --example metrics`; returns the URL of its first line."""
    example = subprocess.Popen(
        ["cargo", "run", "-q", "--example", "metrics", "--", "--seconds", str(seconds)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True)
    started.append(example)
    line = example.stdout.readline().strip()
    m = re.fullmatch(r"METRICS (http://127\.0\.0\.1:\d+/metrics)", line)
    if not m:
        raise SystemExit(f"FAIL the metrics example's first line: {line!r}")
    print(f"ok   the metrics example serves {m.group(1)}", flush=True)
    return m.group(1)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-live", action="store_true", help="only the promtool checks")
    parser.add_argument("--target", help="scrape this URL instead of starting the example")
    parser.add_argument("--seconds", type=int, default=60, help="how long the example runs (default 60)")
    args = parser.parse_args()
    promtool, prometheus = find_tools()
    ok = static_checks(promtool)
    started = []
    try:
        if not args.skip_live:
            target = args.target or start_example(args.seconds, started)
            ok &= live_check(prometheus, target, max(args.seconds - 10, 15), started)
    finally:
        for p in started:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in started:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
    print("dashboards: ok" if ok else "dashboards: FAILED", flush=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
