"""Training over several replicas and workers (pix2pix_tf.train.distribute, and the loop under it).

The distributed runs happen in child processes: logical devices and a
multi-worker runtime can only be set up before TensorFlow starts, and the
workers are real `pix2pix-tf train` processes talking over 127.0.0.1.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from pix2pix_tf.cli import main
from pix2pix_tf.errors import Pix2PixError
from pix2pix_tf.serve import free_port
from pix2pix_tf.train import distribute

# Two float32 runs that differ only in how the batch's gradient is summed (one
# batch of 2 vs two replicas of 1, all-reduced) agree to rounding. Measured worst
# |difference| / max |value| over every variable in the checkpoint (weights, both
# Adam moments, step counters, BN statistics): 6e-6 mirrored with instance norm,
# 1.7e-5 with syncbatch, 5e-6 for two workers; plain batch norm, whose statistics
# differ per replica, is off by more than 1e-2.
RELATIVE_TOLERANCE = 1e-4
PROCESS_TIMEOUT = 240  # seconds for any one child process


@pytest.fixture(scope="module")
def facades(tmp_path_factory):
    from pix2pix_tf.data.synthetic import synthesize

    out = tmp_path_factory.mktemp("distribute") / "facades"
    synthesize("facades", out, count=12, size=64)
    return out


def _checkpoint(workdir: Path) -> dict[str, np.ndarray]:
    """Every variable of the newest checkpoint in `workdir`."""
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(workdir / "checkpoints")))
    names = [k for k in reader.get_variable_to_shape_map() if "CHECKPOINTABLE" not in k and "save_counter" not in k]
    return {k: reader.get_tensor(k) for k in names}


# Adam's first steps move a parameter by about the learning rate whatever its gradient's
# size, so a parameter whose gradient is nearly zero ends up a few lr from its start with
# a value set by float rounding (a beta behind instance norm: 6e-4 after 3 steps, differing
# by 1e-7 between reduction orders). In the parameters (not Adam's moments, which are
# judged as before), differences below a thousandth of one step are rounding.
_ROUNDING = 2e-4 / 1000  # the default learning rate / 1000


def _worst_relative_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    worst = 0.0
    for key in a:
        x, y = np.asarray(a[key], np.float64), np.asarray(b[key], np.float64)
        rounding = _ROUNDING if "_trainable_variables" in key else 0.0
        beyond_rounding = max(float(np.max(np.abs(x - y))) - rounding, 0.0)
        worst = max(worst, beyond_rounding / max(float(np.max(np.abs(x))), 1e-12))
    return worst


# --- one process, two logical CPUs ----------------------------------------------------

_MIRRORED = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from pix2pix_tf.config import Config
    from pix2pix_tf.models import build_generator
    from pix2pix_tf.train import train

    data, out = sys.argv[1], sys.argv[2]
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    result = {"replicas": mirrored.num_replicas_in_sync}
    for norm in ("instance", "syncbatch", "batch"):
        config = Config().replace(
            data={"image_size": 32, "batch_size": 2},
            model={"ngf": 8, "ndf": 8, "norm": norm, "dropout": 0.0},
            train={"steps": 3, "precision": "float32", "checkpoint_every": 3, "sample_every": 3, "log_every": 1},
        )
        two = train(config, data, f"{out}/{norm}_two", strategy=mirrored)
        if norm != "batch":  # plain batch norm's one-device reference is syncbatch_one: the same maths on one device
            one = train(config, data, f"{out}/{norm}_one", strategy=tf.distribute.get_strategy())
            result[norm] = {"steps": [one.step, two.step], "losses": [one.losses, two.losses]}

    # The same image on both replicas, dropout on: do the replicas draw different masks?
    image = tf.random.stateless_uniform([1, 32, 32, 3], seed=[1, 2], minval=-1, maxval=1)
    with mirrored.scope():
        generator = build_generator(32, ngf=8, dropout=0.5, seed=0)
        plain = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Dropout(0.5, seed=1)])

    def replicas_agree(model):
        outputs = mirrored.experimental_local_results(
            mirrored.run(tf.function(lambda x: model(x, training=True)), args=(image,))
        )
        return bool(tf.reduce_all(outputs[0] == outputs[1]))

    result["same_mask"] = {"pix2pix_tf": replicas_agree(generator), "keras": replicas_agree(plain)}

    # Loss-scaled gradients: one replica's overflow must become every replica's.
    from pix2pix_tf.train.state import agree_on_overflow

    def gradients(overflow_on):
        def per_replica(context):
            bad = context.replica_id_in_sync_group == overflow_on
            return [tf.constant([1.5, -2.0]), tf.constant([float("inf") if bad else 3.0])]

        values = mirrored.experimental_distribute_values_from_function(per_replica)
        agreed = mirrored.run(tf.function(agree_on_overflow), args=(values,))
        return [[g.numpy().tolist() for g in mirrored.experimental_local_results(v)] for v in agreed]

    result["overflow"] = {"none": gradients(-1), "replica 1": gradients(1)}

    # A whole mixed_float16 step with an overflow on replica 1 only: both replicas
    # must skip it (weights unchanged, loss scale halved), not apply Inf on replica 0.
    from pix2pix_tf.train import Pix2Pix, Schedule

    config = Config().replace(
        data={"image_size": 32, "batch_size": 2},
        model={"ngf": 8, "ndf": 8, "norm": "instance", "dropout": 0.0},
        train={"precision": "mixed_float16"},
    )
    model = Pix2Pix(config, Schedule(10, 5, 10, 2), strategy=mirrored)
    weights = [v.numpy() for v in model.generator.trainable_variables]
    scale = float(model.g_optimizer.dynamic_scale.numpy())
    ok = tf.random.stateless_uniform([1, 32, 32, 3], seed=[3, 4], minval=-1, maxval=1)
    source = mirrored.experimental_distribute_values_from_function(
        lambda context: ok if context.replica_id_in_sync_group == 0 else tf.fill([1, 32, 32, 3], 6e4)
    )
    target = mirrored.experimental_distribute_values_from_function(lambda context: ok)
    model.train_step(source, target)
    replicas = [mirrored.experimental_local_results(v) for v in model.generator.trainable_variables]
    scales = mirrored.experimental_local_results(model.g_optimizer.dynamic_scale.value)
    result["mixed_float16_overflow"] = {
        "unchanged": all(bool(np.array_equal(w, r)) for w, rs in zip(weights, replicas) for r in rs),
        "scales": [float(s.numpy()) for s in scales],
        "scale_before": scale,
    }
    print("RESULT " + json.dumps(result))
    """
)


