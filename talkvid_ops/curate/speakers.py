"""Speakers: a person id per clip from dlib's 128-d face descriptor, clustered across clips and videos.

A clip's descriptor is the mean over the frames of the shared face pass (`curate.faces`; one expression or pose
moves a single frame's descriptor more than it moves the mean): the pass stores every sampled face's descriptor,
so a clip the labels stage already saw is not decoded again. Clip descriptors are stored (`face_embedding`), so
re-clustering never reads more than one row per clip. Clustering is deterministic and scales with the catalog:
1. within each video, average-linkage agglomerative clustering at dlib's same-person distance (0.6);
2. across videos, every per-video group (taken in id order) joins the nearest person whose mean descriptor is
   within the same distance, unless that person already has a different group from the same video (step 1 said
   those are different people); otherwise it starts a new person.
A person's id is derived from its first clip id, so it stays the same across reruns while that clip stays.
Person labels are stored with provenance `estimated`; an imported human `person` label overrides them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import select

from talkvid_ops.catalog.labels import label_row, write_labels
from talkvid_ops.catalog.models import Clip, FaceEmbedding, Video
from talkvid_ops.catalog.upsert import upsert
from talkvid_ops.context import Context
from talkvid_ops.curate.decide import passed_clip_ids, profile_row_id
from talkvid_ops.curate.face_models import FaceDescriptor, StoredFace, get_face_model
from talkvid_ops.curate.faces import face_pass
from talkvid_ops.curate.labels.vocabulary import UNKNOWN, Provenance
from talkvid_ops.curate.profiles import Profile
from talkvid_ops.curate.queries import select_in
from talkvid_ops.ids import make_id

MODEL = FaceDescriptor.MODEL
ORIGIN = f"speakers:{MODEL}"


def clip_descriptor(faces: list[StoredFace]) -> tuple[np.ndarray | None, int]:
    """Mean stored descriptor over the sampled frames that had a face, and how many did."""
    vectors = [face.outputs[MODEL]["descriptor"] for face in faces if face.box is not None]
    return (np.mean(np.asarray(vectors, dtype=np.float64), axis=0) if vectors else None), len(vectors)


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


def assign_speakers(ctx: Context, profile: Profile | str | None = None, clip_ids: list[str] | None = None, limit: int | None = None,
                    redo: bool = False) -> dict[str, Any]:  # fmt: skip
    """The speakers stage: a descriptor for clips that have none yet (from the shared face pass), then cluster every
    stored descriptor and write each clip's `person` label (Unknown for clips where no frame had a face).

    `profile` (a Profile or name) limits the stage to the clips that profile passed. A clip whose source media
    cannot be read is recorded as an error of the run; the others go on.
    """
    config = ctx.config.curate
    descriptor = get_face_model(FaceDescriptor)
    params = {"clip_ids": clip_ids, "profile": getattr(profile, "name", profile), "limit": limit, "redo": redo,
              "model": MODEL, "threshold": config.speakers.distance_threshold, "frames_per_clip": config.faces.frames_per_clip}  # fmt: skip
    with ctx.run("speakers", params) as run:
        with ctx.sessions() as session:
            if clip_ids is None and profile is not None:
                clip_ids = passed_clip_ids(session, profile_row_id(session, profile))
            pairs = select_in(session, select(Clip, Video).join(Video, Video.id == Clip.video_id), Clip.id, clip_ids)
            done = set() if redo else set(session.scalars(select(FaceEmbedding.clip_id).where(FaceEmbedding.model == MODEL)))
        targets = sorted(((c, v) for c, v in pairs if c.id not in done), key=lambda p: p[0].id)
        targets = targets[: limit if limit is not None else None]
        faces = face_pass(ctx, run, targets, [descriptor], redo)
        embeddings = []
        for clip, _ in targets:
            if clip.id not in faces:  # its media failed: recorded by the face pass
                continue
            vector, frames = clip_descriptor(faces[clip.id])
            embeddings.append(dict(id=make_id("face_embedding", clip.id, MODEL), clip_id=clip.id, model=MODEL, frames=frames, run_id=run.id,
                                   vector=None if vector is None else [round(float(x), 6) for x in vector]))  # fmt: skip
            run.count("clips_embedded")
            if vector is None:
                run.count("clips_without_face")
        with ctx.sessions() as session:
            upsert(session, FaceEmbedding, embeddings, ["clip_id", "model"])
            stored = session.execute(
                select(FaceEmbedding.clip_id, Clip.video_id, FaceEmbedding.vector)
                .join(Clip, Clip.id == FaceEmbedding.clip_id)
                .where(FaceEmbedding.model == MODEL)
            ).all()
            people = cluster_speakers([(c, v, vec) for c, v, vec in stored if vec is not None], config.speakers.distance_threshold)
            rows = [label_row("clip", clip_id, "person", *people.get(clip_id, (UNKNOWN, None)), Provenance.ESTIMATED, ORIGIN, run.id)
                    for clip_id, _, _ in stored]  # fmt: skip
            write_labels(session, rows)
            session.commit()
        run.count("persons", len({p for p, _ in people.values()}))
        run.count("clips_labelled", len(rows))
        return {"run_id": run.id, **run.counts}
