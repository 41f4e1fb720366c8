"""The deploy stack run for real: Sluice's image and docker-compose stack, in containers.

    deploy_stack.py            (tests/run runs it with the test venv's python)

1. Builds the images: the Debian base (deploy/scripts/base-image.sh, once), moto's server
   (deploy/moto, once) and Sluice from the host's target/debug binaries
   (deploy/Dockerfile's `runtime-prebuilt` target).
2. `compose up`s deploy/docker-compose.yaml with deploy/docker-compose.test.yaml on top, as a
   project of its own (its own network, volumes and free host ports), with fresh secrets.
3. Waits for the one-shot `submit` service (the Spotify job from S3 staging to the S3 lake),
   then queries the table from the host — `sluice query` and ADBC's Flight SQL driver, logged
   in — and compares whole rows with DuckDB's join of the raw sample CSVs (tests/oracle.py).
4. A second run: `docker kill`s an executor container while its log shows it holds a task of
   the run; a third run: cuts an executor off the network (`docker network disconnect`) while
   it holds one (whichever executor holds a task first: they pull tasks, so either may). Each run must still end SUCCEEDED with a table equal to the reference.
5. Tears the stack down (`down -v --remove-orphans`) whatever happened.

Without a Docker engine it prints that it skipped and exits 0, unless SLUICE_REQUIRE_DOCKER=1.
"""

import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import adbc_driver_flightsql.dbapi as flight_sql

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import oracle  # noqa: E402 - tests/oracle.py, found through the path set just above

DEPLOY = os.path.join(REPO, "deploy")
SAMPLE = os.path.join(REPO, "examples", "spotify", "data")
JOB = os.path.join(DEPLOY, "examples", "spotify-s3.yaml")
SLUICE_IMAGE = "sluice:stack-test"
# Tagged by the Dockerfile's hash: built once per version of deploy/moto/Dockerfile.
with open(os.path.join(DEPLOY, "moto", "Dockerfile"), "rb") as _f:
    MOTO_IMAGE = f"sluice-test-moto:{hashlib.sha256(_f.read()).hexdigest()[:12]}"
HELD = "failpoint slow_tasks:"


def step(text):
    print(f"--- {text}", flush=True)


def run(cmd, *, env=None, timeout=300, check=True, capture=True):
    """Runs cmd; returns its CompletedProcess (stdout and stderr as text)."""
    done = subprocess.run(
        cmd,
        env=env,
        timeout=timeout,
        text=True,
        capture_output=capture,
        check=False,
    )
    if check and done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout or ''}{done.stderr or ''}"
        )
    return done


def docker_engine():
    """True when a Docker engine answers."""
    if shutil.which("docker") is None:
        return False
    return run(["docker", "info"], check=False, timeout=60).returncode == 0


def compose_command():
    """`docker compose` when the plugin exists, else the `docker-compose` tool."""
    if run(["docker", "compose", "version"], check=False).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise RuntimeError("Docker has no Compose: install docker-compose or the compose plugin")