@pytest.mark.slow
def test_mirrored_over_two_cpus_matches_one_device(facades, tmp_path):
    script = tmp_path / "mirrored.py"
    script.write_text(_MIRRORED)
    run = subprocess.run(
        [sys.executable, str(script), str(facades), str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.split("RESULT ", 1)[1])
    assert result["replicas"] == 2
    runs = tmp_path / "runs"
    for norm in ("instance", "syncbatch"):  # per-sample or all-reduced statistics: the same maths
        assert result[norm]["steps"] == [3, 3]
        one, two = _checkpoint(runs / f"{norm}_one"), _checkpoint(runs / f"{norm}_two")
        # Adam's first moment is linear in the gradient: a gradient twice too large
        # (losses not divided by the replicas) would show here, not only in the weights.
        worst = _worst_relative_difference(one, two)
        print(f"{norm}: mirrored vs one device, worst relative difference {worst:.2g}")
        assert worst < RELATIVE_TOLERANCE, norm
        counters = [k for k in one if k.endswith("iteration/.ATTRIBUTES/VARIABLE_VALUE") or k.startswith("step/")]
        assert counters and all(int(two[k]) == 3 for k in counters)  # global steps, not replica steps
        losses_one, losses_two = result[norm]["losses"]
        for key in ("g_total", "g_l1", "d_total"):
            assert losses_two[key] == pytest.approx(losses_one[key], rel=1e-4)
    # Plain batch norm normalises each replica's share alone: the check above can fail. Its one-device
    # reference is syncbatch's, the same maths on one device (measured: 4e-4 from plain batch norm's).
    assert _worst_relative_difference(_checkpoint(runs / "syncbatch_one"), _checkpoint(runs / "batch_two")) > 1e-2
    # Keras' Dropout repeats one mask on every replica; the generator's does not.
    assert result["same_mask"] == {"pix2pix_tf": False, "keras": True}
    # Finite gradients pass unchanged; an Inf on replica 1 makes both replicas' all NaN,
    # so Keras' loss-scale optimizer skips the step on both.
    assert result["overflow"]["none"] == [[[1.5, -2.0], [1.5, -2.0]], [[3.0], [3.0]]]
    flagged = np.array([x for grad in result["overflow"]["replica 1"] for replica in grad for x in replica])
    assert np.isnan(flagged).all()
    skipped = result["mixed_float16_overflow"]
    assert skipped["unchanged"] and skipped["scales"] == [skipped["scale_before"] / 2] * 2


# --- two worker processes on 127.0.0.1 ----------------------------------------------------


class Job:
    """`pix2pix-tf train --strategy multi_worker` in one process per worker, on free 127.0.0.1 ports."""

    def __init__(self, tmp_path: Path, workers: int = 2):
        ports: set[int] = set()
        while len(ports) < workers:
            ports.add(free_port())
        self.hosts = [f"127.0.0.1:{port}" for port in sorted(ports)]
        self.tmp = tmp_path
        self.scratch = tmp_path / "worker_tmp"  # each worker's TMPDIR: its checkpoint copies go there
        self.scratch.mkdir(exist_ok=True)
        self.processes: list[subprocess.Popen] = []
        self.logs: list[tuple[Path, Path]] = []
        self.runs = 0

    def start(self, *argv: str, workdirs: list[Path], first_index: int = 0):
        """Starts one worker per work dir, with task indices from `first_index` on."""
        self.runs += 1
        for index, workdir in enumerate(workdirs, start=first_index):
            tf_config = {"cluster": {"worker": self.hosts}, "task": {"type": "worker", "index": index}}
            env = {**os.environ, "TF_CONFIG": json.dumps(tf_config), "TMPDIR": str(self.scratch)}
            # Files, not pipes: nobody reads a pipe while a test waits, and a full one would stall the child.
            out, err = (self.tmp / f"run{self.runs}_worker{index}.{kind}" for kind in ("out", "err"))
            with out.open("w") as stdout, err.open("w") as stderr:
                self.processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "pix2pix_tf", "train", *argv, "--workdir", str(workdir)],
                        stdout=stdout,
                        stderr=stderr,
                        env=env,
                    )
                )
            self.logs.append((out, err))

    def wait(self, timeout: float = PROCESS_TIMEOUT) -> list[tuple[int, str, str]]:
        """(exit code, stdout, stderr) per worker; every worker is killed at the timeout."""
        deadline = time.monotonic() + timeout
        try:
            for process in self.processes:
                process.wait(timeout=max(deadline - time.monotonic(), 1))
        finally:
            self.kill()
        results = [(p.returncode, out.read_text(), err.read_text()) for p, (out, err) in zip(self.processes, self.logs)]
        self.processes, self.logs = [], []
        return results

    def kill(self):
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.fixture
def job(tmp_path):
    job = Job(tmp_path)
    yield job
    job.kill()


