"""The caption stage: TalkVid's per-clip `description` written by a vision-language model from frames of the clip,
and a topic category per video (TalkVid's `Video Category`) chosen by the same model from a closed list."""