class Stack:
    """One compose project of the deploy stack, with its own secrets folder."""

    def __init__(self, target_dir):
        self.project = f"sluice-stack-{os.getpid()}-{secrets.token_hex(3)}"
        self.secrets = tempfile.mkdtemp(prefix="sluice-stack-secrets-")
        self.compose = compose_command() + [
            "-p",
            self.project,
            "-f",
            os.path.join(DEPLOY, "docker-compose.yaml"),
            "-f",
            os.path.join(DEPLOY, "docker-compose.test.yaml"),
        ]
        self.cli = os.path.join(target_dir, "sluice")
        self.env = dict(
            os.environ,
            SLUICE_IMAGE=SLUICE_IMAGE,
            SLUICE_TEST_MOTO_IMAGE=MOTO_IMAGE,
            SLUICE_SECRETS=self.secrets,
            # A free host port each: nothing clashes with another stack or local service.
            SLUICE_CLIENT_PUBLISH="127.0.0.1:",
            SLUICE_HTTP_PUBLISH="127.0.0.1:",
            S3_PUBLISH="127.0.0.1:",
            S3_CONSOLE_PUBLISH="127.0.0.1:",
            # A lost executor is declared dead after 15 s instead of 30 s.
            SLUICE_EXECUTOR_TIMEOUT_SECONDS="15",
        )
        self.url = None
        self.http = None
        self.password = None

    def sh(self, *args, timeout=300, check=True):
        return run(self.compose + list(args), env=self.env, timeout=timeout, check=check)

    def container(self, service):
        ids = self.sh("ps", "-a", "-q", service).stdout.split()
        if len(ids) != 1:
            raise RuntimeError(f"expected one {service} container, found {ids}")
        return ids[0]

    def logs(self, service):
        """The whole log (stdout and stderr) of the service's container, dead or alive."""
        done = run(["docker", "logs", self.container(service)], timeout=60)
        return done.stdout + done.stderr

    def network(self):
        info = run(["docker", "inspect", self.container("scheduler")]).stdout
        networks = json.loads(info)[0]["NetworkSettings"]["Networks"]
        if len(networks) != 1:
            raise RuntimeError(f"expected one network, found {list(networks)}")
        return next(iter(networks))

    def up(self):
        run([os.path.join(DEPLOY, "scripts", "secrets.sh"), self.secrets], env=self.env)
        with open(os.path.join(self.secrets, "password"), encoding="utf-8") as f:
            self.password = f.read().strip()
        self.sh("up", "-d", timeout=420)
        port = self.sh("port", "scheduler", "50050").stdout.strip().rsplit(":", 1)[1]
        self.url = f"127.0.0.1:{port}"
        port = self.sh("port", "scheduler", "8080").stdout.strip().rsplit(":", 1)[1]
        self.http = f"127.0.0.1:{port}"

    def wait_exit(self, service, timeout):
        """Waits for a one-shot service's container to end; returns its exit code."""
        done = run(["docker", "wait", self.container(service)], timeout=timeout)
        return int(done.stdout.strip())

    def sluice(self, *args, timeout=300, check=True):
        """The host's `sluice` CLI against the stack's scheduler, logged in as `sluice`."""
        env = dict(
            os.environ,
            SLUICE_SCHEDULER=f"http://{self.url}",
            SLUICE_USER="sluice",
            SLUICE_PASSWORD=self.password,
        )
        return run([self.cli, *args], env=env, timeout=timeout, check=check)

    def down(self):
        self.sh("down", "-v", "--remove-orphans", "--timeout", "5", timeout=300, check=False)
        shutil.rmtree(self.secrets, ignore_errors=True)

    def dump_logs(self):
        done = self.sh("logs", "--no-color", "--tail", "60", check=False)
        print(done.stdout + done.stderr, flush=True)


def assert_table_equals_reference(stack, what):
    """Whole rows of spotify.tracks over Flight SQL (ADBC) against DuckDB's join of the
    CSVs, EXCEPT ALL both ways; the row count through `sluice query` too."""
    with flight_sql.connect(
        f"grpc://{stack.url}",
        db_kwargs={"username": "sluice", "password": stack.password},
        autocommit=True,
    ) as conn:
        cur = conn.cursor()
        cur.execute("SELECT * FROM spotify.tracks")
        actual = cur.fetch_arrow_table()
        cur.close()
    csvs = {t: os.path.join(SAMPLE, f"{t}.csv") for t in ("albums", "artists", "tracks")}
    con = oracle.connect(csvs)
    con.register("actual", actual)
    con.execute(f"CREATE VIEW expected AS {oracle.SPOTIFY}")
    expected_cols = [r[0] for r in con.execute("DESCRIBE expected").fetchall()]
    assert sorted(actual.column_names) == sorted(expected_cols), (
        f"{what}: columns differ: {actual.column_names} vs {expected_cols}"
    )
    cols = ", ".join(f'CAST("{c}" AS VARCHAR) AS "{c}"' for c in expected_cols)
    for label, a, b in (("missing", "expected", "actual"), ("unexpected", "actual", "expected")):
        diff = f"SELECT {cols} FROM {a} EXCEPT ALL SELECT {cols} FROM {b}"
        n = con.execute(f"SELECT count(*) FROM ({diff})").fetchone()[0]
        sample = con.execute(f"{diff} LIMIT 3").fetchall()
        assert n == 0, f"{what}: {n} {label} rows, e.g. {sample}"
    reference = con.execute("SELECT count(*) FROM expected").fetchone()[0]
    assert actual.num_rows == reference, f"{what}: {actual.num_rows} rows, expected {reference}"
    out = stack.sluice(
        "query", "SELECT count(*) AS n FROM spotify.tracks", "--format", "csv"
    ).stdout
    assert out.split()[-1] == str(reference), f"{what}: sluice query said {out!r}"
    print(f"ok {what}: {reference} rows equal DuckDB's join of the raw CSVs", flush=True)


