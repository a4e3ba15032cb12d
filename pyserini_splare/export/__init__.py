"""Export an encoder for inference elsewhere: ONNX for CPU query (and document) encoding without torch.

``python -m pyserini_splare.export --encoder KIND:DIR --format onnx --output OUT`` (:mod:`.onnx_export`);
the result is an encoder spec of its own, ``onnx:OUT`` (:mod:`pyserini_splare.encode.onnx_encoder`).
"""
