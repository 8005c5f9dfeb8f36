"""The vision-language model behind captions and categories: a Qwen2.5-VL model (or another image-text-to-text
model of `transformers` with the same chat format) from a local directory, never from a hub.

The tokenizer, the image processor and the model load separately (`AutoTokenizer`, `AutoImageProcessor`,
`AutoModelForImageTextToText`, all `local_files_only`), and the image placeholder of the chat template is expanded
to one token per merged patch here, as Qwen's processor does: the processor class also requires a video processor,
which needs torchvision even when no video is sent. The image processor is the torchvision one where torchvision is
installed and the PIL one elsewhere; both compute the same inputs.

Generation is greedy (reproducible for a given model and prompt). Captions are generated for several clips at once
(left padding); a category is the closed-list option the model gives the highest likelihood, so the answer is
always in the list and its probability among the options is the label's confidence.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from talkvid_ops.errors import ModelUnavailable

IDENTITY_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "preprocessor_config.json",
    "chat_template.json",
    "chat_template.jinja",
)


def model_config_path(model_dir: str | Path) -> Path:
    return Path(model_dir).expanduser() / "config.json"


def model_identity(model_dir: str | Path) -> str:
    """`<dir name>@<hash of its configs and weight sizes>`: the same model has the same id on every host."""
    root = Path(model_dir).expanduser()
    digest = hashlib.sha256()
    for name in IDENTITY_FILES:
        if (root / name).is_file():
            digest.update(name.encode() + (root / name).read_bytes())
    for weights in sorted(root.glob("*.safetensors")):
        digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
    return f"{root.name}@{digest.hexdigest()[:10]}"


def _chat_template(tokenizer, root: Path) -> str:
    """The tokenizer's chat template, or the processor's (Qwen2.5-VL checkouts keep it in chat_template.json)."""
    if tokenizer.chat_template:
        return tokenizer.chat_template
    for name in ("chat_template.json", "chat_template.jinja"):
        path = root / name
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            return json.loads(text)["chat_template"] if name.endswith(".json") else text
    raise ModelUnavailable(f"captioning model {root} has no chat template (tokenizer_config.json, chat_template.json or chat_template.jinja)")


@dataclass(frozen=True)
class Choice:
    option: str
    probability: float  # among the options


class VisionLanguageModel:
    def __init__(self, model_dir: str | Path, device: str):
        root = Path(model_dir).expanduser()
        if not model_config_path(root).is_file():
            raise ModelUnavailable(f"captioning model not found: {model_config_path(root)} (put a Qwen2.5-VL model directory at {root})")
        import torch
        from transformers import AutoImageProcessor, AutoModelForImageTextToText, AutoTokenizer

        self.model_id = model_identity(root)
        self.device = device
        self.tokenizer = AutoTokenizer.from_pretrained(root, local_files_only=True)
        self.chat_template = _chat_template(self.tokenizer, root)
        self.image_processor = AutoImageProcessor.from_pretrained(root, local_files_only=True)
        dtype = torch.bfloat16 if device == "cuda" else torch.float32
        self.model = AutoModelForImageTextToText.from_pretrained(root, local_files_only=True, dtype=dtype).to(device).eval()
        self.image_token = self.tokenizer.convert_ids_to_tokens(self.model.config.image_token_id)
        self.merge_size = int(getattr(self.image_processor, "merge_size", 2))

    def _render(self, content: list[dict]) -> str:
        messages = [{"role": "user", "content": content}]
        return self.tokenizer.apply_chat_template(messages, chat_template=self.chat_template, tokenize=False, add_generation_prompt=True)

    def _expand_images(self, text: str, grids: list) -> str:
        """One placeholder per image becomes one token per merged patch of that image."""
        pieces = text.split(self.image_token)
        if len(pieces) - 1 != len(grids):
            raise ValueError(f"the chat template placed {len(pieces) - 1} image tokens for {len(grids)} images")
        out = [pieces[0]]
        for grid, piece in zip(grids, pieces[1:]):
            out.append(self.image_token * (int(np.prod(grid)) // self.merge_size**2) + piece)
        return "".join(out)

    def describe(self, clips: list[list[np.ndarray]], prompt: str, max_new_tokens: int) -> list[str]:
        """One text per clip from its RGB frames (in order) and the prompt, generated for all clips in one batch."""
        import torch

        images = [frame for frames in clips for frame in frames]
        vision = self.image_processor(images=images, return_tensors="pt")
        grids = vision["image_grid_thw"].tolist()
        texts, start = [], 0
        for frames in clips:
            text = self._render([*({"type": "image"} for _ in frames), {"type": "text", "text": prompt}])
            texts.append(self._expand_images(text, grids[start : start + len(frames)]))
            start += len(frames)
        self.tokenizer.padding_side = "left"
        inputs = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        inputs = {**inputs, "pixel_values": vision["pixel_values"].to(self.model.dtype), "image_grid_thw": vision["image_grid_thw"]}
        with torch.inference_mode():
            output = self.model.generate(**{k: v.to(self.device) for k, v in inputs.items()}, max_new_tokens=max_new_tokens, do_sample=False)
        generated = output[:, inputs["input_ids"].shape[1] :]
        return [text.strip() for text in self.tokenizer.batch_decode(generated, skip_special_tokens=True)]

    def choose(self, question: str, options: tuple[str, ...]) -> Choice:
        """The option the model most likely answers to a text-only question, scored as whole answers."""
        import torch

        prefix = self.tokenizer(self._render([{"type": "text", "text": question}]), add_special_tokens=False)["input_ids"]
        answers = [self.tokenizer(option, add_special_tokens=False)["input_ids"] for option in options]
        width = len(prefix) + max(len(a) for a in answers)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        ids = torch.full((len(options), width), pad, dtype=torch.long)
        mask = torch.zeros((len(options), width), dtype=torch.long)
        for row, answer in enumerate(answers):
            sequence = prefix + answer
            ids[row, : len(sequence)] = torch.tensor(sequence)
            mask[row, : len(sequence)] = 1
        with torch.inference_mode():
            logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits.float()
        log_probs = torch.log_softmax(logits, dim=-1).cpu()
        # the answer's tokens, each predicted from the position before it
        totals = torch.stack([sum(log_probs[row, len(prefix) + i - 1, token] for i, token in enumerate(answer)) for row, answer in enumerate(answers)])
        probabilities = torch.softmax(totals, dim=0)
        best = int(torch.argmax(totals))
        return Choice(options[best], float(probabilities[best]))


@lru_cache(maxsize=2)
def vision_language_model(model_dir: str, device: str) -> VisionLanguageModel:
    """The model of this directory, loaded once per process."""
    return VisionLanguageModel(model_dir, device)
