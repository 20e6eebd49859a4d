# Start-up checks for GPU machines and clusters, run once before the first job of a real
# run (not for -n). They turn silent misbehaviour into a clear message at start:
# - local runs: the GPUs jobs ask for (`gpu` resource), the `gpu` budget offered (profile
#   `resources:` / --resources) and the devices the machine has (nvidia-smi -L or
#   METAEXAMPLES_GPU_COUNT) must agree; Snakemake would otherwise shrink a job's request to
#   the budget without a word, or start more GPU jobs than there are GPUs;
# - Slurm runs: every slurm_partition the jobs name must exist (sinfo).
# The checks live in the package (metaexamples.scale.gpu_lease, metaexamples.scale.cluster).
from metaexamples.scale.cluster import ClusterError, check_slurm_partitions
from metaexamples.scale.gpu_lease import GpuLeaseError, check_gpu_budget


def resource_int(resources, name):
    """An integer resource of a rule or of the workflow (None if unset or not constant)."""
    value = resources.get(name)
    value = getattr(value, "value", value)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


onstart:
    _jobs = list(workflow.dag.needrun_jobs())
    try:
        check_gpu_budget(
            [resource_int(job.rule.resources, "gpu") or 0 for job in _jobs],
            resource_int(workflow.global_resources, "gpu"),
            local=workflow.local_exec,
        )
        if getattr(workflow.executor_plugin, "name", None) == "slurm":
            check_slurm_partitions(job.resources.get("slurm_partition") for job in _jobs)
    except (GpuLeaseError, ClusterError) as err:
        raise WorkflowError(f"start-up check failed: {err}")
