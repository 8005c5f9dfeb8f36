"""DAG integrity: every DAG file imports cleanly and quickly, without model libraries, with the promised shape."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"
HEAVY_MODULES = ["torch", "cv2", "yt_dlp", "scenedetect", "av", "onnxruntime", "dlib", "faster_whisper", "face_alignment"]
PARSE_BUDGET_S = 5.0  # Airflow's own limit is 30 s per file; ours parse in well under a second

# Parsing happens in a fresh interpreter: this test process may already hold model libraries from other tests.
PARSE_SCRIPT = f"""
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag({str(DAGS)!r})
print(json.dumps({{
    "errors": {{k: str(v) for k, v in bag.import_errors.items()}},
    "durations": {{s.file: s.duration.total_seconds() if hasattr(s.duration, "total_seconds") else s.duration for s in bag.dagbag_stats}},
    "heavy": [m for m in {HEAVY_MODULES!r} if m in sys.modules],
    "dags": {{d.dag_id: {{"tags": sorted(d.tags), "retries": {{t.task_id: t.retries for t in d.tasks}}}} for d in bag.dags.values()}},
}}))
"""


@pytest.fixture(scope="module")
def parsed(airflow_env):
    proc = subprocess.run([sys.executable, "-c", PARSE_SCRIPT], capture_output=True, text=True, env=dict(os.environ), timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def dagbag(airflow_env):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(str(DAGS))


def test_dags_import_without_errors_or_model_libraries(parsed):
    assert parsed["errors"] == {}
    assert set(parsed["dags"]) == {"talkvid_crawl", "talkvid_process", "talkvid_curate"}
    assert parsed["heavy"] == [], f"parsing imported {parsed['heavy']}"
    assert len(parsed["durations"]) == 3
    assert all(seconds < PARSE_BUDGET_S for seconds in parsed["durations"].values()), parsed["durations"]


NOT_RETRIED = {("talkvid_curate", "validate"), ("talkvid_crawl", "check_sources")}  # a retry cannot fix a typo or a failed source


def test_every_task_is_tagged_and_retried_but_the_checks(parsed):
    for dag_id, dag in parsed["dags"].items():
        assert "talkvid" in dag["tags"] and len(dag["tags"]) >= 2, dag_id
        retried = {task_id: r for task_id, r in dag["retries"].items() if (dag_id, task_id) not in NOT_RETRIED}
        assert retried and all(r >= 1 for r in retried.values()), (dag_id, dag["retries"])
    assert all(parsed["dags"][dag_id]["retries"][task_id] == 0 for dag_id, task_id in NOT_RETRIED)


def test_crawl_is_scheduled_pool_bounded_and_emits_videos(dagbag):
    dag = dagbag.dags["talkvid_crawl"]
    assert dag.timetable.expression == "0 0 * * *"
    for task_id in ("discover", "download"):
        task = dag.get_task(task_id)
        assert task.is_mapped and task.pool == "talkvid_egress"
    assert [a.name for a in dag.get_task("publish_videos").outlets] == ["videos"]
    assert dag.get_task("download").upstream_task_ids == {"discover", "plan_sources"}
    check = dag.get_task("check_sources")  # a leaf beside publish: runs whatever the download did, hides no failure
    assert check.upstream_task_ids == {"download"} and check.trigger_rule == "all_done" and not check.downstream_task_ids
    assert not dag.get_task("publish_videos").downstream_task_ids


def test_process_maps_batches_on_the_gpu_pool_after_videos(dagbag):
    dag = dagbag.dags["talkvid_process"]
    assert [asset.name for asset in dag.timetable.asset_condition.objects] == ["videos"]
    for stage in ("segment", "score", "caption"):
        task = dag.get_task(stage)
        assert task.is_mapped and task.pool == "gpu" and task.queue == "gpu"
        assert task.upstream_task_ids == {f"plan_{stage}"}
    assert "segment" in dag.get_task("plan_score").upstream_task_ids  # score after segment
    assert "score" in dag.get_task("plan_caption").upstream_task_ids  # captions of scored clips
    assert dag.get_task("publish_scores").upstream_task_ids == {"score"}  # scores are published without waiting for captions
    assert [a.name for a in dag.get_task("publish_scores").outlets] == ["scores"]
    assert dag.get_task("backlog_left").upstream_task_ids == {"publish_scores", "caption"}
    assert set(dag.params) == {"segment_batch_size", "score_batch_size", "caption_batch_size", "preset"}
    rerun = dag.get_task("process_backlog")  # batches beyond the mapping bound go to another run
    assert rerun.trigger_dag_id == "talkvid_process" and rerun.upstream_task_ids == {"backlog_left"}


def test_curate_runs_each_stage_as_its_own_task_in_order(dagbag):
    dag = dagbag.dags["talkvid_curate"]
    order = ["validate", "decide", "labels", "speakers", "bench", "export"]
    assert sorted(t.task_id for t in dag.tasks) == sorted(order)
    for upstream, downstream in zip(order, order[1:]):
        assert dag.get_task(downstream).upstream_task_ids == {upstream}
    assert dag.get_task("validate").upstream_task_ids == set()
    assert dag.get_task("validate").python_callable.__name__ == "validate_curate_task"
    for task_id in order[1:]:  # each task calls its own stage through the registry
        task = dag.get_task(task_id)
        assert (task.python_callable.__name__, tuple(task.op_args)) == ("curate_task", (task_id,))


def test_curate_validates_its_form_and_has_a_time_schedule(dagbag):
    from airflow.sdk.exceptions import ParamValidationError

    dag = dagbag.dags["talkvid_curate"]
    assert dag.timetable.can_be_scheduled and dag.timetable.expression == "0 0 * * *"  # backfill needs a time schedule

    def validated(conf):  # what Airflow does to a trigger's conf: the form's params, overridden, validated
        params = copy.deepcopy(dag.params)
        for key, value in conf.items():
            params[key] = value
        return params.validate()

    ok = validated({"thresholds": {"avg_movement": {"min": 85}}, "formats": ["parquet"], "name": "r1"})
    assert ok["profile"] == "talkvid-code" and ok["thresholds"] == {"avg_movement": {"min": 85}}
    assert validated({"thresholds": {"quality": {"backend": "dover", "min": 7.5}}})["thresholds"]["quality"]["backend"] == "dover"
    for bad in (
        {"thresholds": {"avg_movement": {"min": "high"}}},
        {"thresholds": {"quality": {"backend": "", "min": 7.5}}},
        {"thresholds": {"avg_movement": {"minimum": 85}}},
        {"formats": ["mp3"]},
        {"profile": ""},
        {"seed": -1},
        {"name": "../escape"},
    ):
        with pytest.raises(ParamValidationError):
            validated(bad)
    # the form knows the shipped profiles' criteria and each one's backends: a typo is refused, naming it
    with pytest.raises(ParamValidationError, match="'qualty' was unexpected"):
        validated({"thresholds": {"qualty": {"min": 60}}})
    with pytest.raises(ParamValidationError, match=r"'dovr' is not one of \['classical', 'dover'\]"):
        validated({"thresholds": {"quality": {"backend": "dovr", "min": 7}}})
    criteria = dag.params.get_param("thresholds").schema["properties"]
    assert {"quality", "motion", "avg_movement", "min_completeness"} <= set(criteria)
    assert "dover: dover_released" in criteria["quality"]["description"]  # the metric a backend's bounds apply to
    assert dag.params.get_param("formats").schema["examples"] == dag.params.get_param("formats").schema["items"]["enum"]  # a multi-select
