"""The dataset card (README.md of a release), rendered from the release summary: no export-time timestamp, stable
order."""

from __future__ import annotations

from collections import Counter
from typing import Any

from talkvid_ops.curate.bench import STRATA_COLUMNS, limits_note
from talkvid_ops.curate.validation.agreement import validation_table

LABEL_TITLES = {"language": "language", "age_group": "age group", "gender": "gender", "ethnicity": "ethnicity"}
# What each top-level file or folder a release may hold is, in the order the card lists them
RELEASE_ENTRIES = {
    "README.md": "this dataset card",
    "talkvid.json": "the training clips in TalkVid's released record shape",
    "clips.jsonl": "every candidate clip with raw scores, decision, failing criteria, labels and lineage",
    "clips.parquet": "every candidate clip with raw scores, decision, failing criteria, labels and lineage (a column each)",
    "clips/": "training clips cut on exact frames (H.264 + AAC)",
    "crops/": "face-centred square crops of the training clips",
    "webdataset/": "WebDataset shards of the training clips (`<id>.mp4` + `<id>.json`)",
    "bench/": "the bench: a manifest per sub-benchmark, `report.json` (requested vs achieved) and its clips",
    "report.html": "the self-contained report with plots",
    "manifest.json": "the release metadata and the sha256 of every other file",
}


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ") if value is not None else ""

    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join("---" for _ in headers) + " |"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) if rows else "_none_"