def assert_dashboard_equals_reference(stack):
    """The scheduler's dashboard port: a panel's data needs a login, and after one equals
    DuckDB's aggregate over the raw CSVs' join."""
    base = f"http://{stack.http}"
    panel = f"{base}/api/dashboards/spotify/panels/tracks_per_album_type/data"
    try:
        urllib.request.urlopen(panel, timeout=30)
        raise AssertionError("the panel API answered without a login")
    except urllib.error.HTTPError as e:
        assert e.code == 401, f"the panel API without a login answered {e.code}"

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    form = urllib.parse.urlencode({"user": "sluice", "password": stack.password}).encode()
    login = urllib.request.Request(
        f"{base}/login", data=form, method="POST", headers={"Origin": base}
    )
    try:
        urllib.request.build_opener(NoRedirect).open(login, timeout=30)
        raise AssertionError("the login did not redirect")
    except urllib.error.HTTPError as e:
        assert e.code == 303, f"the login answered {e.code}"
        cookie = e.headers["Set-Cookie"].split(";", 1)[0]
    request = urllib.request.Request(panel, headers={"Cookie": cookie})
    with urllib.request.urlopen(request, timeout=60) as r:
        data = json.loads(r.read())
    actual = sorted((row[0], int(row[1])) for row in data["rows"])
    csvs = {t: os.path.join(SAMPLE, f"{t}.csv") for t in ("albums", "artists", "tracks")}
    con = oracle.connect(csvs)
    con.execute(f"CREATE VIEW expected AS {oracle.SPOTIFY}")
    expected = sorted(
        (a, int(n))
        for a, n in con.execute(
            "SELECT album_type, count(*) FROM expected GROUP BY 1"
        ).fetchall()
    )
    assert actual == expected, f"dashboard panel: {actual} vs DuckDB's {expected}"
    print(f"ok dashboard: the panel over the S3 lake equals DuckDB's {expected}", flush=True)


def unfinished(log, job):
    """Ballista task ids of `job` the log says were received and not finished."""

    def ids(marker):
        found = []
        for line in log.splitlines():
            if marker in line:
                rest = line.split(marker, 1)[1]
                task = rest.split("]", 1)[0]
                if task.startswith(f"{job}/"):
                    found.append(task)
        return found

    finished = set(ids("Finished task : [TID "))
    return [t for t in ids("Received task: [TID ") if t not in finished]


def held_jobs(log):
    """The Ballista jobs the log's failpoint lines say a task was held of, in order."""
    return [
        line.rsplit(" of stage ", 1)[1].split("/", 1)[0]
        for line in log.splitlines()
        if line.startswith(HELD)
    ]


