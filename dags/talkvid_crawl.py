"""talkvid_crawl: incremental discovery and download of every enabled source, on a schedule.

Sources are grouped into batches; each batch is one mapped discover task and one mapped download task, all in the
egress pool, whose slot count bounds concurrent requests. A run that brought new media emits the `videos` asset,
which triggers talkvid_process. `check_sources` fails (naming them) when sources of the run failed, so the run shows
red in the grid while what was crawled stays and is published.
"""

from airflow.sdk import DAG, task

from talkvid_ops.runners import inprocess
from talkvid_ops.runners.dag_tasks import TAGS, VIDEOS, batch_stage, dag_args, runner_config

config = runner_config()

with DAG(
    dag_id="talkvid_crawl",
    description="discover and download new videos of every enabled source",
    schedule=config.crawl_schedule,
    **dag_args(config),
    tags=[*TAGS, "crawl"],
    doc_md=__doc__,
):
    # discover and download map over the same batches of sources (`runner.sources_per_download_task` each)
    source_batches = task(python_callable=inprocess.plan_batches_task, task_id="plan_sources")("crawl.discover", None)
    discovered = batch_stage("crawl.discover", source_batches, config)
    downloaded = batch_stage("crawl.download", source_batches, config)
    published = task(python_callable=inprocess.publish_task, task_id="publish_videos", outlets=[VIDEOS])("videos", "crawl.download", "video")
    # beside publish, not after it: both are leaves, so a failed publish still fails the run (a leaf that runs after
    # every upstream would hide it); no retry, since a retry cannot make a failed source succeed
    checked = task(python_callable=inprocess.check_sources_task, task_id="check_sources", trigger_rule="all_done", retries=0)()
    discovered >> downloaded >> [published, checked]