def _share(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "-"


def _files_table(files: list[str]) -> str:
    """The release's top-level files and folders (with how many files each folder holds), as written."""
    entries = Counter(f.split("/", 1)[0] + "/" if "/" in f else f for f in files)
    order = {entry: index for index, entry in enumerate(RELEASE_ENTRIES)}
    return _table(
        ["file", "files", "what"],
        [[f"`{e}`", entries[e] if e.endswith("/") else "", RELEASE_ENTRIES.get(e, "")]
         for e in sorted(entries, key=lambda e: (order.get(e, len(order)), e))],
    )  # fmt: skip


def _validation_lines(validation: list[dict[str, Any]]) -> list[str]:
    """How far the filters agree with people on borderline clips (`talkvid validate`), like the paper's Table 3."""
    if not validation:
        return ["No validation set has been drawn (`talkvid validate draw`): the filters' agreement with people is unmeasured."]
    headers, rows = validation_table(validation)
    annotations = sum(sum(s["annotators"].values()) for s in validation)
    people = len({name for s in validation for name in s["annotators"]})
    return [
        f"Agreement of each filter with the majority of its annotators on borderline clips ({annotations} human annotations by {people} annotators):",
        "",
        _table(headers, rows),
    ]


def render_card(summary: dict[str, Any], files: list[str]) -> str:
    """The card of a release whose files (relative paths, the manifest included) are `files`."""
    counts, hours, profile = summary["counts"], summary["hours"], summary["profile"]
    spec = summary["bench_spec"]
    out = [
        f"# {summary['name']}",
        "",
        "A talking-head video dataset curated with talkvid, the way TalkVid (arXiv 2508.13618) built its dataset and "
        "TalkVid-Bench, with every raw score, decision and label kept with its provenance.",
        "",
        "## Release",
        "",
        _table(
            ["field", "value"],
            [
                ["release id", summary["release_id"]],
                ["profile", f"{profile['name']} (content hash `{profile['content_hash']}`)"],
                ["bench spec", f"{spec['name']} (content hash `{spec['content_hash']}`)" if spec else "none"],
                ["seed", summary["seed"]],
                ["catalog as of", summary["as_of"] or "all of it (an undated run)"],
                ["formats", ", ".join(summary["formats"])],
                ["code version", summary["code_version"]],
            ],
        ),
        "",
        f"Profile: {profile['description'].strip()}" if profile.get("description") else "",
        "",
        "## Counts",
        "",
        _table(
            ["what", "clips", "hours"],
            [
                ["candidates (decided by the profile)", counts["candidates"], f"{hours['candidates']:.3f}"],
                ["passed", counts["passed"], f"{hours['passed']:.3f}"],
                ["failed", counts["failed"], ""],
                ["undecided (a score missing)", counts["undecided"], ""],
                ["training release", counts["train"], f"{hours['train']:.3f}"],
                ["bench", counts["bench"], f"{hours['bench']:.3f}"],
                ["held out with the bench's videos and speakers", counts["held_out"], ""],
                ["not exported (media could not be cut)", counts["media_failed"], ""],
            ],
        ),
        "",
        f"The training release has {counts['videos_train']} source videos and {counts['persons_train']} known speakers.",
        "",
        "## Scores",
        "",
        "TalkVid's `dover_scores` is DOVER's released-code normalised score (`dover:dover_released`, typically 4-10) and "
        "`cotracker_ratio` CoTracker3's released-code visibility (`cotracker3:motion_visibility_code`, 0-1), or null when "
        "that backend did not score the clip (`none`); other backends' scores (a CPU run's classical quality and "
        "Lucas-Kanade motion) are in `clips.jsonl` / `clips.parquet` under their own names, never under TalkVid's. "
        "Each `talkvid.json` record's `talkvid_provenance` names the backend and definition of every exported score and "
        "the rule each criterion applied (`talkvid export --strict` leaves it out). Sources (`backend:metric`, clips):",
        "",
        _table(["field", "source", "clips"], [[f, src, n] for f, sources in summary["score_sources"].items() for src, n in sources.items()]),
        "",
        "Pass rate per criterion over all candidates:",
        "",
        _table(
            ["criterion", "evaluated", "failed", "pass rate"],
            [
                [c, r["evaluated"], r["failed"], f"{100 * r['pass_rate']:.1f} %" if r["pass_rate"] is not None else "-"]
                for c, r in summary["pass_rates"].items()
            ],
        ),  # fmt: skip
        "",
        "## Sources and licences",
        "",
        _table(
            ["source", "kind", "locator", "videos", "clips", "hours"],
            [[s["name"], s["kind"], s["locator"], s["videos"], s["clips"], f"{s['hours']:.3f}"] for s in summary["sources"]],
        ),  # fmt: skip
        "",
        _table(
            ["licence", "videos", "clips", "hours"], [[lic["license"], lic["videos"], lic["clips"], f"{lic['hours']:.3f}"] for lic in summary["licences"]]
        ),  # fmt: skip
        "",
        "## Hours per stratum (training release)",
        "",
    ]
    for name, title in LABEL_TITLES.items():
        per_value = summary["train_hours_by"].get(name, {})
        total = sum(per_value.values())
        out += [f"### Per {title}", "",
                _table([title, "clips", "hours", "share"],
                       [[v, summary["train_clips_by"][name][v], f"{h:.3f}", _share(h, total)] for v, h in per_value.items()]),
                ""]  # fmt: skip
    stats = summary["statistics"]
    out += [
        "## Dataset statistics (training release, as in the TalkVid paper)",
        "",
        f"{stats['clips']} clips, mean clip duration {stats['mean_duration_s'] if stats['mean_duration_s'] is not None else '-'} s "
        "(TalkVid: 17.93 s; 87.59 % of its clips 1080p or 2160p).",
        "",
        "### Clip duration",
        "",
        _table(["duration", "clips"], [[k, n] for k, n in stats["duration_histogram"].items()]),
        "",
        "### Resolution",
        "",
        _table(["resolution", "clips", "hours", "share of clips"],
               [[k, v["clips"], f"{v['hours']:.3f}", _share(v["clips"], stats["clips"])] for k, v in stats["resolution"].items()]),
        "",
        "### Upload year",
        "",
        _table(["year", "clips", "hours"], [[k, v["clips"], f"{v['hours']:.3f}"] for k, v in stats["upload_year"].items()]),
        "",
        "### Pass rate per source (all candidates)",
        "",
        _table(["source", "candidates", "passed", "pass rate"],
               [[s, v["candidates"], v["passed"], f"{100 * v['pass_rate']:.1f} %"] for s, v in stats["pass_rate_by_source"].items()]),
        "",
    ]  # fmt: skip
    out += [
        "## Label provenance",
        "",
        "Where each released clip's label came from: `human` (imported annotations, always preferred), `asr` "
        "(language id of the speech), `metadata` (the source's language hint), `estimated` (offline models on "
        "sampled faces: estimates, not ground truth), `none` (Unknown).",
        "",
        _table(["label", "provenance", "clips"], [[n, p, c] for n, per in summary["label_provenance"].items() for p, c in per.items()]),
        "",
    ]
    bench = summary["bench"]
    if bench:
        out += [
            "## Bench",
            "",
            f"{bench['achieved']} of {bench['requested']} requested clips of {bench['clip_seconds']:g} s "
            f"(spec {bench['spec']}, seed {bench['seed']}). Whole source videos ({bench['held_out']['videos']}) and "
            f"speakers ({bench['held_out']['persons']}) of the bench are held out of the training release: "
            f"{bench['held_out']['clips']} clips" + (f" (budget {bench['held_out']['budget']})." if bench["held_out"]["budget"] is not None else "."),
            "",
            _table(list(STRATA_COLUMNS), [[r[key] for key in STRATA_COLUMNS.values()] for r in bench["strata"]]),
            "",
            "Shortfalls: " + ("; ".join(bench["shortfalls"]) if bench["shortfalls"] else "none"),
            "",
        ]
        note = limits_note(bench)
        out += [f"**{note}**", ""] if note else []
    out += ["## Human validation of the filters", "", *_validation_lines(summary.get("validation") or []), ""]
    rot = summary["rot"]
    checked = f"last re-check {rot['last_checked']}" if rot["last_checked"] else "no re-check recorded yet"
    out += [
        "## Rot since crawl",
        "",
        f"Of the {rot['videos']} source videos of this release, {rot['gone']} ({_share(rot['gone'], rot['videos'])}) are "
        f"gone from their platform, {rot['available']} are available and the availability of {rot['unknown']} is "
        f"unknown ({checked}; `talkvid crawl --recheck` updates it).",
        "",
        "## Files",
        "",
        _files_table(files),
        "",
    ]
    return "\n".join(out)
