"""A study on a real single-node Slurm (Debian's slurm-wlm, started here as ../shared/CLUSTER.md shows):
submitted as a job array, one element cancelled mid-run, the study completed by a second submission;
and through dask-jobqueue on the same Slurm."""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys

import pytest
from search_helpers import (KILLABLE_EPOCHS, assert_each_trial_ended_once, search_env, tiny_study,  # noqa: F401
                            trial_mid_run, wait_for)

from lstm_scratch import cli

SLURM_PROGRAMS = ("slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo", "scontrol")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def slurm_conf(folder, node: str) -> str:
    """CLUSTER.md's configuration (auth none, pgid process tracking, one partition "debug"), plus ports
    of our own, so it cannot meet another Slurm on this machine."""
    probe = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True).stdout.splitlines()[0]
    hardware = re.sub(r"RealMemory=\d+", "", re.sub(r"^NodeName=\S* ", "", probe)).strip()
    memory = int(re.search(r"RealMemory=(\d+)", probe).group(1)) * 9 // 10   # more than slurmd sees drains it
    return f"""ClusterName=test
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/none
CredType=cred/none
AuthInfo=cred_expire=10
MailProg=/bin/true
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/slurmctld.log
SlurmdLogFile={folder}/slurmd.log
ProctrackType=proctrack/pgid
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={folder}/jobcomp.log
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
MinJobAge=600
KillWait=5
NodeName={node} NodeAddr=127.0.0.1 {hardware} RealMemory={memory} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


def squeue(*args) -> str:
    return subprocess.run(["squeue", "-h", *args], capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="session")
def slurm(tmp_path_factory):
    """A running single-node Slurm (``SLURM_CONF`` set for this session); stopped afterwards: jobs
    cancelled, then slurmctld and slurmd by the PIDs started here (never by name)."""
    missing = [p for p in SLURM_PROGRAMS if shutil.which(p) is None]
    if missing:
        pytest.skip(f"Slurm is not installed here ({', '.join(missing)} missing); .ci/run installs it: "
                    "apt-get install slurmctld slurmd slurm-client munge")
    if os.geteuid() != 0:
        pytest.skip("the single-node Slurm of CLUSTER.md runs its daemons as root")
    folder = tmp_path_factory.mktemp("slurm")
    (folder / "state").mkdir()
    (folder / "spool").mkdir()
    conf = folder / "slurm.conf"
    conf.write_text(slurm_conf(folder, socket.gethostname().split(".")[0]))
    daemons = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SLURM_CONF", str(conf))
        try:
            for daemon in ("slurmctld", "slurmd"):
                daemons.append(subprocess.Popen([daemon, "-D", "-c", "-f", str(conf)], start_new_session=True,
                                                stdin=subprocess.DEVNULL, stdout=open(folder / f"{daemon}.out", "w"),
                                                stderr=subprocess.STDOUT))
            wait_for(lambda: "idle" in subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True,
                                                      text=True).stdout.split(), 60, "the Slurm node to be idle", 0.5)
            yield folder
        finally:
            subprocess.run(["scancel", f"--user={os.getuid()}"], capture_output=True)
            try:
                wait_for(lambda: squeue() == "", 60, "the Slurm queue to empty", 0.5)
            finally:
                for process in daemons:
                    process.send_signal(signal.SIGTERM)
                for process in daemons:
                    try:
                        process.wait(timeout=20)
                    except subprocess.TimeoutExpired:
                        process.kill()
                        process.wait()


def wait_until_ended(job: str, timeout=600):
    wait_for(lambda: squeue("-j", job) == "", timeout, f"Slurm job {job} to end", 0.5)


def test_a_job_array_with_a_cancelled_element_completed_by_a_second_submission(tmp_path, slurm, capsys):
    study = tiny_study(tmp_path / "s", max_epochs=KILLABLE_EPOCHS, trials=3)
    assert cli.main(["search", "slurm", str(study.path), "--partition", "debug", "--time", "00:20:00",
                     "--parallel", "2"]) == 0
    job = re.search(r"job\(s\) (\d+)", capsys.readouterr().out).group(1)
    script = next((study.path / "slurm").glob("array-*.sbatch")).read_text()
    assert "#SBATCH --array=0-5%2" in script and "#SBATCH --requeue" in script
    assert "search run-trial" in script and "--index $((SLURM_ARRAY_TASK_ID + 0))" in script
    trial, _ = wait_for(lambda: trial_mid_run(study), 300, "an array element mid-trial")
    subprocess.run(["scancel", f"{job}_{trial.index}"], check=True)
    wait_until_ended(job)
    states = {s.trial.id: s.state for s in study.states()}
    assert states[trial.id] == "pending" and sum(v == "done" for v in states.values()) == study.size - 1, states
    log = (study.path / "slurm" / "logs" / f"{job}_{trial.index}.out").read_text()
    assert "interrupted" in log                                 # SIGTERM: the checkpoint kept, the lease released

    assert cli.main(["search", "slurm", str(study.path), "--partition", "debug", "--time", "00:20:00",
                     "--parallel", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("1 trial(s)")                        # only what had not ended
    wait_until_ended(re.search(r"job\(s\) (\d+)", out).group(1))
    assert_each_trial_ended_once(study, resumed={trial.id})
    assert cli.main(["search", "slurm", str(study.path), "--partition", "debug", "--time", "00:20:00",
                     "--parallel", "2"]) == 0
    assert "nothing to submit" in capsys.readouterr().out


def test_dask_jobqueue_on_slurm(tmp_path, slurm):
    pytest.importorskip("dask_jobqueue", reason="the dask extra is not installed: pip install -e '.[dask]'")
    study = tiny_study(tmp_path / "s", trials=1, max_epochs=2)
    # In a process of its own, with a deadline: a hang would name where it hangs (faulthandler) instead
    # of stopping the suite.
    command = [sys.executable, "-X", "faulthandler", "-m", "lstm_scratch.cli", "search", "run", str(study.path),
               "--jobqueue", "slurm", "--workers", "2", "--jobqueue-option", "queue=debug",
               "--jobqueue-option", "walltime=00:20:00", "--jobqueue-option", "memory=1GB",
               "--jobqueue-option", "interface=lo",
               "--jobqueue-option", 'scheduler_options={"dashboard_address": null}']
    driver = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = driver.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        driver.send_signal(signal.SIGABRT)                       # faulthandler: every thread's stack
        out, _ = driver.communicate()
        pytest.fail(f"search run --jobqueue slurm did not end within 600 s:\n{out[-6000:]}")
    assert driver.returncode == 0, out[-3000:]
    assert "2/2 trials ended" in out
    assert_each_trial_ended_once(study)
    assert list((study.path / "jobqueue").glob("dask-worker-*.err"))    # the workers were Slurm jobs
    wait_for(lambda: squeue() == "", 60, "the worker jobs to end with the run", 0.5)