_ARGS = [
    "--image-size", "32", "--batch-size", "2", "--ngf", "8", "--ndf", "8", "--norm", "instance",
    "--dropout", "0", "--precision", "float32", "--log-every", "1", "--sample-every", "3",
]  # fmt: skip


def _single_process(facades, workdir, steps):
    """The same command with one device, in this process (its TensorFlow is already started)."""
    argv = ["train", "--data", str(facades), "--workdir", str(workdir), *_ARGS, "--steps", str(steps)]
    assert main([*argv, "--checkpoint-every", "3", "--strategy", "default"]) == 0


@pytest.mark.slow
def test_two_workers_match_one_process_and_resume(facades, tmp_path, job):
    shared = tmp_path / "shared"  # both workers are given it, as on shared storage
    argv = ["--data", str(facades), *_ARGS, "--checkpoint-every", "3", "--strategy", "multi_worker"]
    job.start(*argv, "--steps", "3", workdirs=[shared, shared])
    results = job.wait()
    assert [code for code, _, _ in results] == [0, 0], [err[-2000:] for _, _, err in results]
    chief_out, worker_out = results[0][1], results[1][1]
    assert "worker 0 of 2 workers" in chief_out and "step 3/3" in chief_out
    assert "step 3/3" not in worker_out  # only the chief reports progress
    # Only the chief wrote: one event file, and no worker's checkpoint copy is left behind.
    assert sorted(p.name for p in shared.iterdir()) == ["checkpoints", "config.json", "logs", "run.json", "samples"]
    assert len(list((shared / "logs/train").iterdir())) == 1
    assert list(job.scratch.iterdir()) == []
    run = json.loads((shared / "run.json").read_text())
    assert (run["workers"], run["replicas"]) == (2, 2)

    single = tmp_path / "single"
    _single_process(facades, single, 3)
    worst = _worst_relative_difference(_checkpoint(single), _checkpoint(shared))
    print(f"two workers vs one process: worst relative difference {worst:.2g}")
    assert worst < RELATIVE_TOLERANCE

    # Rerunning the same command with a longer run resumes from the chief's checkpoint,
    # and the sharded stream carries on exactly: it still matches one process.
    job.start(*argv, "--steps", "6", workdirs=[shared, shared])
    results = job.wait()
    assert [code for code, _, _ in results] == [0, 0], [err[-2000:] for _, _, err in results]
    assert "resuming from step 3" in results[0][1]
    _single_process(facades, single, 6)
    worst = _worst_relative_difference(_checkpoint(single), _checkpoint(shared))
    print(f"two workers vs one process: worst relative difference {worst:.2g}")
    assert worst < RELATIVE_TOLERANCE

    # A worker that cannot see the chief's checkpoints would start from 0: refused on both.
    elsewhere = tmp_path / "not_shared"
    job.start(*argv, "--steps", "9", workdirs=[shared, elsewhere])
    results = job.wait()
    for code, _, err in results:
        assert code == 2 and "the workers resumed from different steps (0 to 6" in err, err[-2000:]
    assert not elsewhere.exists()  # a non-chief creates nothing
    assert sorted(p.name for p in (shared / "checkpoints").glob("*.index")) == ["ckpt-3.index", "ckpt-6.index"]

    # Workers given different settings would run different collectives and wait on each other forever.
    job.start(*argv, "--steps", "9", workdirs=[shared])
    job.start(*argv, "--steps", "12", workdirs=[shared], first_index=1)
    results = job.wait()
    for code, _, err in results:
        assert code == 2 and "started with different settings or data" in err, err[-2000:]


