"""talkvid_curate: apply a threshold profile to the stored scores, label the passed clips, find their speakers, draw
the bench, and export a release. No scorer runs here; each stage is its own task with its own run record.

Trigger it from the form (a profile name or file, per-criterion threshold overrides, bench spec, export formats,
output location), or let the schedule make a dated release. After a threshold change, re-decide and re-export a
date range without rescoring:

    airflow backfill create --dag-id talkvid_curate --from-date 2026-01-01 --to-date 2026-01-07 \
        --dag-run-conf '{"thresholds": {"avg_movement": {"min": 85}}}' --reprocess-behavior completed
"""

from airflow.sdk import DAG, chain

from talkvid_ops.runners.dag_tasks import TAGS, curate_params, curate_stage, dag_args, runner_config, validate_curate_conf
from talkvid_ops.stages import CURATION

config = runner_config()

with DAG(
    dag_id="talkvid_curate",
    description="decide with a threshold profile over stored scores, label, find speakers, draw the bench, export a release",
    schedule=config.curate_schedule,
    **dag_args(config),
    tags=[*TAGS, "curate"],
    params=curate_params(),
    doc_md=__doc__,
):
    # validate >> decide >> labels >> speakers >> bench >> export
    chain(validate_curate_conf(), *(curate_stage(stage, config) for stage in CURATION))
