"""``tf.distribute`` strategies by name, and TF_CONFIG checked before use.

    strategy = make_strategy("multiworker")    # reads and validates TF_CONFIG
    with strategy.scope():
        model.fit(...)

Strategies (``fit --strategy``):
    default: no distribution (one device).
    mirrored: ``MirroredStrategy``, one replica per local GPU (CPU: one).
    multiworker: ``MultiWorkerMirroredStrategy``: synchronous data parallelism
        over the workers of TF_CONFIG (``cluster.worker`` [+ ``cluster.chief``]);
        every worker runs the same command with its own ``task``.
    parameter_server: ``ParameterServerStrategy``: the ``chief`` task runs the
        fit, ``worker`` and ``ps`` tasks run a server (:func:`serve`).

In-batch negatives are per replica: each replica scores its share of the
global batch (batch_size / replicas examples) against that share only, so with
N replicas every positive has N times fewer in-batch negatives than in
single-worker training with the same batch_size. Scale batch_size with the
number of replicas to keep the negatives per example.
"""

from __future__ import annotations

import json
import os
from typing import Mapping, Optional

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multiworker", "parameter_server")
ROLES = {"multiworker": ("chief", "worker"), "parameter_server": ("chief", "worker", "ps")}
EXAMPLE = ('TF_CONFIG=\'{"cluster": {"worker": ["127.0.0.1:20001", "127.0.0.1:20002"]}, '
           '"task": {"type": "worker", "index": 0}}\'')


class TFConfigError(ValueError):
    """TF_CONFIG is missing or inconsistent; the message says what to change."""


def read_tf_config(strategy: str, environ: Optional[Mapping[str, str]] = None) -> dict:
    """Parses and validates TF_CONFIG for ``strategy``.

    Args:
        strategy: "multiworker" or "parameter_server".
        environ: Environment to read (default ``os.environ``).

    Returns:
        The parsed TF_CONFIG: {"cluster": {role: [address]}, "task": {"type", "index"}}.

    Raises:
        TFConfigError: TF_CONFIG is unset, not JSON, or inconsistent (unknown
            role, task not in the cluster, index out of range, bad or
            repeated address, missing chief/ps for parameter_server).
    """
    raw = (os.environ if environ is None else environ).get("TF_CONFIG", "")
    if not raw.strip():
        raise TFConfigError(f"--strategy {strategy} needs TF_CONFIG, the cluster and this "
                            f"process's task, e.g. {EXAMPLE}")
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as e:
        raise TFConfigError(f"TF_CONFIG is not valid JSON ({e}); e.g. {EXAMPLE}") from e
    if not isinstance(config, dict) or not isinstance(config.get("cluster"), dict) \
            or not isinstance(config.get("task"), dict):
        raise TFConfigError(f"TF_CONFIG needs an object with 'cluster' and 'task' objects; "
                            f"e.g. {EXAMPLE}")
    _check_cluster(config["cluster"], strategy)
    _check_task(config["task"], config["cluster"])
    return config


def _check_cluster(cluster: dict, strategy: str) -> None:
    allowed = ROLES[strategy]
    unknown = sorted(set(cluster) - set(allowed) - {"evaluator"})
    if unknown:
        raise TFConfigError(f"TF_CONFIG cluster has role(s) {unknown} that --strategy {strategy} "
                            f"does not use; valid roles: {list(allowed)}.")
    seen = {}
    for role, addresses in cluster.items():
        if not isinstance(addresses, list) or not addresses:
            raise TFConfigError(f"TF_CONFIG cluster.{role} must be a non-empty list of "
                                f"'host:port' addresses, got {addresses!r}.")
        for i, address in enumerate(addresses):
            host, _, port = str(address).rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise TFConfigError(f"TF_CONFIG cluster.{role}[{i}] = {address!r} is not "
                                    f"'host:port' with a port in 1..65535.")
            if address in seen:
                raise TFConfigError(f"TF_CONFIG address {address!r} is used twice "
                                    f"({seen[address]} and {role}[{i}]); give every task its own port.")
            seen[address] = f"{role}[{i}]"
    if len(cluster.get("chief", [])) > 1:
        raise TFConfigError("TF_CONFIG cluster.chief must hold exactly one address.")
    if strategy == "parameter_server" and not (cluster.get("chief") and cluster.get("ps")
                                               and cluster.get("worker")):
        raise TFConfigError("--strategy parameter_server needs cluster.chief (one address), "
                            "cluster.worker and cluster.ps in TF_CONFIG.")


def _check_task(task: dict, cluster: dict) -> None:
    role, index = task.get("type"), task.get("index")
    if role not in cluster:
        raise TFConfigError(f"TF_CONFIG task.type {role!r} is not a role of the cluster "
                            f"({sorted(cluster)}).")
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(cluster[role]):
        raise TFConfigError(f"TF_CONFIG task.index {index!r} is out of range: cluster.{role} has "
                            f"{len(cluster[role])} address(es), so the index must be 0.."
                            f"{len(cluster[role]) - 1}.")


def is_chief(config: Optional[dict]) -> bool:
    """True for the task that writes outputs: the chief, else worker 0."""
    if not config:
        return True
    task, cluster = config["task"], config["cluster"]
    if "chief" in cluster:
        return task["type"] == "chief"
    return task["type"] == "worker" and task["index"] == 0


def task_name(config: Optional[dict]) -> str:
    """e.g. "worker-1" ("chief" outside a cluster)."""
    return "chief" if not config else f"{config['task']['type']}-{config['task']['index']}"


def make_strategy(name: str, tf_config: Optional[dict] = None) -> tf.distribute.Strategy:
    """The strategy ``name`` (one of STRATEGIES); call before any other TF work.

    Args:
        name: Strategy name.
        tf_config: Validated TF_CONFIG (read_tf_config) for the cluster strategies.

    Raises:
        ValueError: Unknown name.
        TFConfigError: Bad TF_CONFIG (read when not given).
    """
    if name not in STRATEGIES:
        raise ValueError(f"Unknown strategy {name!r}; valid: {', '.join(STRATEGIES)}")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    tf_config = tf_config or read_tf_config(name)
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    return tf.distribute.ParameterServerStrategy(resolver)


def serve(tf_config: dict) -> None:
    """Runs this ``worker``/``ps`` task's server of a parameter-server cluster (blocks)."""
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    server = tf.distribute.Server(resolver.cluster_spec(), job_name=tf_config["task"]["type"],
                                  task_index=tf_config["task"]["index"], protocol="grpc",
                                  start=True)
    server.join()


def replicas() -> int:
    """Replicas in sync of the current strategy (1 outside any scope)."""
    return tf.distribute.get_strategy().num_replicas_in_sync


def uses_parameter_servers() -> bool:
    return isinstance(tf.distribute.get_strategy(), tf.distribute.ParameterServerStrategy)
