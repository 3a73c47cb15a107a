"""The visdom fault: the live display's server killed mid-run and started again; training goes on,
warns once, and the restarted server receives points."""
from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
from pathlib import Path

from benchmarks.fault_runs import ENV, STEP_LINE, command, run, same, training_of

from support.visdom_server import VisdomServer


# The visdom trials train 6 epochs (24 steps), so that a restarted server has steps left to show.
LONG = ("--n_epochs", "6")
_LONG_ORACLE: dict = {}


def long_oracle(pairs: Path, work: Path) -> dict:
    if not _LONG_ORACLE:
        done = run(command(pairs, work, "oracle_long", *LONG))
        assert done.returncode == 0, done.stderr[-2000:]
        _LONG_ORACLE.update(training_of(work / "oracle_long" / "latest.pt"))
    return _LONG_ORACLE


class CampaignVisdom(VisdomServer):
    """The shared loopback visdom server, plus reading back the loss points it holds."""

    def loss_points(self, env: str, window: str) -> list[float]:
        import warnings
        import visdom
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            client = visdom.Visdom(server="http://127.0.0.1", port=self.port, use_incoming_socket=False)
            data = client.get_window_data(window, env=env)
        if not data:
            return []
        return [x for trace in json.loads(data)["content"]["data"] for x in trace["x"]]


def visdom_trial(i: int, rng: random.Random, pairs: Path, work: Path, oracle: dict) -> dict:
    """Kill the server after a random step, start it again 3 steps later (training frozen with
    SIGSTOP meanwhile); the trainer looks for it at every point (RECONNECT_EVERY_S = 0 here;
    30 s by default)."""
    name, env_name = f"visdom{i}", f"campaign{i}"
    server = CampaignVisdom(work / f"visdom_home{i}")
    server.start()
    argv = command(pairs, work, name, "--display_id", "1", "--display_port", str(server.port), "--display_server",
                   "http://127.0.0.1", "--display_env", env_name, "--print_freq", "2", *LONG)[2:]
    code = ("import sys; import reporting.sinks.visdom as v; "
            f"v.RECONNECT_EVERY_S = 0.0; import train; sys.exit(train.main({argv!r}))")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=ENV)
    assert proc.stdout is not None
    kill_after = rng.randint(2, 5)
    lines, restarted = [], False
    try:
        for line in proc.stdout:
            lines.append(line)
            match = STEP_LINE.search(line)
            step = int(match.group(1)) if match else 0
            if server.proc is not None and not restarted and step >= kill_after:
                server.kill()
            elif server.proc is None and step >= kill_after + 3:
                # Training is frozen while the server starts (seconds on a busy machine), so
                # that steps are left to show on it whatever the load.
                proc.send_signal(signal.SIGSTOP)
                try:
                    server.start()
                finally:
                    proc.send_signal(signal.SIGCONT)
                restarted = True
        status = proc.wait()
        points = server.loss_points(env_name, f"{name}_1_losses")
    finally:
        server.kill()
    text = "".join(lines)
    warnings = text.count("stopped answering")
    back = "live display is back" in text
    exact = status == 0 and same(training_of(work / name / "latest.pt"), long_oracle(pairs, work))
    ok = status == 0 and warnings == 1 and back and bool(points) and exact
    return {"fault": "visdom", "trial": i, "killed_after_step": kill_after, "exit_status": status,
            "warnings": warnings, "display_back": back, "points_on_restarted_server": len(points),
            "bit_exact": exact, "lost": not ok}
