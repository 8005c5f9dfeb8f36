"""The stage registry: each stage declared once with its item, way of running and resources; what the runners,
containers and CLI read from it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from talkvid_ops.errors import TalkvidError
from talkvid_ops.stages import CURATION, PROCESSING, STAGES, Batches, Item, Resources, Stage, _registry, run_curation, stage_commands, stage_named

HEAVY_MODULES = ["torch", "cv2", "yt_dlp", "scenedetect", "av", "onnxruntime", "dlib", "faster_whisper", "numpy", "airflow"]


def test_every_stage_is_declared_once_with_its_item_and_resources():
    declared = {name: (s.item, "batches" if s.batches else "whole", s.resources) for name, s in STAGES.items()}
    egress, gpu = Resources(egress=True), Resources(gpu=True, container=True)
    assert declared == {
        "crawl.discover": (Item.SOURCE, "batches", egress),
        "crawl.download": (Item.SOURCE, "batches", egress),
        "crawl.recheck": (Item.VIDEO, "whole", egress),
        "segment": (Item.VIDEO, "batches", gpu),
        "score": (Item.CLIP, "batches", gpu),
        "caption": (Item.CLIP, "batches", gpu),
        "decide": (Item.PROFILE, "whole", Resources()),
        "labels": (Item.CLIP, "whole", Resources()),
        "speakers": (Item.CLIP, "whole", Resources()),
        "bench": (Item.PROFILE, "whole", Resources()),
        "export": (Item.RELEASE, "whole", Resources()),
    }
    assert all(stage.name == name for name, stage in STAGES.items())
    assert set(PROCESSING) <= set(STAGES) and set(CURATION) <= set(STAGES)
    assert CURATION == ("decide", "labels", "speakers", "bench", "export")  # export reads what the others stored
    with pytest.raises(TalkvidError, match="stage score is declared twice"):
        _registry(STAGES["segment"], STAGES["score"], STAGES["score"])


def test_a_stage_declares_one_way_to_run_and_resources_that_fit_it():
    command = STAGES["segment"].command
    batches = STAGES["segment"].batches
    with pytest.raises(TalkvidError, match="either batches or a whole run"):
        Stage("both", Item.CLIP, "both", command, batches=batches, whole=STAGES["decide"].whole)
    with pytest.raises(TalkvidError, match="either batches or a whole run"):
        Stage("neither", Item.CLIP, "neither", command)
    with pytest.raises(TalkvidError, match="only a batch stage runs in a container"):
        Stage("boxed", Item.PROFILE, "boxed", command, whole=STAGES["decide"].whole, resources=Resources(container=True))
    with pytest.raises(TalkvidError, match="one pool"):
        Stage("greedy", Item.CLIP, "greedy", command, batches=Batches(batches.plan, batches.run), resources=Resources(gpu=True, egress=True))


def test_the_container_command_comes_from_the_registry():
    assert STAGES["score"].batch_command("b1") == ["talkvid", "score", "--batch", "b1"]
    assert STAGES["segment"].batch_command("b2") == ["talkvid", "segment", "--batch", "b2"]
    for name in ("crawl.download", "decide", "export"):
        with pytest.raises(TalkvidError, match=rf"stage {name} does not run in a container \(those that do: segment, score, caption\)"):
            STAGES[name].batch_command("b3")


def test_unknown_stages_and_wrong_ways_of_running_are_clear_errors():
    with pytest.raises(TalkvidError, match=r"unknown stage 'scroe' \(stages: crawl.discover, .*, export\)"):
        stage_named("scroe")
    with pytest.raises(TalkvidError, match="stage decide runs whole, not over batches"):
        STAGES["decide"].plan(None)
    with pytest.raises(TalkvidError, match="stage score runs over batches"):
        STAGES["score"].run(None, None)
    with pytest.raises(TalkvidError, match="'score' is not a curate stage"):
        run_curation(None, None, through="score")


def test_every_stage_command_is_the_one_its_declaration_names():
    commands = stage_commands()
    assert sorted(commands) == ["bench", "caption", "crawl", "decide", "export", "labels", "score", "segment", "speakers"]
    for stage in STAGES.values():
        assert stage.command().name == stage.command_name
    export = commands["export"]()
    assert [p.name for p in export.params] == ["profile", "out_dir", "formats", "bench_spec", "seed", "name", "strict", "generation"]
    assert "First runs the curate stages for the profile: decide, labels, speakers, bench" in export.help


def test_reading_the_registry_and_listing_commands_imports_no_stage_or_model_module():
    """The DAG files read the registry at parse time: no stage module may come with it. `talkvid --help` lists
    each command's help (importing the stage CLIs), still without a stage's own module or a model library."""
    script = (
        "import json, sys\n"
        "from click.testing import CliRunner\n"
        "def loaded():\n"
        "    ours = sorted(m for m in sys.modules if m.startswith('talkvid_ops.') and m.count('.') > 1)\n"
        f"    return {{'heavy': [m for m in {HEAVY_MODULES!r} if m in sys.modules], 'stage_modules': ours}}\n"
        "import talkvid_ops.stages\n"
        "registry = loaded()\n"
        "from talkvid_ops.cli import cli\n"
        "result = CliRunner().invoke(cli, ['--help'])\n"
        "assert result.exit_code == 0 and 'speakers' in result.output, result.output\n"
        "print(json.dumps({'registry': registry, 'help': loaded()}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert loaded["registry"] == {"heavy": [], "stage_modules": []}
    assert loaded["help"]["heavy"] == []
    stage_modules = [m for m in loaded["help"]["stage_modules"] if m.endswith((".stage", ".release", ".decide", ".labels", ".speakers", ".bench"))]
    assert stage_modules == [] and "talkvid_ops.segment.cli" in loaded["help"]["stage_modules"]
