"""Start a Dask cluster on SLURM or PBS for `odelebm-reproduce --executor dask`, and keep it up until Ctrl-C.

Run it on the cluster's login node (or in a small batch job), in the environment where odelebm is installed:

    python examples/dask_cluster.py slurm --jobs 8 --cores 4 --memory 16GB --walltime 04:00:00
        --queue gpu --account myproj
    # prints: scheduler at tcp://10.1.2.3:8786 ...; then, in another shell on the same node:
    odelebm-reproduce --profile paper --executor dask --scheduler tcp://10.1.2.3:8786

Each batch job starts `--cores` single-threaded workers (an odelebm job uses one torch thread), so `--jobs 8 --cores 4`
runs 32 trainings at once. The workers import the same odelebm (the same python) and write into the run folder, which
must be on a file system every node sees (the checkout's runs/, or --run-dir). `--dry-run` prints the batch script
and exits without submitting anything. Needs `pip install "odelebm[dask]"` (dask.distributed and dask-jobqueue).
"""
from __future__ import annotations
import argparse, sys, time


def make_cluster(system: str, cores: int, memory: str, walltime: str, queue: str | None = None,
                 account: str | None = None, port: int = 8786, extra: list[str] | None = None,
                 setup: list[str] | None = None):
    "A dask-jobqueue cluster whose batch jobs each run `cores` single-threaded workers with this Python."
    import dask_jobqueue
    cls = dict(slurm=dask_jobqueue.SLURMCluster, pbs=dask_jobqueue.PBSCluster)[system]
    return cls(cores=cores, processes=cores, memory=memory, walltime=walltime, queue=queue, account=account,
               python=sys.executable, scheduler_options=dict(port=port), job_extra_directives=extra or [],
               job_script_prologue=setup or [])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("system", choices=["slurm", "pbs"])
    ap.add_argument("--jobs", type=int, default=1, help="batch jobs to submit (each one a node or a part of one)")
    ap.add_argument("--cores", type=int, default=4, help="cores per batch job = single-threaded workers per job")
    ap.add_argument("--memory", default="16GB", help="memory per batch job")
    ap.add_argument("--walltime", default="04:00:00")
    ap.add_argument("--queue", default=None, help="partition (SLURM) or queue (PBS)")
    ap.add_argument("--account", default=None)
    ap.add_argument("--port", type=int, default=8786, help="the scheduler's port (0: any free port)")
    ap.add_argument("--extra", action="append", default=[], help="a batch directive, repeatable: --extra=--gres=gpu:1")
    ap.add_argument("--setup", action="append", default=[],
                    help='a shell line run before the workers start, repeatable: --setup "module load cuda"')
    ap.add_argument("--dry-run", action="store_true", help="print the batch script and exit; submit nothing")
    a = ap.parse_args(argv)
    cluster = make_cluster(a.system, a.cores, a.memory, a.walltime, a.queue, a.account, 0 if a.dry_run else a.port,
                           a.extra, a.setup)
    with cluster:
        if a.dry_run:
            print(cluster.job_script()); return 0
        cluster.scale(jobs=a.jobs)
        print(f"scheduler at {cluster.scheduler_address}: {a.jobs} batch job(s) x {a.cores} workers submitted. Run\n"
              f"  odelebm-reproduce --executor dask --scheduler {cluster.scheduler_address} ...\n"
              f"from this node; Ctrl-C here cancels the batch jobs.", flush=True)
        try:
            while True: time.sleep(3600)
        except KeyboardInterrupt: return 0


if __name__ == "__main__":
    sys.exit(main())
