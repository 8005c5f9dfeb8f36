"""talkvid_curate: apply a threshold profile to the stored scores and export a release. No model runs here.

Trigger it from the form (a profile name or file, per-criterion threshold overrides, bench spec, export formats,
output location), or let the schedule make a dated release. After a threshold change, re-decide and re-export a
date range without rescoring:

    airflow backfill create --dag-id talkvid_curate --from-date 2026-01-01 --to-date 2026-01-07 \
        --dag-run-conf '{"thresholds": {"avg_movement": {"min": 85}}}' --reprocess-behavior completed
"""

from airflow.sdk import DAG, task

from talkvid_ops.runners import inprocess
from talkvid_ops.runners.dag_tasks import TAGS, curate_params, dag_args, runner_config

config = runner_config()

with DAG(
    dag_id="talkvid_curate",
    description="decide with a threshold profile over stored scores, then export a release",
    schedule=config.curate_schedule,
    **dag_args(config),
    tags=[*TAGS, "curate"],
    params=curate_params(),
    doc_md=__doc__,
):
    decided = task(python_callable=inprocess.decide_task, task_id="decide")()
    exported = task(python_callable=inprocess.export_task, task_id="export")()
    decided >> exported