@pytest.mark.slow
def test_with_separate_work_dirs_only_the_chiefs_is_written(facades, tmp_path, job):
    chief, other = tmp_path / "chief", tmp_path / "other"
    argv = ["--data", str(facades), *_ARGS, "--steps", "3", "--checkpoint-every", "3", "--strategy", "multi_worker"]
    job.start(*argv, workdirs=[chief, other])
    results = job.wait()
    assert [code for code, _, _ in results] == [0, 0], [err[-2000:] for _, _, err in results]
    assert (chief / "checkpoints/ckpt-3.index").exists() and (chief / "samples/latest.png").exists()
    assert not other.exists() and list(job.scratch.iterdir()) == []


def _start_until_first_checkpoint(job: Job, facades: Path, workdir: Path, steps: int, every: int) -> list[str]:
    """Starts two workers on a long run saving and logging every `every` steps; returns argv once the chief saved."""
    argv = ["--data", str(facades), *_ARGS, "--steps", str(steps), "--checkpoint-every", str(every)]
    argv += ["--sample-every", str(steps), "--log-every", str(every), "--strategy", "multi_worker"]
    job.start(*argv, workdirs=[workdir, workdir])
    deadline = time.monotonic() + PROCESS_TIMEOUT
    while not list((workdir / "checkpoints").glob("ckpt-*.index")):
        assert time.monotonic() < deadline and job.processes[0].poll() is None, "no checkpoint was written"
        time.sleep(0.05)
    return argv


