"""talkvid_process: segment new videos, then score new clips, then caption them (where a captioning model is
configured), mapped over batches.

Triggered by the `videos` asset and by hand (batch sizes can be set in the form). Planners write batches to the
catalog and pass only their ids; each batch is one task (hundreds of clips, never one task per clip), GPU stages
run in the GPU pool and queue. At most `max_mapped_tasks` batches map per run; a deferred rest re-triggers this DAG.
A run that scored clips emits the `scores` asset.
"""

from airflow.sdk import DAG, Param, TriggerRule, task

from talkvid_ops.runners import inprocess
from talkvid_ops.runners.dag_tasks import SCORES, TAGS, VIDEOS, RecordedTriggerDagRunOperator, batch_stage, dag_args, preset_param, runner_config

config = runner_config()
batch_size = {"type": ["null", "integer"], "minimum": 1, "description": "items per batch (empty: the configured size)"}

with DAG(
    dag_id="talkvid_process",
    description="segment videos and score clips, mapped over batches",
    schedule=[VIDEOS],
    **dag_args(config),
    tags=[*TAGS, "process"],
    params={
        "segment_batch_size": Param(None, title="Videos per segment batch", **batch_size),
        "score_batch_size": Param(None, title="Clips per score batch", **batch_size),
        "caption_batch_size": Param(None, title="Clips per caption batch", **batch_size),
        "preset": preset_param(),
    },
    doc_md=__doc__,
):
    planner = task(python_callable=inprocess.plan_batches_task)
    segment_batches = planner.override(task_id="plan_segment")("segment", config.max_mapped_tasks)
    segmented = batch_stage("segment", segment_batches, config)
    # a run with no video to segment still scores clips left unscored by earlier runs
    score_batches = planner.override(task_id="plan_score", trigger_rule=TriggerRule.NONE_FAILED)("score", config.max_mapped_tasks)
    scored = batch_stage("score", score_batches, config)
    # captions only where a model is configured (else the planner plans nothing); scores are published either way
    caption_batches = planner.override(task_id="plan_caption", trigger_rule=TriggerRule.NONE_FAILED)("caption", config.max_mapped_tasks)
    captioned = batch_stage("caption", caption_batches, config)
    published = task(python_callable=inprocess.publish_task, task_id="publish_scores", outlets=[SCORES], trigger_rule=TriggerRule.NONE_FAILED)(
        "scores", "score", "scoring"
    )
    backlog = task.short_circuit(python_callable=inprocess.backlog_task, task_id="backlog_left", trigger_rule=TriggerRule.NONE_FAILED)()
    rerun = RecordedTriggerDagRunOperator(task_id="process_backlog", trigger_dag_id="talkvid_process", conf={})
    segmented >> score_batches
    scored >> caption_batches
    scored >> published >> backlog >> rerun
    captioned >> backlog
