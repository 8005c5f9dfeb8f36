"""Media shared by every stage: probing and hashing, decoding and the clip frame sampler, faces, cutting and cropping."""