@pytest.mark.slow
@pytest.mark.parametrize("killed", [1, 0], ids=["worker", "chief"])
def test_a_killed_worker_stops_the_job_and_the_same_command_resumes(facades, tmp_path, job, killed):
    workdir = tmp_path / "shared"
    # 60 steps saving every 10: 50 steps (at least five calls, each ending at a save) left after
    # the first checkpoint, in which to kill one worker.
    steps, every = 60, 10
    argv = _start_until_first_checkpoint(job, facades, workdir, steps=steps, every=every)
    job.processes[killed].send_signal(signal.SIGKILL)
    code, out, err = job.wait(timeout=120)[1 - killed]  # the survivor
    assert code == 2, f"exit {code} (0: the run ended before the kill landed): {err[-3000:]}"
    assert "lost contact with another worker" in err and "start every worker again with the same command" in err
    saved = max(int(p.stem.split("-")[1]) for p in (workdir / "checkpoints").glob("ckpt-*.index"))
    assert every <= saved < steps

    job.start(*argv, workdirs=[workdir, workdir])
    results = job.wait()
    assert [code for code, _, _ in results] == [0, 0], [err[-2000:] for _, _, err in results]
    assert f"resuming from step {saved}" in results[0][1] and f"trained to step {steps}" in results[0][1]


@pytest.mark.slow
@pytest.mark.parametrize("sent", [signal.SIGINT, signal.SIGTERM], ids=["ctrl_c", "sigterm"])
def test_ctrl_c_on_one_worker_stops_every_worker_at_the_same_checkpoint(facades, tmp_path, job, sent):
    workdir = tmp_path / "shared"
    # Saves every 20 steps, calls last about 0.2 s (a few steps): the signal usually lands between
    # saves, so the save it makes is its own, not a periodic one that happened to be due.
    _start_until_first_checkpoint(job, facades, workdir, steps=4000, every=20)
    job.processes[1].send_signal(sent)  # the worker's, not the chief's
    results = job.wait(timeout=120)
    assert [code for code, _, _ in results] == [130, 130], [err[-2000:] for _, _, err in results]
    chief_out = results[0][1]
    assert "interrupted: saved step" in chief_out
    stopped = int(chief_out.split("interrupted: saved step ")[1].split()[0])
    newest = max(int(p.stem.split("-")[1]) for p in (workdir / "checkpoints").glob("ckpt-*.index"))
    assert newest == stopped < 4000
    assert f"interrupted: saved step {stopped}" in results[1][1]  # the same step on both


# --- choosing and checking the strategy -----------------------------------------------------


def test_auto_uses_every_gpu_only_when_there_are_several(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    strategy, why = distribute.make_strategy("auto")  # this machine: no GPU
    assert strategy is tf.distribute.get_strategy() and "fewer than two GPUs" in why

    class FakeMirrored:
        num_replicas_in_sync = 2

    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: ["gpu:0", "gpu:1"])
    monkeypatch.setattr(tf.distribute, "MirroredStrategy", FakeMirrored)
    strategy, why = distribute.make_strategy("auto", batch_size=4)
    assert isinstance(strategy, FakeMirrored) and why.startswith("mirrored over 2 GPUs")
    # The paper's batch 1 (the facades preset's) cannot be split: it stays on one device.
    strategy, why = distribute.make_strategy("auto", batch_size=1)
    assert strategy is tf.distribute.get_strategy() and "batch 1 does not split over 2 GPUs" in why