def submit_and_cut(stack, services, cut, what):
    """Submits the job, waits until one of `services`' executors holds a task of it, cuts that
    one off with `cut(container)`, and checks the run still ends SUCCEEDED with the reference
    rows. Returns the service it cut off.

    Whichever executor polls first gets a task (Ballista's executors pull), so a run may well
    never reach a given one: the test cuts the first that provably holds a task."""
    earlier = {s: set(held_jobs(stack.logs(s))) for s in services}
    out = stack.sluice("submit", JOB, "--detach").stdout
    run_id = out.split("submitted run ", 1)[1].split()[0]
    deadline = time.monotonic() + 120
    job = service = None
    while job is None:
        assert time.monotonic() < deadline, f"{what}: none of {services} held a task"
        for candidate in services:
            fresh = [j for j in held_jobs(stack.logs(candidate)) if j not in earlier[candidate]]
            if fresh:
                job, service = fresh[0], candidate
                break
        else:
            time.sleep(0.1)
    container = stack.container(service)
    cut(container)
    # Proof the cut landed mid-task: the executor had received a task of the run that its
    # log (read after the cut) does not show finished.
    held = unfinished(stack.logs(service), job)
    assert held, f"{what}: no unfinished task of job {job} in the {service} log"
    print(f"ok {what}: cut off {service} while it held {held}", flush=True)
    watch = stack.sluice("watch", run_id, timeout=400, check=False)
    status = stack.sluice("status", run_id, check=False).stdout
    assert watch.returncode == 0 and "SUCCEEDED" in status, (
        f"{what}: run {run_id} did not succeed:\n{watch.stdout}{watch.stderr}\n{status}"
    )
    # The scheduler noticed: Sluice discards an attempt that lost an executor and runs the
    # job again (README, "How a run is committed").
    attempt = int(status.split("attempt ", 1)[1].split(")", 1)[0])
    assert attempt >= 2, f"{what}: the run was not attempted again:\n{status}"
    print(f"ok {what}: run {run_id} SUCCEEDED at attempt {attempt}", flush=True)
    assert_table_equals_reference(stack, what)
    return service


def main():
    if not docker_engine():
        if os.environ.get("SLUICE_REQUIRE_DOCKER") == "1":
            print("error: no Docker engine answers, and SLUICE_REQUIRE_DOCKER=1", file=sys.stderr)
            return 1
        print("SKIPPED the deploy stack test: no Docker engine here (docker info failed)")
        return 0
    target = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target")), "debug")
    started = time.monotonic()
    step("images: Debian base, moto's server, Sluice from target/debug")
    scripts = os.path.join(DEPLOY, "scripts")
    env = dict(os.environ, PIP=os.path.join(os.path.dirname(sys.executable), "pip"))
    run([os.path.join(scripts, "moto-image.sh"), MOTO_IMAGE], env=env, timeout=900)
    run([os.path.join(scripts, "image.sh"), SLUICE_IMAGE, "debug"], timeout=600)

    stack = Stack(target)
    ok = False
    try:
        step(f"compose up (project {stack.project})")
        stack.up()
        step("run 1: the submit service runs the Spotify job from S3 staging to the S3 lake")
        code = stack.wait_exit("submit", timeout=300)
        assert code == 0, f"the submit service exited {code}:\n{stack.logs('submit')}"
        assert_table_equals_reference(stack, "run 1 (submit service)")
        assert_dashboard_equals_reference(stack)

        executors = ["executor-1", "executor-2"]
        step("run 2: docker kill an executor while it holds a task")
        killed = submit_and_cut(
            stack,
            executors,
            lambda c: run(["docker", "kill", c]),
            "run 2 (executor killed)",
        )
        # Back to two executors for the third run.
        stack.sh("up", "-d", "--no-deps", killed)

        step("run 3: docker network disconnect an executor while it holds a task")
        network = stack.network()
        submit_and_cut(
            stack,
            executors,
            lambda c: run(["docker", "network", "disconnect", network, c]),
            "run 3 (executor cut off the network)",
        )
        jobs = stack.sluice("jobs", "--state", "succeeded").stdout
        succeeded = sum(1 for line in jobs.splitlines() if "SUCCEEDED" in line)
        assert succeeded >= 3, f"expected 3 succeeded runs:\n{jobs}"
        ok = True
    finally:
        if not ok:
            stack.dump_logs()
        step("compose down -v --remove-orphans")
        stack.down()
    print(f"deploy stack: all checks passed in {time.monotonic() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
