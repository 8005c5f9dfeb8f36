"""talkvid_crawl: incremental discovery and download of every enabled source, on a schedule.

Sources are grouped into batches; each batch is one mapped discover task and one mapped download task, all in the
egress pool, whose slot count bounds concurrent requests. A run that brought new media emits the `videos` asset,
which triggers talkvid_process.
"""

from airflow.sdk import DAG, task

from talkvid_ops.runners import inprocess
from talkvid_ops.runners.dag_tasks import TAGS, VIDEOS, dag_args, runner_config

config = runner_config()

with DAG(
    dag_id="talkvid_crawl",
    description="discover and download new videos of every enabled source",
    schedule=config.crawl_schedule,
    **dag_args(config),
    tags=[*TAGS, "crawl"],
    doc_md=__doc__,
):
    source_batches = task(python_callable=inprocess.plan_crawl_task, task_id="plan_sources")(config.sources_per_download_task)
    crawl = task(python_callable=inprocess.crawl_batch_task, pool=config.egress_pool)
    discovered = crawl.override(task_id="discover").partial(step="discover").expand(batch_id=source_batches)
    downloaded = crawl.override(task_id="download").partial(step="download").expand(batch_id=source_batches)
    published = task(python_callable=inprocess.publish_task, task_id="publish_videos", outlets=[VIDEOS])("videos", "crawl.download", "video")
    discovered >> downloaded >> published