def test_auto_joins_the_cluster_a_service_put_in_tf_config(monkeypatch, capsys):
    # Kubeflow and Vertex AI set TF_CONFIG in every replica: trained alone, each would
    # take itself for the chief and write the shared work dir.
    class FakeMultiWorker:
        num_replicas_in_sync = 2

        def __init__(self, cluster_resolver):
            self.cluster_resolver = cluster_resolver

    cluster = {"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 1}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(cluster))
    monkeypatch.setattr(tf.distribute, "MultiWorkerMirroredStrategy", FakeMultiWorker)
    strategy, why = distribute.make_strategy("auto")
    assert isinstance(strategy, FakeMultiWorker)
    assert why.endswith("(auto: TF_CONFIG lists 2 workers)") and "worker 1 of 2 workers" in why
    assert "waiting for all 2 workers" in capsys.readouterr().out
    strategy, _ = distribute.make_strategy("default")  # asked for one device: it says what it ignores
    assert strategy is tf.distribute.get_strategy()
    assert "warning: TF_CONFIG lists 2 workers, but --strategy default trains this process alone" in (
        capsys.readouterr().out
    )


@pytest.mark.parametrize(
    "tf_config,message",
    [
        (None, "--strategy multi_worker needs the TF_CONFIG environment variable"),
        ("{not json", "TF_CONFIG is not valid JSON"),
        ('{"cluster": {"worker": ["a:1"]}}', "TF_CONFIG needs a 'cluster' and a 'task' object"),
        ('{"cluster": {"worker": "a:1"}, "task": {"type": "worker", "index": 0}}', "must be lists of 'host:port'"),
        ('{"cluster": {"worker": ["a:1"], "ps": ["b:1"]}, "task": {"type": "worker", "index": 0}}', "only 'chief'"),
        ('{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 2}}', "is not in the cluster"),
        ('{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": true}}', "is not in the cluster"),
        ('{"cluster": {"chief": ["a:1", "b:1"]}, "task": {"type": "chief", "index": 0}}', "there can be one"),
        (
            '{"cluster": {"worker": ["a:1"], "evaluator": ["b:1"]}, "task": {"type": "evaluator", "index": 0}}',
            "an evaluator, which does not train",
        ),
    ],
)
def test_bad_tf_config_is_one_clear_error(monkeypatch, tf_config, message):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(Pix2PixError, match=message):
        distribute.make_strategy("multi_worker")


def test_multi_worker_without_tf_config_from_the_cli_is_one_line(facades, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    run = subprocess.run(
        [sys.executable, "-m", "pix2pix_tf", "train", "--data", str(facades), "--workdir", str(tmp_path / "w"),
         "--strategy", "multi_worker"],
        capture_output=True, text=True, env=env, timeout=PROCESS_TIMEOUT,
    )  # fmt: skip
    lines = [line for line in run.stderr.splitlines() if line.startswith("error:") or "Traceback" in line]
    assert run.returncode == 2 and len(lines) == 1, run.stderr[-2000:]
    assert lines[0].startswith("error: --strategy multi_worker needs the TF_CONFIG environment variable")
    assert not (tmp_path / "w").exists()


@pytest.mark.parametrize("name", [None, "no-such-tpu"])
def test_tpu_without_a_tpu_is_a_clear_error(monkeypatch, name):
    if name is None:
        monkeypatch.delenv("TPU_NAME", raising=False)
    else:  # looked up by name over HTTP, which fails here
        monkeypatch.setenv("TPU_NAME", name)
    with pytest.raises(Pix2PixError, match="--strategy tpu: no TPU found"):
        distribute.make_strategy("tpu")


def test_global_batch_must_split_over_the_replicas():
    two = types.SimpleNamespace(num_replicas_in_sync=2)
    distribute.check_batch(two, 4)
    with pytest.raises(Pix2PixError, match="batch size 3 does not split over 2 replicas.*multiple of 2"):
        distribute.check_batch(two, 3)


def test_one_process_is_its_own_chief():
    assert distribute.role_of(tf.distribute.get_strategy()) == distribute.Role(is_chief=True, index=0, workers=1)


def test_the_chief_is_the_chief_task_or_else_worker_0():
    workers = {"worker": ["a:1", "b:1", "c:1"]}
    assert distribute.role_in(workers, "worker", 0) == distribute.Role(True, 0, 3)
    assert distribute.role_in(workers, "worker", 2) == distribute.Role(False, 2, 3)
    with_chief = {"chief": ["a:1"], "worker": ["b:1", "c:1"], "evaluator": ["d:1"]}
    assert distribute.role_in(with_chief, "chief", 0) == distribute.Role(True, 0, 3)
    assert distribute.role_in(with_chief, "worker", 0) == distribute.Role(False, 1, 3)


def test_strategy_is_saved_in_config_and_checked(tmp_path):
    from pix2pix_tf.artifacts import load_config, save_config
    from pix2pix_tf.config import Config

    config = Config().replace(train={"strategy": "multi_worker"})
    save_config(config, tmp_path / "config.json")
    assert load_config(tmp_path / "config.json").train.strategy == "multi_worker"
    with pytest.raises(Pix2PixError, match="strategy must be one of auto, default, mirrored, multi_worker, tpu"):
        Config().replace(train={"strategy": "horovod"})
